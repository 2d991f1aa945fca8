"""The audit log: every golden write (ingest, API, approval) with who, when, through what
and each field before/after; hash-chained, so tampering shows (on both stores)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from mastersync.bootstrap import Hub, build_hub
from mastersync.cli import app as cli
from mastersync.pipeline.governance.audit import verify
from tests.api.conftest import Consumers, erp_ingest

CUSTOMER = {"no": "C1", "v": 1, "name": "Acme", "country": "DE", "limit": "5000", "cur": "EUR"}


@pytest.fixture
def hub(landscape_file: Path, store_url: str) -> Iterator[Hub]:
    h = build_hub(landscape_file, store_url)
    yield h
    h.close()


def _engine(hub: Hub) -> sa.Engine:
    engine: sa.Engine = hub.store.engine  # type: ignore[attr-defined]
    return engine


def test_every_write_is_audited_and_the_chain_holds(
    client: httpx.Client, consumer: Consumers, hub: Hub
) -> None:
    erp_ingest(hub, "customer", CUSTOMER)
    erp_ingest(hub, "customer", {**CUSTOMER, "v": 2, "name": "Acme GmbH", "limit": "7000"})
    approver = consumer("risk", ["approve", "customer:read"], person="rita")
    change = client.get("/v1/approvals", headers=approver).json()[0]["id"]
    r = client.post(
        f"/v1/approvals/{change}/approve", headers={**approver, "X-Request-ID": "req-approve-1"}
    )
    assert r.status_code == 200
    master = client.get("/v1/customers/erp:C1", headers=approver).json()["master_id"]
    entries = hub.governance.audit(master_id=master)
    assert [(e.version, e.action, e.actor) for e in entries] == [
        (1, "created", "system:erp"),
        (2, "updated", "system:erp"),
        (3, "updated", "rita"),
    ]
    assert entries[0].channel == "ingest:erp.csv"
    assert entries[1].field_changes() == {"name": {"before": "Acme", "after": "Acme GmbH"}}
    assert entries[2].field_changes() == {
        "credit_limit": {
            "before": {"amount": "5000", "currency": "EUR"},
            "after": {"amount": "7000", "currency": "EUR"},
        }
    }
    assert entries[2].request_id == "req-approve-1"
    assert entries[2].channel == "api:risk POST /v1/approvals/{id}/approve"
    # Through the API: the consumer's person, the route, the request id.
    writer = consumer("portal", ["customer:write"], system="portal", person="pat")
    w = client.post(
        "/v1/customers",
        json={"key": "P1", "attributes": {"name": "Zeta"}},
        headers={**writer, "X-Request-ID": "req-write-1"},
    ).json()
    api_entry = hub.governance.audit(master_id=w["master_id"])[0]
    assert (api_entry.actor, api_entry.channel, api_entry.request_id) == (
        "pat",
        "api:portal POST /v1/customers",
        "req-write-1",
    )
    report = verify(hub.governance)
    assert report.ok and report.entries == 4
    admin = consumer("ops", ["admin", "customer:read"])
    shown = client.get(f"/v1/audit/customer/{master}", headers=admin).json()
    assert [e["version"] for e in shown] == [1, 2, 3]
    # Credit fields stay hidden from an admin without customer:credit (review found them in
    # every entry's before and after); with the scope they show.
    assert not any("credit_limit" in e["changes"] for e in shown)
    assert shown[1]["changes"] == {"name": {"before": "Acme", "after": "Acme GmbH"}}
    credit = consumer("audit", ["admin", "customer:read", "customer:credit"])
    full = client.get(f"/v1/audit/customer/{master}", headers=credit).json()
    assert "credit_limit" in full[2]["changes"]


@pytest.fixture
def tamperable(hub: Hub) -> Iterator[None]:
    """What someone with the database owner's rights would do first (undone afterwards:
    the PostgreSQL database lives for the whole session)."""
    with _engine(hub).begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only"))
        else:
            conn.execute(sa.text("DROP TRIGGER audit_log_no_update"))
            conn.execute(sa.text("DROP TRIGGER audit_log_no_delete"))
    yield
    with _engine(hub).begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only"))


def test_the_database_refuses_changes_to_entries(hub: Hub) -> None:
    erp_ingest(hub, "customer", CUSTOMER)
    for statement in (
        "UPDATE audit_log SET actor = 'mallory' WHERE seq = 1",
        "DELETE FROM audit_log WHERE seq = 1",
    ):
        with pytest.raises(sa.exc.DatabaseError, match="append-only"), _engine(hub).begin() as c:
            c.execute(sa.text(statement))
    assert [e.actor for e in hub.governance.audit()] == ["system:erp"]


@pytest.mark.usefixtures("tamperable")
def test_tampering_is_detected(hub: Hub) -> None:
    erp_ingest(hub, "customer", CUSTOMER)
    erp_ingest(hub, "customer", {**CUSTOMER, "v": 2, "name": "Acme GmbH"})
    erp_ingest(hub, "customer", {**CUSTOMER, "v": 3, "name": "Acme AG"})
    assert verify(hub.governance).ok
    with _engine(hub).begin() as conn:
        conn.execute(sa.text("UPDATE audit_log SET actor = 'mallory' WHERE seq = 2"))
    report = verify(hub.governance)
    assert [(b.seq, b.reason) for b in report.breaks] == [
        (2, "content does not match its hash (edited)")
    ]
    with _engine(hub).begin() as conn:
        conn.execute(sa.text("UPDATE audit_log SET actor = 'system:erp' WHERE seq = 2"))
        conn.execute(sa.text("DELETE FROM audit_log WHERE seq = 3"))
    report = verify(hub.governance)
    assert report.breaks == []
    assert len(report.unaudited) == 1 and report.unaudited[0][1] == 3
    with _engine(hub).begin() as conn:
        conn.execute(sa.text("DELETE FROM audit_log WHERE seq = 1"))
    assert {b.seq for b in verify(hub.governance).breaks} == {2}
    # A log emptied of every entry: each golden version since auditing began is unaudited.
    with _engine(hub).begin() as conn:
        conn.execute(sa.text("DELETE FROM audit_log"))
    report = verify(hub.governance)
    assert not report.ok
    assert sorted(v for _, v in report.unaudited) == [1, 2, 3]


@pytest.mark.usefixtures("tamperable")
def test_audit_cli(hub: Hub, landscape_file: Path, store_url: str) -> None:
    erp_ingest(hub, "customer", CUSTOMER)
    erp_ingest(hub, "customer", {**CUSTOMER, "v": 2, "name": "Acme GmbH"})
    runner = CliRunner()
    base = ["-l", str(landscape_file), "--store", store_url]
    ok = runner.invoke(cli, [*base, "audit", "verify"])
    assert ok.exit_code == 0, ok.output
    assert "audit log intact: 2 entries" in ok.output
    shown = runner.invoke(cli, [*base, "audit", "show", "erp:C1", "--domain", "customer"])
    assert shown.exit_code == 0, shown.output
    assert "Acme GmbH" in shown.output and "system:erp" in shown.output
    # In 80 columns a block per write: ten columns left a few letters each (review).
    from mastersync.cli.common import console

    before, console.width = console.width, 80
    try:
        narrow = runner.invoke(cli, [*base, "audit", "show", "erp:C1", "--domain", "customer"])
    finally:
        console.width = before
    assert "name: Acme -> Acme GmbH" in narrow.output, narrow.output
    assert "by system:erp through ingest:" in narrow.output
    assert all(len(line) <= 80 for line in narrow.output.splitlines())
    with _engine(hub).begin() as conn:
        conn.execute(sa.text("UPDATE audit_log SET changes = '{}' WHERE seq = 1"))
    bad = runner.invoke(cli, [*base, "audit", "verify"])
    assert bad.exit_code == 2
    assert "entry 1: content does not match its hash" in bad.output
