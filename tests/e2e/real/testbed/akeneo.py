"""The Akeneo PIM REST API as served by akeneo-mock-server (Python >= 3.12, PostgreSQL):
installed from PyPI into its own virtual environment, started with uvicorn on a free
loopback port. Each test gets its own database: requests carry ``X-AkeneoMockDB`` and the
database is made with ``POST /_admin/ensure_db``; the testbed drops the ones it made."""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import httpx
import psycopg
from psycopg import sql

from tests.e2e.real.testbed.common import (
    Process,
    TestbedError,
    cache_root,
    ensure_venv,
    free_port,
    locked,
)

VERSION = "0.9"
PYTHON = "3.12"
REQUIREMENTS = [f"akeneo-mock-server[run]=={VERSION}.*"]
DB_HEADER = "X-AkeneoMockDB"


def home() -> Path:
    """The cache folder of this version."""
    return cache_root() / f"akeneo-mock-{VERSION}"


def ensure_installed() -> tuple[Path, float, bool]:
    """The virtual environment; how long it took and whether it had to be made."""
    started = time.monotonic()
    with locked(home() / ".lock"):
        made = ensure_venv(home() / "venv", PYTHON, REQUIREMENTS)
    return home() / "venv", time.monotonic() - started, made


class AkeneoServer:
    """akeneo-mock-server on 127.0.0.1, its databases on the given PostgreSQL server."""

    def __init__(self, folder: Path, pg_url: str) -> None:
        self.folder = folder
        self.pg_url = pg_url
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: Process | None = None
        self.databases: list[str] = []
        self.base = f"akeneo_ms_{uuid.uuid4().hex[:10]}"

    def _admin(self) -> psycopg.Connection:
        try:
            return psycopg.connect(self.pg_url, autocommit=True, connect_timeout=5)
        except psycopg.OperationalError as exc:
            raise TestbedError(
                f"akeneo-mock-server needs PostgreSQL at {self.pg_url}: {exc}"
            ) from None

    def start(self) -> None:
        """Make the base database, start uvicorn, wait for /_admin/status."""
        venv, _, _ = ensure_installed()
        with self._admin() as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.base)))
        base, _, _ = self.pg_url.rpartition("/")
        env = {**os.environ, "AKENEO_DATABASE_URL": f"{base}/{self.base}"}
        self.process = Process(
            [
                str(venv / "bin" / "python"),
                "-c",
                "from akeneo_mock_server.database import init_db; init_db(); import uvicorn; "
                f"uvicorn.run('akeneo_mock_server.app:app', host='127.0.0.1', port={self.port}, "
                "log_level='warning')",
            ],
            self.folder / "akeneo.log",
            env,
        )
        self.process.wait_ready(self._ready, 120, "akeneo-mock-server")

    def _ready(self) -> bool:
        try:
            return httpx.get(f"{self.url}/_admin/status", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def new_database(self) -> str:
        """A fresh, empty database for one test; its name goes in the X-AkeneoMockDB header."""
        name = f"akeneo_ms_{uuid.uuid4().hex[:10]}"
        response = httpx.post(f"{self.url}/_admin/ensure_db", headers={DB_HEADER: name}, timeout=60)
        if response.status_code != 200:
            raise TestbedError(f"akeneo-mock-server could not make a database: {response.text}")
        self.databases.append(name)
        return name

    def stop(self) -> None:
        """Stop the server and drop the databases it was given."""
        if self.process is not None:
            self.process.stop()
            self.process = None
        with self._admin() as conn:
            for name in [*self.databases, self.base]:
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )
        self.databases.clear()
