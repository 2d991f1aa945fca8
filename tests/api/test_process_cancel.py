"""Process API: a step refused by the lifecycle's rule says so and records nothing, and a
process can be cancelled (by whoever could take its step), releasing its lifecycle lock,
including one stranded by a change of the lifecycle's owner."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from mastersync.api.app import create_app
from mastersync.bootstrap import Hub, build_hub
from mastersync.pipeline.governance.consumers import add_consumer
from mastersync.sandbox.apis.serve import LoopbackServer
from tests.api.conftest import LANDSCAPE, Consumers, erp_ingest

TAX_ID = "DE136695976"
NOVA = {"name": "Nova GmbH", "country": "DE", "tax_id": TAX_ID}


def _landscape(erp_owns_lifecycle: bool = False) -> dict[str, Any]:
    """The API tests' landscape, with the ERP's customer status mapped to the lifecycle."""
    landscape = copy.deepcopy(LANDSCAPE)
    fields = landscape["systems"]["erp"]["inbound"]["customer"]["fields"]
    fields["lifecycle_state"] = {"from": "status", "optional": True}
    if erp_owns_lifecycle:
        landscape["domains"]["customer"] = {"ownership": {"lifecycle_state": ["erp"]}}
    return landscape


@pytest.fixture
def landscape_file(tmp_path: Path) -> Path:
    path = tmp_path / "landscape.yaml"
    path.write_text(yaml.safe_dump(_landscape(), sort_keys=False))
    return path


def _people(consumer: Consumers) -> tuple[dict[str, str], dict[str, str]]:
    """Sales (sam, writes as the portal, starts onboardings) and credit (cora, approves)."""
    sales = consumer(
        "crm", ["customer:read", "customer:write", "customer:credit"], system="portal", person="sam"
    )
    credit = consumer("credit", ["customer:read", "approve"], person="cora")
    return sales, credit


def _onboard(client: httpx.Client, sales: dict[str, str], key: str) -> dict[str, Any]:
    r = client.post(
        "/v1/processes/customer-onboarding",
        json={"key": key, "attributes": NOVA},
        headers=sales,
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


def test_a_step_the_erp_outranks_answers_409_naming_field_and_rule(
    client: httpx.Client, consumer: Consumers, hub: Hub
) -> None:
    sales, credit = _people(consumer)
    erp_ingest(hub, "customer", {"no": "E1", "name": "Nova GmbH", "vat": TAX_ID, "v": 1})
    proc = _onboard(client, sales, "N-1")
    erp_ingest(
        hub,
        "customer",
        {"no": "E1", "name": "Nova GmbH", "vat": TAX_ID, "status": "blocked", "v": 2},
    )
    r = client.post(f"/v1/processes/{proc['id']}/advance", headers=credit)
    assert r.status_code == 409, r.text
    error = r.json()["error"]
    assert [(p["field"], p["rule"]) for p in error["problems"]] == [
        ("lifecycle_state", "source_priority")
    ]
    assert proc["master_id"] in error["message"] and "'blocked'" in error["message"]
    now = client.get(f"/v1/processes/{proc['id']}", headers=credit).json()
    assert (now["state"], len(now["history"])) == ("awaiting_credit_approval", 1)
    view = client.get(f"/v1/customers/{proc['master_id']}", headers=credit).json()
    assert view["attributes"]["lifecycle_state"] == "blocked"


def test_cancel_closes_the_process_and_releases_the_lifecycle(
    client: httpx.Client, consumer: Consumers
) -> None:
    sales, credit = _people(consumer)
    proc = _onboard(client, sales, "N-2")
    url = f"/v1/processes/{proc['id']}/cancel"
    active = {"key": "N-2", "attributes": {**NOVA, "lifecycle_state": "active"}}
    locked = client.post("/v1/customers", json=active, headers=sales)
    assert locked.status_code == 409, locked.text
    # The starter may not cancel what a second person must decide (and then set the state
    # straight); a cancel says why; unknown processes are not found.
    own = client.post(url, json={"reason": "not needed"}, headers=sales)
    assert own.status_code == 403, own.text
    assert client.post(url, json={}, headers=credit).status_code == 422
    assert client.post(url, json={"reason": "   "}, headers=credit).status_code == 422
    unknown = client.post("/v1/processes/prc_unknown/cancel", json={"reason": "x"}, headers=credit)
    assert unknown.status_code == 404
    rid = {"X-Request-ID": "cancel-N-2"}
    done = client.post(url, json={"reason": "duplicate customer"}, headers={**credit, **rid})
    assert done.status_code == 200, done.text
    body = done.json()
    assert body["state"] == "cancelled"
    last = body["history"][-1]
    assert {k: last[k] for k in ("step", "from", "state", "by", "consumer", "reason")} == {
        "step": "cancel",
        "from": "awaiting_credit_approval",
        "state": "cancelled",
        "by": "cora",
        "consumer": "credit",
        "reason": "duplicate customer",
    }
    assert "request_id" not in last
    retried = client.post(url, json={"reason": "duplicate customer"}, headers={**credit, **rid})
    assert (retried.status_code, retried.json()) == (200, body)
    again = client.post(url, json={"reason": "again"}, headers=credit)
    assert again.status_code == 409, again.text
    late = client.post(f"/v1/processes/{proc['id']}/advance", headers=credit)
    assert late.status_code == 409 and "cancelled" in late.json()["error"]["message"]
    # The lock is gone: the lifecycle is the systems' to write again.
    unlocked = client.post("/v1/customers", json=active, headers=sales)
    assert unlocked.status_code == 200, unlocked.text


def test_a_process_stranded_by_a_new_lifecycle_owner_is_cancelled(
    client: httpx.Client, consumer: Consumers, tmp_path: Path, sqlite_url: str
) -> None:
    sales, credit = _people(consumer)
    proc = _onboard(client, sales, "N-3")
    # The landscape now gives the customer lifecycle to the ERP.
    path = tmp_path / "moved.yaml"
    path.write_text(yaml.safe_dump(_landscape(erp_owns_lifecycle=True), sort_keys=False))
    moved = build_hub(path, sqlite_url)
    try:
        _, key = add_consumer(
            moved.governance,
            moved.landscape,
            "erp-api",
            scopes=["customer:read", "customer:write"],
            system="erp",
            person="erin",
        )
        erp = {"X-API-Key": key}
        with LoopbackServer(create_app(moved)) as server, httpx.Client(base_url=server.url) as c:
            stuck = c.post(f"/v1/processes/{proc['id']}/advance", headers=credit)
            assert stuck.status_code == 409, stuck.text
            error = stuck.json()["error"]
            assert f"POST /v1/processes/{proc['id']}/cancel" in error["message"]
            assert [(p["field"], p["rule"]) for p in error["problems"]] == [
                ("lifecycle_state", "ownership")
            ]
            # The owner's own start on the record is refused while it is open, and told to
            # cancel it (two open processes would wait on one record).
            second = c.post(
                "/v1/processes/customer-onboarding",
                json={"key": "E-3", "attributes": NOVA},
                headers=erp,
            )
            assert second.status_code == 409, second.text
            assert f"POST /v1/processes/{proc['id']}/cancel" in second.json()["error"]["message"]
            # The new owner is not locked out by it meanwhile (its record joins by tax id).
            held = {"key": "E-3", "attributes": {**NOVA, "lifecycle_state": "blocked"}}
            early = c.post("/v1/customers", json=held, headers=erp)
            assert early.status_code == 200, early.text
            reason = {"reason": "the ERP owns the customer lifecycle now"}
            done = c.post(f"/v1/processes/{proc['id']}/cancel", json=reason, headers=credit)
            assert done.status_code == 200, done.text
            assert done.json()["state"] == "cancelled"
            # The owner sets the lifecycle through the API (its record joins by tax id).
            active = {"key": "E-3", "attributes": {**NOVA, "lifecycle_state": "active"}}
            r = c.post("/v1/customers", json=active, headers=erp)
            assert r.status_code == 200, r.text
            assert r.json()["master_id"] == proc["master_id"]
            view = c.get(f"/v1/customers/{proc['master_id']}", headers=credit).json()
            assert view["attributes"]["lifecycle_state"] == "active"
    finally:
        moved.close()


ITEM = {"sku": "I-1", "name": "Drill", "base_uom": "EA", "gtin": "4006381333931"}


def test_a_starter_cannot_cancel_a_process_with_a_four_eyes_step_ahead(
    client: httpx.Client, consumer: Consumers
) -> None:
    # At draft the waiting step (to enriched) is the starter's own; the approval comes
    # after it. Cancelled there by her, she wrote `active` straight: no approval.
    pim = consumer("pim", ["item:read", "item:write", "approve"], system="portal", person="pia")
    other = consumer("pim2", ["item:read", "item:write", "approve"], system="portal", person="ole")
    started = client.post(
        "/v1/processes/item-activation", json={"key": "I-1", "attributes": ITEM}, headers=pim
    )
    assert started.status_code == 201, started.text
    proc = started.json()
    assert proc["state"] == "draft"
    mine = client.post(f"/v1/processes/{proc['id']}/cancel", json={"reason": "x"}, headers=pim)
    assert mine.status_code == 403, mine.text
    assert "four-eyes step ahead (to approved)" in mine.json()["error"]["message"]
    direct = {"key": "I-1", "attributes": {**ITEM, "lifecycle_state": "active"}}
    assert client.post("/v1/items", json=direct, headers=pim).status_code == 409
    theirs = client.post(
        f"/v1/processes/{proc['id']}/cancel", json={"reason": "not ours"}, headers=other
    )
    assert theirs.status_code == 200, theirs.text
