"""Four-eyes: credit limit and bank account changes wait for a second person, whichever way
they come in (API, file ingest, a retried record, a replay), and nobody confirms their own."""

from __future__ import annotations

import asyncio
import copy
from pathlib import Path

import httpx
import yaml

from mastersync.bootstrap import Hub, build_hub
from mastersync.connectors.sandbox.target import SandboxTarget
from mastersync.pipeline.distribution.replay import plan_replay, queue_replay
from mastersync.pipeline.ids import new_id, utc_now
from mastersync.ports.connector import SourceRecord
from mastersync.ports.store import ReplaySelection
from tests.api.conftest import LANDSCAPE, Consumers, erp_ingest

CUSTOMER = {"no": "C1", "v": 1, "name": "Acme", "country": "DE", "limit": "5000", "cur": "EUR"}
SUPPLIER = {
    "no": "S1",
    "v": 1,
    "name": "Bolt AG",
    "country": "DE",
    "iban": "DE89370400440532013000",
}
NEW_IBAN = "GB82WEST12345698765432"


def _limit(hub: Hub, key: str) -> object:
    with hub.store.unit_of_work(write=False) as uow:
        master = uow.find_master("customer", "erp", key)
        assert master is not None
        golden = uow.golden(master)
    assert golden is not None
    return golden.attributes.get("credit_limit")


def test_api_change_is_held_until_another_person_approves(
    client: httpx.Client, consumer: Consumers, hub: Hub
) -> None:
    erp_ingest(hub, "customer", CUSTOMER)
    writer = consumer(
        "portal",
        ["customer:read", "customer:write", "customer:credit", "approve"],
        system="portal",
        person="pat",
    )
    same_person = consumer("pat-tools", ["approve"], person="pat")
    approver = consumer("risk", ["approve", "customer:read", "customer:credit"], person="rita")
    master = client.get("/v1/customers/erp:C1", headers=writer).json()["master_id"]
    r = client.post(
        "/v1/customers",
        json={
            "key": "C1",
            "attributes": {
                "name": "Acme",
                "credit_limit": {"amount": "90000", "currency": "EUR"},
            },
        },
        headers=writer,
    )
    assert r.status_code == 200, r.text
    # The portal's own key C1 is a new source record; it joins no one (no natural key), so
    # it is a new customer: nothing to hold. Change the ERP's record through the ERP instead.
    assert r.json()["held"] == []
    erp_ingest(hub, "customer", {**CUSTOMER, "v": 2, "limit": "90000"})
    assert _limit(hub, "C1") == {"amount": "5000", "currency": "EUR"}
    pending = client.get("/v1/approvals", headers=approver).json()
    assert [(p["master_id"], p["field"], p["requested_by"]) for p in pending] == [
        (master, "credit_limit", "system:erp")
    ]
    change = pending[0]["id"]
    # Through the API a change made by pat is confirmed by neither of pat's consumers.
    api_change = client.post(
        "/v1/customers",
        json={"key": "P-9", "attributes": {"name": "Zeta", "country": "DE"}},
        headers=writer,
    ).json()["master_id"]
    held = client.post(
        "/v1/customers",
        json={
            "key": "P-9",
            "attributes": {
                "name": "Zeta",
                "country": "DE",
                "credit_limit": {"amount": "1", "currency": "EUR"},
            },
        },
        headers=writer,
    ).json()
    assert held["outcome"] == "unchanged"
    assert [(h["field"], h["requested_by"]) for h in held["held"]] == [("credit_limit", "pat")]
    own = held["held"][0]["id"]
    for h in (writer, same_person):
        refused = client.post(f"/v1/approvals/{own}/approve", headers=h)
        assert refused.status_code == 403
        assert "four-eyes" in refused.json()["error"]["message"]
    got = client.get(f"/v1/customers/{api_change}", headers=approver).json()
    assert "credit_limit" not in got["attributes"]
    # Rita confirms both; each becomes a golden version.
    assert client.post(f"/v1/approvals/{own}/approve", headers=approver).json()["status"] == (
        "approved"
    )
    done = client.post(f"/v1/approvals/{change}/approve", headers=approver)
    assert done.json()["decided_by"] == "rita"
    assert _limit(hub, "C1") == {"amount": "90000", "currency": "EUR"}
    got = client.get(f"/v1/customers/{api_change}", headers=approver).json()
    assert got["attributes"]["credit_limit"] == {"amount": "1", "currency": "EUR"}
    again = client.post(f"/v1/approvals/{change}/approve", headers=approver)
    assert again.status_code == 409
    assert client.get("/v1/approvals", headers=approver).json() == []


def test_bank_account_change_blocks_payment_until_confirmed(
    client: httpx.Client, consumer: Consumers, hub: Hub
) -> None:
    erp_ingest(hub, "supplier", SUPPLIER)
    buyer = consumer("buyer", ["supplier:read", "supplier:finance", "item:read"], person="bo")
    approver = consumer("treasury", ["approve"], person="tess")
    view = client.get("/v1/suppliers/erp:S1", headers=buyer).json()
    assert view["payment_blocked"] is False
    erp_ingest(hub, "supplier", {**SUPPLIER, "v": 2, "iban": NEW_IBAN})
    view = client.get("/v1/suppliers/erp:S1", headers=buyer).json()
    assert view["attributes"]["bank_account"]["iban"] == "DE89370400440532013000"
    assert view["payment_blocked"] is True
    proc = client.get(f"/v1/procurement/suppliers/{view['master_id']}", headers=buyer).json()
    assert proc["payment_blocked"] is True
    # The same record again, and as an inbox retry re-merges it: still one pending change.
    erp_ingest(hub, "supplier", {**SUPPLIER, "v": 2, "iban": NEW_IBAN})
    hub.ingestor.ingest(
        "erp", "supplier", [SourceRecord({**SUPPLIER, "v": 2, "iban": NEW_IBAN}, reapply=True)]
    )
    pending = client.get("/v1/approvals", headers=approver).json()
    assert len(pending) == 1
    rejected = client.post(f"/v1/approvals/{pending[0]['id']}/reject", headers=approver)
    assert rejected.json()["status"] == "rejected"
    view = client.get("/v1/suppliers/erp:S1", headers=buyer).json()
    assert view["attributes"]["bank_account"]["iban"] == "DE89370400440532013000"
    assert view["payment_blocked"] is False
    # A newer version with the new account asks again; confirmed, it is applied.
    erp_ingest(hub, "supplier", {**SUPPLIER, "v": 3, "iban": NEW_IBAN})
    change = client.get("/v1/approvals", headers=approver).json()[0]["id"]
    assert client.post(f"/v1/approvals/{change}/approve", headers=approver).status_code == 200
    view = client.get("/v1/suppliers/erp:S1", headers=buyer).json()
    assert view["attributes"]["bank_account"]["iban"] == NEW_IBAN
    assert view["payment_blocked"] is False


def test_no_hold_for_rejected_or_stale_records(hub: Hub) -> None:
    erp_ingest(hub, "customer", {**CUSTOMER, "v": 5})
    erp_ingest(hub, "customer", {**CUSTOMER, "v": 4, "limit": "1"})  # stale
    erp_ingest(hub, "customer", {**CUSTOMER, "v": 6, "limit": "1", "country": "XX"})  # invalid
    assert hub.governance.pending() == []
    assert _limit(hub, "C1") == {"amount": "5000", "currency": "EUR"}


def test_the_same_version_with_another_bank_account_is_stale_not_held(hub: Hub) -> None:
    """The hold put the guarded field back first, so the contradiction looked like a
    re-send of the same record: 'unchanged', with an approval to give for a value the
    source itself had contradicted."""
    erp_ingest(hub, "supplier", SUPPLIER)
    report = hub.ingestor.ingest("erp", "supplier", [SourceRecord({**SUPPLIER, "iban": NEW_IBAN})])
    assert report.outcomes["stale"] == 1
    assert hub.governance.pending() == []


def test_dropping_a_guarded_value_waits_for_confirmation_too(
    client: httpx.Client, consumer: Consumers, hub: Hub
) -> None:
    erp_ingest(hub, "supplier", SUPPLIER)
    approver = consumer("treasury", ["approve", "supplier:read", "supplier:finance"], person="tess")
    without = {k: v for k, v in SUPPLIER.items() if k != "iban"}
    erp_ingest(hub, "supplier", {**without, "v": 2})
    view = client.get("/v1/suppliers/erp:S1", headers=approver).json()
    assert view["attributes"]["bank_account"]["iban"] == "DE89370400440532013000"
    assert view["payment_blocked"] is True
    change = client.get("/v1/approvals", headers=approver).json()[0]
    assert change["field"] == "bank_account"
    assert client.post(f"/v1/approvals/{change['id']}/approve", headers=approver).status_code == (
        200
    )
    view = client.get("/v1/suppliers/erp:S1", headers=approver).json()
    assert "bank_account" not in view["attributes"]
    assert view["payment_blocked"] is False


def test_replay_resends_what_was_confirmed_never_a_held_change(tmp_path: Path) -> None:
    doc = copy.deepcopy(LANDSCAPE)
    doc["systems"]["ap"] = {
        "kind": "erp",
        "connector": {"type": "sandbox", "database": "ap.db"},
        "outbound": {"suppliers": {"domain": "supplier", "fields": ["name", "bank_account"]}},
    }
    path = tmp_path / "landscape.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    hub = build_hub(path, f"sqlite:///{tmp_path / 'store.db'}")
    try:
        erp_ingest(hub, "supplier", SUPPLIER)
        erp_ingest(hub, "supplier", {**SUPPLIER, "v": 2, "iban": NEW_IBAN})
        asyncio.run(hub.distribution().run_until_idle(timeout=30, settle=0.3))
        with hub.store.unit_of_work(write=False) as uow:
            master = uow.find_master("supplier", "erp", "S1")
        assert master is not None
        plan = plan_replay(
            hub.store, ReplaySelection("ap.suppliers", master_id=master), "supplier", new_id
        )
        assert queue_replay(hub.store, plan, "supplier", utc_now) == 1
        asyncio.run(hub.distribution().run_until_idle(timeout=30, settle=0.3))
        held = SandboxTarget(tmp_path / "ap.db").records("supplier")[master]
        assert held["payload"]["bank_account"]["iban"] == "DE89370400440532013000"
        with hub.store.unit_of_work(write=False) as uow:
            golden = uow.golden(master)
        assert golden is not None and golden.version == 1
        assert [p.status for p in hub.governance.pending(master_id=master)] == ["pending"]
    finally:
        hub.close()


def test_a_superseded_change_is_listed_as_such_and_cannot_be_approved(
    client: httpx.Client, consumer: Consumers, hub: Hub
) -> None:
    erp_ingest(hub, "customer", CUSTOMER)
    approver = consumer("risk", ["approve"], person="rita")
    erp_ingest(hub, "customer", {**CUSTOMER, "v": 2, "limit": "9000"})
    [first] = client.get("/v1/approvals", headers=approver).json()
    erp_ingest(hub, "customer", {**CUSTOMER, "v": 3, "limit": "7000"})
    [older] = client.get("/v1/approvals?status=superseded", headers=approver).json()
    assert older["id"] == first["id"] and older["decided_at"]
    refused = client.post(f"/v1/approvals/{first['id']}/approve", headers=approver)
    assert refused.status_code == 409
    assert "superseded" in refused.json()["error"]["message"]
    [newer] = client.get("/v1/approvals", headers=approver).json()
    assert client.post(f"/v1/approvals/{newer['id']}/approve", headers=approver).status_code == 200
    assert _limit(hub, "C1") == {"amount": "7000", "currency": "EUR"}
