"""`mastersync run` refuses what would break the hub once running, before it starts."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from psycopg import sql
from typer.testing import CliRunner

from mastersync.cli import app
from tests.conftest import PG_URL, _admin_connect

runner = CliRunner()

ERP_TO_SHOP = """
name: cli
systems:
  erp:
    kind: erp
    inbound:
      item: {key: sku, version: {from: v, kind: counter}, fields: {sku: sku, name: name}}
  shop:
    kind: ecommerce
    connector: {type: sandbox, database: shop.db}
    outbound:
      items: {domain: item}
"""


def _landscape(folder: Path) -> Path:
    landscape = folder / "landscape.yaml"
    landscape.write_text(ERP_TO_SHOP)
    return landscape


def _run(landscape: Path, *args: str, store: str | None = None) -> tuple[int, str]:
    opts = ["-l", str(landscape), *(["--store", store] if store else [])]
    result = runner.invoke(app, [*opts, "run", *args])
    return result.exit_code, result.output


@pytest.fixture
def unmigrated_pg() -> Iterator[str]:
    """A new PostgreSQL database without the store's schema, dropped after."""
    name = f"mastersync_test_{uuid.uuid4().hex[:12]}"
    with _admin_connect() as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield f"{PG_URL.rpartition('/')[0]}/{name}"
    with _admin_connect() as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def test_run_on_a_port_already_taken_is_one_error_before_the_hub_starts(tmp_path: Path) -> None:
    """uvicorn bound the port inside the running hub and called sys.exit(3) on a taken
    one: the hub's loops were cancelled mid-round, with two tracebacks and exit code 3."""
    landscape = _landscape(tmp_path)
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        code, out = _run(landscape, "--listen", f"127.0.0.1:{port}", "--until-idle")
    assert code == 1, out
    assert f"error: cannot listen on 127.0.0.1:{port}:" in out
    assert "already in use" in out.lower()
    assert "hub running" not in out


def test_run_refuses_an_outdated_schema_before_the_hub_starts(
    tmp_path: Path, unmigrated_pg: str
) -> None:
    """`run` started on a schema `status` refuses: every loop logged a SchemaOutdated
    traceback, for ever without --until-idle."""
    landscape = _landscape(tmp_path)
    code, out = _run(landscape, "--until-idle", "--timeout", "5", store=unmigrated_pg)
    assert code == 1, out
    assert "run `mastersync db upgrade`" in out
    assert "hub running" not in out
