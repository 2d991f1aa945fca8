"""The Tryton connector against a live server: incremental reads (lookback, ties, pages,
children and related records), both transports, writes and how failures are classified."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path
from typing import Any

import pytest

from mastersync.connectors.registry import ConnectorContext
from mastersync.connectors.tryton.connector import TrytonConnector
from mastersync.connectors.tryton.rpc import JsonRpc
from mastersync.connectors.tryton.spec import TrytonSettings
from mastersync.domain.subscriptions import Operation
from mastersync.ports.connector import SourceRecord, TerminalError, TransientError
from mastersync.ports.outbound import DeliveryRequest, TerminalFailure, TransientFailure
from tests.e2e.real.conftest import Tryton
from tests.e2e.real.testbed import tryton as bed
from tests.e2e.real.testbed.common import free_port

# One worker runs them all: one Tryton server (scripts/test uses --dist loadgroup).
pytestmark = pytest.mark.xdist_group("tryton")

CUSTOMER_READ: dict[str, Any] = {
    "model": "party.party",
    "filter": [["categories.name", "=", "Customer"]],
    "fields": ["code", "name", "active"],
    "children": {
        "addresses": {"model": "party.address", "parent": "party", "fields": ["city"]},
    },
}
CUSTOMER_WRITE: dict[str, Any] = {
    "model": "party.party",
    "match": ["code"],
    "on_create": {"categories": ["Customer"]},
    "links": {"categories": {"model": "party.category", "by": "name"}},
    "children": {"addresses": {"links": {"country": {"model": "country.country", "by": "code"}}}},
}


def connector(tmp_path: Path, url: str, database: str, **settings: Any) -> TrytonConnector:
    auth = {"user": bed.USER, "password": bed.PASSWORD} if "application_key" not in settings else {}
    return TrytonConnector(
        TrytonSettings.model_validate(
            {
                "type": "tryton",
                "url": url,
                "database": database,
                "read": {"customer": CUSTOMER_READ},
                "write": {"customers": CUSTOMER_WRITE},
                "retries": 0,
                **auth,
                **settings,
            }
        ),
        ConnectorContext("tryton", tmp_path),
    )


def party(tryton: Tryton, name: str, code: str, city: str = "Berlin") -> int:
    return tryton.create(
        "party.party",
        {
            "name": name,
            "code": code,
            "categories": [["add", [tryton.id_of("party.category", "name", "Customer")]]],
            "addresses": [["create", [{"city": city}]]],
        },
    )


def read_all(c: TrytonConnector, cursor: str | None, page: int) -> tuple[list[str], str | None]:
    keys: list[str] = []
    while True:
        p = c.read("customer", cursor, page)
        keys += [str(r.payload["code"]) for r in p.records if isinstance(r, SourceRecord)]
        cursor = p.cursor
        if not p.more:
            return keys, cursor


def request(version: int, payload: dict[str, Any], target: str | None, op: Operation) -> Any:
    return DeliveryRequest(
        subscription="tryton.customers",
        system="tryton",
        domain="customer",
        master_id="cus_1",
        version=version,
        operation=op,
        idempotency_key=f"cus_1:{version}",
        target_key=target,
        payload=payload,
        trace_id="t",
    )


def test_incremental_reads_see_every_change_once(tryton: Tryton, tmp_path: Path) -> None:
    c = connector(tmp_path, tryton.url, tryton.database, context={"company": 1})
    ids = [party(tryton, f"Kunde {n}", f"K-{n}") for n in range(5)]
    first, cursor = read_all(c, None, page=2)
    assert first == ["K-0", "K-1", "K-2", "K-3", "K-4"]
    # Nothing changed: the lookback window is read again, but nothing handed over twice.
    again, cursor = read_all(c, cursor, page=2)
    assert again == []

    # A party's own change, and a change to another party's address only.
    tryton.write("party.party", [ids[1]], {"name": "Kunde eins"})
    [address] = tryton.search_read("party.address", [["party", "=", ids[3]]], ["id"])
    tryton.write("party.address", [address["id"]], {"city": "Bremen"})
    changed, cursor = read_all(c, cursor, page=2)
    assert sorted(changed) == ["K-1", "K-3"]
    page = c.read("customer", None, 10)
    by_code = {r.payload["code"]: r.payload for r in page.records if isinstance(r, SourceRecord)}
    assert by_code["K-3"]["addresses"] == [{"id": address["id"], "city": "Bremen"}]
    assert by_code["K-1"]["name"] == "Kunde eins"
    # The record's version is the newest change of it and its children.
    assert by_code["K-3"]["_changed"] > by_code["K-2"]["_changed"]

    # Archiving is a change too (inactive records are read).
    tryton.write("party.party", [ids[4]], {"active": False})
    changed, cursor = read_all(c, cursor, page=2)
    assert changed == ["K-4"]
    assert dict(c.read_state("customer"))[str(ids[4])]["active"] in (0, False)
    asyncio.run(c.close())


def test_the_rest_api_with_an_application_key_reads_and_writes_alike(
    tryton: Tryton, tmp_path: Path
) -> None:
    party(tryton, "Rest Kunde", "R-1", city="Wien")
    [app] = tryton.call("res.user.application.create", [{"user": 1, "application": "rest"}])
    [key] = tryton.call("res.user.application.read", [app], ["key"])
    rest = connector(
        tmp_path, tryton.url, tryton.database, application_key=key["key"], context={"company": 1}
    )
    rpc = connector(tmp_path, tryton.url, tryton.database)
    over_rest = dict(rest.read_state("customer"))
    over_rpc = dict(rpc.read_state("customer"))
    assert over_rest == over_rpc
    assert next(iter(over_rest.values()))["addresses"][0]["city"] == "Wien"

    payload = {"code": "R-2", "name": "Neu über REST", "addresses": [{"city": "Graz"}]}
    ack = asyncio.run(rest.send(request(1, payload, None, Operation.UPSERT)))
    [created] = tryton.search_read("party.party", [["code", "=", "R-2"]], ["name"])
    assert ack.target_key == str(created["id"])
    assert created["name"] == "Neu über REST"
    asyncio.run(rest.close())
    asyncio.run(rpc.close())


def test_writes_upsert_match_deactivate_and_classify_failures(
    tryton: Tryton, tmp_path: Path
) -> None:
    c = connector(tmp_path, tryton.url, tryton.database)

    def send(version: int, payload: dict[str, Any], target: str | None, op: Any) -> Any:
        return asyncio.run(c.send(request(version, payload, target, op)))

    payload = {
        "code": "W-1",
        "name": "Werkzeug Weber",
        "addresses": [{"street": "Am Markt 2", "city": "Leipzig", "country": "DE"}],
    }
    ack = send(1, payload, None, Operation.UPSERT)
    party_id = int(str(ack.target_key))
    # The session expired on the server: the connector logs in again by itself.
    assert isinstance(c.transport, JsonRpc)
    c.transport._session = base64.b64encode(b"admin:1:expired").decode()
    # The answer was lost: the retry knows no key, finds the party by its code.
    again = send(1, payload, None, Operation.UPSERT)
    assert again.target_key == ack.target_key
    assert len(tryton.search_read("party.party", [["code", "=", "W-1"]], ["id"])) == 1
    # An unchanged record is not written at all (its write_date stays).
    [before] = tryton.search_read("party.party", [["id", "=", party_id]], ["write_date"])
    send(2, payload, ack.target_key, Operation.UPSERT)
    [after] = tryton.search_read("party.party", [["id", "=", party_id]], ["write_date"])
    assert before["write_date"] == after["write_date"]
    # A second address is added, the first one updated in place.
    payload["addresses"] = [
        {"street": "Am Markt 3", "city": "Leipzig", "country": "DE"},
        {"street": "Lager 1", "city": "Halle", "country": "DE"},
    ]
    send(3, payload, ack.target_key, Operation.UPSERT)
    rows = tryton.search_read("party.address", [["party", "=", party_id]], ["street", "city"])
    assert [(r["street"], r["city"]) for r in rows] == [
        ("Am Markt 3", "Leipzig"),
        ("Lager 1", "Halle"),
    ]

    send(4, payload, ack.target_key, Operation.DEACTIVATE)
    assert tryton.search_read("party.party", [["id", "=", party_id]], ["id"]) == []
    # Archived, not deleted: an explicit "active" in a domain lists archived records.
    archived = tryton.search_read(
        "party.party", [["id", "=", party_id], ["active", "=", False]], ["active"]
    )
    assert not archived[0]["active"]

    # Terminal: what Tryton refuses, and what cannot be written at all.
    with pytest.raises(TerminalFailure, match="not valid"):
        send(
            5,
            {**payload, "code": "W-2", "identifiers": [{"type": "eu_vat", "code": "DE1"}]},
            None,
            Operation.UPSERT,
        )
    with pytest.raises(TerminalFailure, match="has no field"):
        send(6, {"code": "W-3", "name": "X", "shoe_size": 44}, None, Operation.UPSERT)
    with pytest.raises(TerminalFailure, match=r"no country\.country with code = 'XX'"):
        send(
            7,
            {"code": "W-4", "name": "Y", "addresses": [{"country": "XX"}]},
            None,
            Operation.UPSERT,
        )
    asyncio.run(c.close())

    wrong = connector(tmp_path, tryton.url, tryton.database, password="not-the-password")
    with pytest.raises(TerminalError, match="refused the login"):
        wrong.read("customer", None, 10)
    asyncio.run(wrong.close())


def test_an_unreachable_server_is_a_transient_failure(tmp_path: Path) -> None:
    c = connector(tmp_path, f"http://127.0.0.1:{free_port()}", "nothing")
    with pytest.raises(TransientError, match="ConnectError"):
        c.read("customer", None, 10)
    with pytest.raises(TransientFailure, match="ConnectError"):
        asyncio.run(c.send(request(1, {"code": "Z", "name": "Z"}, None, Operation.UPSERT)))
    asyncio.run(c.close())


def test_products_are_upserted_as_templates_with_their_variant(
    tryton: Tryton, tmp_path: Path
) -> None:
    c = connector(
        tmp_path,
        tryton.url,
        tryton.database,
        write={
            "products": {
                "model": "product.template",
                "match": ["code"],
                "links": {"default_uom": {"model": "product.uom", "by": "symbol"}},
                "on_create": {"type": "goods"},
            }
        },
    )

    def send(version: int, payload: dict[str, Any], target: str | None) -> Any:
        req = request(version, payload, target, Operation.UPSERT)
        req.subscription, req.domain = "tryton.products", "item"
        return asyncio.run(c.send(req))

    payload = {
        "code": "SC-1",
        "name": "Safety cap",
        "list_price": "4.20",
        "default_uom": "u",
        "products": [{"suffix_code": "-RED"}],
    }
    ack = send(1, payload, None)
    [template] = tryton.search_read(
        "product.template",
        [["id", "=", int(ack.target_key)]],
        ["name", "list_price", "default_uom.symbol", "products"],
    )
    assert template["name"] == "Safety cap"
    assert template["list_price"] == {"__class__": "Decimal", "decimal": "4.20"}
    assert template["default_uom."]["symbol"] == "u"
    [variant] = tryton.search_read("product.product", [["template", "=", template["id"]]], ["code"])
    assert variant["code"] == "SC-1-RED"

    # A new list price updates the template in place; the variant stays the same record.
    send(2, {**payload, "list_price": "4.50"}, ack.target_key)
    [template] = tryton.search_read(
        "product.template", [["id", "=", int(ack.target_key)]], ["list_price", "products"]
    )
    assert template["list_price"] == {"__class__": "Decimal", "decimal": "4.50"}
    assert template["products"] == [variant["id"]]
    with pytest.raises(TerminalFailure, match=r"no product\.uom with symbol = 'crate'"):
        send(3, {**payload, "default_uom": "crate"}, ack.target_key)
    asyncio.run(c.close())
