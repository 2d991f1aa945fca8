"""Process and experience APIs."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import httpx
import yaml

from mastersync.api.app import create_app
from mastersync.bootstrap import Hub, build_hub
from mastersync.pipeline.governance.consumers import add_consumer
from mastersync.sandbox.apis.serve import LoopbackServer
from tests.api.conftest import LANDSCAPE, Consumers

SUPPLIER = {"name": "Bolt AG", "country": "DE", "bank_account": {"iban": "DE89370400440532013000"}}


def test_customer_onboarding_needs_a_second_person(
    client: httpx.Client, consumer: Consumers
) -> None:
    sales = consumer(
        "crm", ["customer:read", "customer:write", "approve"], system="portal", person="sam"
    )
    credit = consumer("credit", ["customer:read", "approve"], person="cora")
    r = client.post(
        "/v1/processes/customer-onboarding",
        json={"key": "N-1", "attributes": {"name": "Nova GmbH", "country": "DE"}},
        headers=sales,
    )
    assert r.status_code == 201, r.text
    proc = r.json()
    assert (proc["state"], proc["started_by"]) == ("awaiting_credit_approval", "sam")
    customer = client.get(f"/v1/customers/{proc['master_id']}", headers=sales).json()
    assert customer["attributes"]["lifecycle_state"] == "pending"
    own = client.post(f"/v1/processes/{proc['id']}/advance", headers=sales)
    assert own.status_code == 403
    assert "four-eyes" in own.json()["error"]["message"]
    done = client.post(f"/v1/processes/{proc['id']}/advance", headers=credit).json()
    assert done["state"] == "active"
    assert [h["step"] for h in done["history"]] == ["start", "active"]
    assert client.get(f"/v1/processes/{proc['id']}", headers=credit).json()["state"] == "active"
    customer = client.get(f"/v1/customers/{proc['master_id']}", headers=credit).json()
    assert customer["attributes"]["lifecycle_state"] == "active"
    assert customer["attributes"]["name"] == "Nova GmbH"
    again = client.post(f"/v1/processes/{proc['id']}/advance", headers=credit)
    assert again.status_code == 409
    assert client.get("/v1/processes/prc_unknown", headers=credit).status_code == 404


def _supplier_approval(
    client: httpx.Client, consumer: Consumers, key: str
) -> tuple[dict[str, str], dict[str, str], dict[str, Any]]:
    """A buyer (bo) who starts a supplier approval, a CFO (carl) who may approve, the process."""
    buyer = consumer(
        "srm", ["supplier:read", "supplier:write", "supplier:finance"], system="portal", person="bo"
    )
    boss = consumer("cfo", ["supplier:read", "approve"], person="carl")
    proc = client.post(
        "/v1/processes/supplier-approval", json={"key": key, "attributes": SUPPLIER}, headers=buyer
    ).json()
    return buyer, boss, proc


def test_supplier_approval_keeps_payment_blocked_until_approved(
    client: httpx.Client, consumer: Consumers
) -> None:
    buyer, boss, proc = _supplier_approval(client, consumer, "V-1")
    assert proc["state"] == "awaiting_approval"
    view = client.get(f"/v1/suppliers/{proc['master_id']}", headers=buyer).json()
    assert view["payment_blocked"] is True
    assert client.post(f"/v1/processes/{proc['id']}/advance", headers=buyer).status_code == 403
    # Nor by writing the lifecycle straight through the system API (review found the
    # starter's own POST /v1/suppliers with "approved" lifting the block); other fields and
    # the lifecycle as it stands still go through.
    bypass = client.post(
        "/v1/suppliers",
        json={"key": "V-1", "attributes": {**SUPPLIER, "lifecycle_state": "approved"}},
        headers=buyer,
    )
    assert bypass.status_code == 409, bypass.text
    assert f"POST /v1/processes/{proc['id']}/advance" in bypass.json()["error"]["message"]
    # Nor by clearing it, nor through another key that joins the record by its tax id.
    for key, state in (("V-1", None), ("V-1b", "approved")):
        attributes = {**SUPPLIER, "tax_id": "DE136695976", "lifecycle_state": state}
        if key == "V-1":
            attributes.pop("tax_id")
        else:
            # The starting write gave no tax id: give the record one first (no lifecycle).
            first = {**SUPPLIER, "tax_id": "DE136695976"}
            assert (
                client.post(
                    "/v1/suppliers", json={"key": "V-1", "attributes": first}, headers=buyer
                ).status_code
                == 200
            )
        r = client.post("/v1/suppliers", json={"key": key, "attributes": attributes}, headers=buyer)
        assert r.status_code == 409, (key, r.text)
    same = {**SUPPLIER, "name": "Bolt AG & Co", "lifecycle_state": "onboarding"}
    ok = client.post("/v1/suppliers", json={"key": "V-1", "attributes": same}, headers=buyer)
    assert ok.status_code == 200, ok.text
    view = client.get(f"/v1/suppliers/{proc['master_id']}", headers=buyer).json()
    assert (view["attributes"]["lifecycle_state"], view["payment_blocked"]) == ("onboarding", True)
    assert client.post(f"/v1/processes/{proc['id']}/advance", headers=boss).json()["state"] == (
        "approved"
    )
    view = client.get(f"/v1/suppliers/{proc['master_id']}", headers=buyer).json()
    assert view["payment_blocked"] is False
    assert view["attributes"]["lifecycle_state"] == "approved"
    # The process is done: the lifecycle is the systems' to write again.
    blocked = {**SUPPLIER, "lifecycle_state": "blocked"}
    later = client.post("/v1/suppliers", json={"key": "V-1", "attributes": blocked}, headers=buyer)
    assert later.status_code == 200, later.text


def test_item_activation_steps_and_readiness(client: httpx.Client, consumer: Consumers) -> None:
    pim = consumer("pim", ["item:read", "item:write", "approve"], system="portal", person="pia")
    qa = consumer("qa", ["item:read", "item:write", "approve"], system="portal", person="quinn")
    proc = client.post(
        "/v1/processes/item-activation",
        json={"key": "I-1", "attributes": {"sku": "I-1", "name": "Drill"}},
        headers=pim,
    ).json()
    assert proc["state"] == "draft"
    not_ready = client.post(f"/v1/processes/{proc['id']}/advance", headers=pim)
    assert not_ready.status_code == 409
    assert "base_uom missing" in not_ready.json()["error"]["message"]
    fixed = client.post(
        "/v1/items",
        json={
            "key": "I-1",
            "attributes": {
                "sku": "I-1",
                "name": "Drill",
                "base_uom": "EA",
                "gtin": "4006381333931",
                "lifecycle_state": "draft",
            },
        },
        headers=pim,
    )
    assert fixed.status_code == 200, fixed.text
    states = []
    for h in (pim, pim, qa, pim):
        r = client.post(f"/v1/processes/{proc['id']}/advance", headers=h)
        states.append(r.json()["state"] if r.status_code == 200 else r.status_code)
    # pia enriches; pia may not approve her own item; quinn approves; pia activates.
    assert states == ["enriched", 403, "approved", "active"]
    item = client.get(f"/v1/items/{proc['master_id']}", headers=pim).json()
    assert item["attributes"]["lifecycle_state"] == "active"


def test_experience_apis_shape_for_sales_and_procurement(
    client: httpx.Client, consumer: Consumers, hub: Hub
) -> None:
    writer = consumer(
        "hubwriter",
        [
            "item:write",
            "price:write",
            "inventory:write",
            "location:write",
            "supplier:write",
            "customer:write",
            "customer:credit",
            "supplier:finance",
        ],
        system="portal",
    )
    sales = consumer(
        "shop", ["item:read", "price:read", "inventory:read", "customer:read"], person="sid"
    )

    def put(plural: str, key: str, attributes: dict[str, object]) -> str:
        r = client.post(
            f"/v1/{plural}", json={"key": key, "attributes": attributes}, headers=writer
        )
        assert r.status_code == 200, r.text
        return str(r.json()["master_id"])

    sup = put("suppliers", "V1", {"name": "Bolt AG", "country": "DE", "lead_time_days": 12})
    item = put(
        "items",
        "I1",
        {
            "sku": "I1",
            "name": "Drill",
            "channels": ["web"],
            "lifecycle_state": "active",
            "primary_supplier": sup,
        },
    )
    put(
        "items", "I2", {"sku": "I2", "name": "Saw", "channels": ["web"], "lifecycle_state": "draft"}
    )
    loc = put("locations", "W1", {"code": "W1", "name": "Main"})
    put(
        "prices",
        "P1",
        {"item": item, "price_list": "retail", "currency": "EUR", "amount": "99.5", "uom": "EA"},
    )
    put(
        "inventory",
        "S1",
        {"item": item, "location": loc, "uom": "EA", "on_hand": "10", "allocated": "3"},
    )
    put("customers", "C1", {"name": "Acme", "sales_rep": "rick", "credit_terms": "NET30"})
    page = client.get("/v1/sales/items?channel=web", headers=sales).json()
    assert [i["sku"] for i in page["items"]] == ["I1"]
    assert page["items"][0]["price"]["amount"] == "99.5"
    assert page["items"][0]["available"] == "7"
    # Without price:read and inventory:read, neither (as GET /v1/prices would refuse them).
    catalogue = consumer("catalogue", ["item:read"])
    bare = client.get("/v1/sales/items?channel=web", headers=catalogue).json()["items"]
    assert [(i["sku"], i["price"], i["available"]) for i in bare] == [("I1", None, None)]
    reps = client.get("/v1/sales/reps/rick/customers", headers=sales).json()
    assert [(c["name"], c["terms"]) for c in reps] == [("Acme", None)]
    buyer = consumer("buyer", ["supplier:read", "item:read"])
    view = client.get(f"/v1/procurement/suppliers/{sup}", headers=buyer).json()
    assert view["lead_time_days"] == 12
    assert [i["sku"] for i in view["items"]] == ["I1"]
    assert view["bank_account"] is None


def test_a_process_refuses_fields_the_canonical_model_does_not_have(
    client: httpx.Client, consumer: Consumers
) -> None:
    # Review found "bogus" accepted with 201 and dropped without a word.
    sales = consumer("crm", ["customer:read", "customer:write"], system="portal", person="sam")
    r = client.post(
        "/v1/processes/customer-onboarding",
        json={"key": "N-2", "attributes": {"name": "Nova", "country": "DE", "bogus": 1}},
        headers=sales,
    )
    assert r.status_code == 422, r.text
    assert r.json()["error"]["problems"][0]["field"] == "attributes.bogus"
    assert client.get("/v1/customers/portal:N-2", headers=sales).status_code == 404


def test_a_step_takes_though_a_field_owned_elsewhere_is_dropped(
    client: httpx.Client, consumer: Consumers
) -> None:
    # Review: brand (owned by the ERP here) dropped from the write made the step answer
    # 409 "lifecycle_state is owned by another system" after it had been applied.
    pim = consumer("pim", ["item:read", "item:write"], system="portal", person="pia")
    attributes = {"sku": "I-9", "name": "Drill", "base_uom": "EA", "brand": "Bosch"}
    proc = client.post(
        "/v1/processes/item-activation", json={"key": "I-9", "attributes": attributes}, headers=pim
    ).json()
    step = client.post(f"/v1/processes/{proc['id']}/advance", headers=pim)
    assert step.status_code == 200, step.text
    assert step.json()["state"] == "enriched"
    item = client.get(f"/v1/items/{proc['master_id']}", headers=pim).json()["attributes"]
    assert item["lifecycle_state"] == "enriched" and "brand" not in item


def test_a_process_whose_lifecycle_another_system_owns_is_refused_before_writing(
    tmp_path: Path,
) -> None:
    landscape = copy.deepcopy(LANDSCAPE)
    landscape["domains"]["customer"] = {"ownership": {"lifecycle_state": ["erp"]}}
    path = tmp_path / "landscape.yaml"
    path.write_text(yaml.safe_dump(landscape, sort_keys=False))
    hub = build_hub(path, f"sqlite:///{tmp_path / 'hub.db'}")
    try:
        _, key = add_consumer(
            hub.governance,
            hub.landscape,
            "crm",
            scopes=["customer:read", "customer:write"],
            system="portal",
            person="sam",
        )
        with LoopbackServer(create_app(hub)) as server, httpx.Client(base_url=server.url) as c:
            r = c.post(
                "/v1/processes/customer-onboarding",
                json={"key": "N-9", "attributes": {"name": "Nova", "country": "DE"}},
                headers={"X-API-Key": key},
            )
            assert r.status_code == 409, r.text
            assert "owned by erp, not portal" in r.json()["error"]["message"]
            # Nothing was written (before, the customer was, without its pending state).
            got = c.get("/v1/customers/portal:N-9", headers={"X-API-Key": key})
            assert got.status_code == 404
    finally:
        hub.close()


def test_a_process_follows_its_record_into_a_merge(
    client: httpx.Client, consumer: Consumers, hub: Hub
) -> None:
    # Review: after a merge the process was found by no one (404), and the guard on its
    # record's lifecycle by no write: the starter set "approved" straight.
    from mastersync.pipeline.matching.merging import merge_records
    from tests.api.conftest import erp_ingest

    buyer, boss, proc = _supplier_approval(client, consumer, "V-7")
    erp_ingest(hub, "supplier", {"no": "E7", "name": "Bolt AG", "v": 1})
    with hub.store.unit_of_work(write=False) as uow:
        survivor = uow.find_master("supplier", "erp", "E7")
    assert survivor is not None
    merge_records(
        hub.store, hub.landscape, survivor, proc["master_id"], actor="steward", reason="same"
    )
    # The merge brought the onboarding record's bank account to a supplier that had none: a
    # guarded change, held for a second person to confirm (the steward merged).
    [held] = hub.governance.pending(survivor)
    assert (held.field, held.requested_by) == ("bank_account", "steward")
    confirmed = client.post(f"/v1/approvals/{held.id}/approve", headers=boss)
    assert confirmed.status_code == 200, confirmed.text
    approved = {**SUPPLIER, "lifecycle_state": "approved"}
    r = client.post("/v1/suppliers", json={"key": "V-7", "attributes": approved}, headers=buyer)
    assert r.status_code == 409, r.text
    assert client.get(f"/v1/processes/{proc['id']}", headers=boss).json()["master_id"] == survivor
    done = client.post(f"/v1/processes/{proc['id']}/advance", headers=boss)
    assert done.status_code == 200, done.text
    view = client.get(f"/v1/suppliers/{survivor}", headers=buyer).json()
    assert (view["attributes"]["lifecycle_state"], view["payment_blocked"]) == ("approved", False)


def test_a_step_keeps_a_pending_bank_account_change(
    client: httpx.Client, consumer: Consumers, hub: Hub
) -> None:
    # Review: the step restated the starter's stored (old) IBAN, which superseded the
    # pending change and lifted the payment block.
    buyer, boss, proc = _supplier_approval(client, consumer, "V-11")
    new_bank = {**SUPPLIER, "bank_account": {"iban": "GB29NWBK60161331926819"}}
    r = client.post("/v1/suppliers", json={"key": "V-11", "attributes": new_bank}, headers=buyer)
    assert r.status_code == 200, r.text
    [held] = r.json()["held"]
    done = client.post(f"/v1/processes/{proc['id']}/advance", headers=boss)
    assert done.status_code == 200, done.text
    change = hub.governance.pending_change(held["id"])
    assert change is not None and change.status == "pending"
    assert len(hub.governance.pending(proc["master_id"])) == 1
    view = client.get(f"/v1/suppliers/{proc['master_id']}", headers=buyer).json()
    assert (view["attributes"]["lifecycle_state"], view["payment_blocked"]) == ("approved", True)


def test_a_step_does_not_revert_a_write_made_while_it_ran(
    client: httpx.Client, consumer: Consumers, hub: Hub, monkeypatch: Any
) -> None:
    # Review: the step wrote the contribution the request had read before, undoing a write
    # of the starter's system that landed in between (a lost update).
    import mastersync.api.process as process_api
    from mastersync.pipeline.governance.writes import write_record

    sales = consumer("crm", ["customer:read", "customer:write"], system="portal", person="sam")
    credit = consumer("credit", ["customer:read", "approve"], person="cora")
    start_body = {"key": "N-11", "attributes": {"name": "Nova GmbH", "country": "DE"}}
    proc = client.post("/v1/processes/customer-onboarding", json=start_body, headers=sales).json()
    real = process_api.advance

    def interleaved(*args: Any, **kwargs: Any) -> Any:
        renamed = {"name": "Nova Systems GmbH", "country": "DE", "lifecycle_state": "pending"}
        r = write_record(
            hub.ingestor,
            hub.governance,
            consumer="crm",
            person="sam",
            system="portal",
            domain="customer",
            key="N-11",
            version=None,
            attributes=renamed,
            request_id="concurrent",
            route="POST /v1/customers",
        )
        assert r.outcome == "accepted"
        return real(*args, **kwargs)

    monkeypatch.setattr(process_api, "advance", interleaved)
    done = client.post(f"/v1/processes/{proc['id']}/advance", headers=credit)
    assert done.status_code == 200, done.text
    got = client.get(f"/v1/customers/{proc['master_id']}", headers=credit).json()["attributes"]
    assert (got["name"], got["lifecycle_state"]) == ("Nova Systems GmbH", "active")


def test_the_lock_follows_a_record_through_two_merges(
    client: httpx.Client, consumer: Consumers, hub: Hub
) -> None:
    # Review: only records merged straight into this one were looked at; after a second
    # merge the lifecycle guard lapsed and the starter could approve by writing.
    from mastersync.pipeline.matching.merging import merge_records
    from tests.api.conftest import erp_ingest

    buyer, _boss, proc = _supplier_approval(client, consumer, "V-12")
    erp_ingest(
        hub,
        "supplier",
        {"no": "E7", "name": "Bolt AG", "v": 1},
        {"no": "E8", "name": "Bolt AG", "v": 1},
    )
    with hub.store.unit_of_work(write=False) as uow:
        e7 = uow.find_master("supplier", "erp", "E7")
        e8 = uow.find_master("supplier", "erp", "E8")
    assert e7 is not None and e8 is not None
    merge_records(hub.store, hub.landscape, e7, proc["master_id"], actor="steward", reason="same")
    merge_records(hub.store, hub.landscape, e8, e7, actor="steward", reason="same")
    assert [p.id for p in hub.governance.processes_of(e8)] == [proc["id"]]
    approved = {**SUPPLIER, "lifecycle_state": "approved"}
    r = client.post("/v1/suppliers", json={"key": "V-12", "attributes": approved}, headers=buyer)
    assert r.status_code == 409, r.text


def test_a_repeated_advance_takes_no_second_step(client: httpx.Client, consumer: Consumers) -> None:
    # Review: a retried approval (same X-Request-ID) activated the item as well.
    item = {"sku": "I-11", "name": "Drill", "base_uom": "EA", "gtin": "4006381333931"}
    pim = consumer("pim", ["item:read", "item:write"], system="portal", person="pia")
    qa = consumer("qa", ["item:read", "item:write", "approve"], system="portal", person="quinn")
    start_body = {"key": "I-11", "attributes": item}
    proc = client.post("/v1/processes/item-activation", json=start_body, headers=pim).json()
    url = f"/v1/processes/{proc['id']}/advance"
    assert client.post(url, headers=pim).json()["state"] == "enriched"
    rid = {"X-Request-ID": "approve-I-11"}
    first = client.post(url, headers={**qa, **rid})
    assert first.json()["state"] == "approved"
    retry = client.post(url, headers={**qa, **rid})
    assert retry.status_code == 200, retry.text
    assert retry.json() == first.json()
    # A caller may name the state it moves on from: another one is refused, nothing taken.
    stale = client.post(url, json={"from": "enriched"}, headers=pim)
    assert stale.status_code == 409, stale.text
    assert client.get(f"/v1/processes/{proc['id']}", headers=pim).json()["state"] == "approved"
    onward = client.post(url, json={"from": "approved"}, headers=pim)
    assert onward.json()["state"] == "active", onward.text


def test_a_start_names_its_record_even_when_it_changes_nothing(
    client: httpx.Client, consumer: Consumers
) -> None:
    # Review: a start whose write changed nothing stored a process without a record, which
    # could never be advanced; a second start on a record in process is refused.
    buyer = consumer(
        "srm", ["supplier:read", "supplier:write", "supplier:finance"], system="portal", person="bo"
    )
    boss = consumer("cfo", ["supplier:read", "approve"], person="carl")
    onboarding = {**SUPPLIER, "lifecycle_state": "onboarding"}
    r = client.post("/v1/suppliers", json={"key": "V-13", "attributes": onboarding}, headers=buyer)
    assert r.status_code == 200, r.text
    body = {"key": "V-13", "attributes": SUPPLIER}
    rid = {"X-Request-ID": "start-V-13"}
    first = client.post("/v1/processes/supplier-approval", json=body, headers={**buyer, **rid})
    assert first.status_code == 201, first.text
    assert first.json()["master_id"] == r.json()["master_id"]
    retried = client.post("/v1/processes/supplier-approval", json=body, headers={**buyer, **rid})
    assert retried.status_code == 201, retried.text
    assert retried.json()["id"] == first.json()["id"]
    again = client.post("/v1/processes/supplier-approval", json=body, headers=buyer)
    assert again.status_code == 409, again.text
    done = client.post(f"/v1/processes/{first.json()['id']}/advance", headers=boss)
    assert done.status_code == 200, done.text


def test_a_supplier_without_an_iban_is_not_ready_for_approval(
    client: httpx.Client, consumer: Consumers
) -> None:
    # Review: a bank account with only a holder passed the readiness check.
    buyer = consumer(
        "srm", ["supplier:read", "supplier:write", "supplier:finance"], system="portal", person="bo"
    )
    boss = consumer("cfo", ["supplier:read", "approve"], person="carl")
    attrs = {"name": "Bolt AG", "country": "DE", "bank_account": {"account_holder": "Bolt AG"}}
    r = client.post(
        "/v1/processes/supplier-approval", json={"key": "V-14", "attributes": attrs}, headers=buyer
    )
    assert r.status_code == 201, r.text
    done = client.post(f"/v1/processes/{r.json()['id']}/advance", headers=boss)
    assert done.status_code == 409, done.text
    assert "bank_account.iban missing" in done.json()["error"]["message"]


def test_a_start_naming_no_tax_id_needs_no_finance_scope(
    client: httpx.Client, consumer: Consumers
) -> None:
    # Review: the VAT-prefix validator assigned tax_id, so it counted as written (403).
    buyer = consumer("srm", ["supplier:read", "supplier:write"], system="portal", person="bo")
    attrs = {"name": "Bolt AG", "country": "DE"}
    r = client.post(
        "/v1/processes/supplier-approval", json={"key": "V-15", "attributes": attrs}, headers=buyer
    )
    assert r.status_code == 201, r.text
    from mastersync.domain.canonical.customer import Customer
    from mastersync.domain.canonical.supplier import Supplier

    for model in (Supplier, Customer):
        assert "tax_id" not in model.model_validate(attrs).model_fields_set
        given = model.model_validate({**attrs, "tax_id": "136695976"})
        assert (given.tax_id, "tax_id" in given.model_fields_set) == ("DE136695976", True)


def test_a_process_follows_its_record_out_of_a_split(
    client: httpx.Client, consumer: Consumers, hub: Hub
) -> None:
    # Review: after a split the process pointed at the record its source record left: it
    # could not be advanced, and the split-out record's lifecycle was not guarded.
    from mastersync.pipeline.matching.merging import split_record
    from tests.api.conftest import erp_ingest

    supplier = {**SUPPLIER, "tax_id": "DE136695976"}
    buyer = consumer(
        "srm", ["supplier:read", "supplier:write", "supplier:finance"], system="portal", person="bo"
    )
    boss = consumer("cfo", ["supplier:read", "approve"], person="carl")
    erp_ingest(hub, "supplier", {"no": "E1", "name": "Bolt AG", "vat": "DE136695976", "v": 1})
    start_body = {"key": "V-16", "attributes": supplier}
    proc = client.post("/v1/processes/supplier-approval", json=start_body, headers=buyer).json()
    new = split_record(hub.store, hub.landscape, "supplier", "portal", "V-16", actor="steward")
    assert client.get(f"/v1/processes/{proc['id']}", headers=boss).json()["master_id"] == new
    approved = {**SUPPLIER, "lifecycle_state": "approved"}
    r = client.post("/v1/suppliers", json={"key": "V-16", "attributes": approved}, headers=buyer)
    assert r.status_code == 409, r.text
    # The bank account waits for confirmation (it did from the start: the ERP's supplier
    # had none); confirmed, the process takes its step on the split-out record.
    [held] = hub.governance.pending(new)
    assert client.post(f"/v1/approvals/{held.id}/approve", headers=boss).status_code == 200
    done = client.post(f"/v1/processes/{proc['id']}/advance", headers=boss)
    assert done.status_code == 200, done.text
    view = client.get(f"/v1/suppliers/{new}", headers=buyer).json()
    assert view["attributes"]["lifecycle_state"] == "approved"
