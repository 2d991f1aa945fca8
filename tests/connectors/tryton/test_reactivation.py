"""An upsert after a deactivation leaves the record active in Tryton, against a live Tryton
(the testbed of tests/e2e/real: trytond 8.2 from PyPI on SQLite). The hub deactivates a
record (its subscription's filter stops selecting it, or a merge) by clearing the write's
`active_field`; when it selects the record again it sends an upsert, and the record must
be active again, found by the key the hub keeps or by `match` (archived records are
invisible to Tryton's searches unless `active_test` is off), never made a second time. An
outbound mapping that writes the flag itself decides it."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from mastersync.connectors.registry import ConnectorContext
from mastersync.connectors.tryton.connector import TrytonConnector
from mastersync.connectors.tryton.spec import TrytonSettings, TrytonWrite
from mastersync.connectors.tryton.writer import RecordWriter
from mastersync.domain.subscriptions import Operation
from mastersync.ports.outbound import DeliveryRequest
from tests.connectors.tryton.store import TrytonStore, rest_client
from tests.e2e.real.conftest import Tryton
from tests.e2e.real.testbed import tryton as bed

# One worker runs them all: one Tryton server (scripts/test uses --dist loadgroup).
pytestmark = pytest.mark.xdist_group("tryton")

DATABASES = [f"react{i}" for i in range(10)]
# Both halves: a domain that names `active` turns Tryton's active test off.
EITHER = ["active", "in", [True, False]]
UNIT = {"default_uom": {"model": "product.uom", "by": "symbol"}}


def connector(
    tryton: Tryton, tmp_path: Path, write: dict[str, Any], *, rest: bool = False
) -> TrytonConnector:
    """Over JSON-RPC with a session, or over the REST API with a user application key."""
    if rest:
        [app] = tryton.call("res.user.application.create", [{"user": 1, "application": "rest"}])
        [made] = tryton.call("res.user.application.read", [app], ["key"])
        login: dict[str, Any] = {"application_key": made["key"], "context": {"company": 1}}
    else:
        login = {"user": bed.USER, "password": bed.PASSWORD}
    return TrytonConnector(
        TrytonSettings.model_validate(
            {
                "type": "tryton",
                "url": tryton.url,
                "database": tryton.database,
                **login,
                "retries": 0,
                "write": {"customers": write},
            }
        ),
        ConnectorContext("tryton", tmp_path),
    )


def request(
    operation: Operation,
    payload: dict[str, Any],
    target: str | None,
    version: int,
    reactivate: bool = False,
) -> DeliveryRequest:
    return DeliveryRequest(
        subscription="tryton.customers",
        system="tryton",
        domain="customer",
        master_id="cus_1",
        version=version,
        operation=operation,
        idempotency_key=f"cus_1:{version}",
        target_key=target,
        payload=payload,
        trace_id="t",
        reactivate=reactivate,
    )


def made_then_deactivated(c: TrytonConnector, payload: dict[str, Any]) -> str:
    """A record created through the connector, then deactivated through it; its id."""
    made = asyncio.run(c.send(request(Operation.UPSERT, payload, None, 1)))
    assert made.target_key is not None
    asyncio.run(c.send(request(Operation.DEACTIVATE, {}, made.target_key, 2)))
    return made.target_key


def upsert(
    c: TrytonConnector, payload: dict[str, Any], target: str | None, reactivate: bool = True
) -> str:
    """The hub's upsert once the record is selected again (it deactivated it, so it says
    so); the acknowledged id."""
    ack = asyncio.run(c.send(request(Operation.UPSERT, payload, target, 3, reactivate)))
    assert ack.target_key is not None
    return ack.target_key


def parties(tryton: Tryton, name: str) -> list[dict[str, Any]]:
    """Every party of the name, archived ones too, with their flag as a bool."""
    rows = tryton.search_read("party.party", [["name", "=", name], EITHER], ["active"])
    return [{"id": str(r["id"]), "active": bool(r["active"])} for r in rows]


def test_an_upsert_by_the_key_the_hub_keeps_reactivates_the_archived_party(
    tryton: Tryton, tmp_path: Path
) -> None:
    """Review: the upsert wrote the name and left the party archived, while the hub held it
    as delivered active."""
    c = connector(tryton, tmp_path, {"model": "party.party"})
    key = made_then_deactivated(c, {"name": "Wieder Da GmbH"})
    assert parties(tryton, "Wieder Da GmbH") == [{"id": key, "active": False}]
    assert upsert(c, {"name": "Wieder Da GmbH"}, key) == key
    assert parties(tryton, "Wieder Da GmbH") == [{"id": key, "active": True}]
    asyncio.run(c.close())


def test_an_upsert_found_by_match_reactivates_the_archived_party_and_makes_none(
    tryton: Tryton, tmp_path: Path
) -> None:
    """No key held (an unmerge gives the record a new master id): `match` looks with the
    active test off, so it finds the archived party instead of creating a second one."""
    c = connector(tryton, tmp_path, {"model": "party.party", "match": ["name"]})
    key = made_then_deactivated(c, {"name": "Zurueck KG"})
    assert upsert(c, {"name": "Zurueck KG"}, None) == key
    assert parties(tryton, "Zurueck KG") == [{"id": key, "active": True}]
    asyncio.run(c.close())


@pytest.mark.parametrize("by", ["key", "match"])
def test_over_rest_the_archived_party_is_found_and_reactivated(
    tryton: Tryton, tmp_path: Path, by: str
) -> None:
    """Tryton's REST API looks a record up under the request's context: an archived one is
    404 unless `active_test` is off."""
    c = connector(tryton, tmp_path, {"model": "party.party", "match": ["code"]}, rest=True)
    payload = {"code": "R-1", "name": "Rest Wieder AG"}
    key = made_then_deactivated(c, payload)
    assert parties(tryton, "Rest Wieder AG") == [{"id": key, "active": False}]
    assert upsert(c, payload, key if by == "key" else None) == key
    assert parties(tryton, "Rest Wieder AG") == [{"id": key, "active": True}]
    asyncio.run(c.close())


def test_an_active_party_upserted_unchanged_is_not_written(tryton: Tryton, tmp_path: Path) -> None:
    """The flag is written only when the party is archived: every write moves write_date,
    which the reader would take as a change."""
    c = connector(tryton, tmp_path, {"model": "party.party"})
    key = upsert(c, {"name": "Immer Aktiv AG"}, None)
    [before] = tryton.search_read("party.party", [["id", "=", int(key)]], ["write_date"])
    assert upsert(c, {"name": "Immer Aktiv AG"}, key) == key
    [after] = tryton.search_read("party.party", [["id", "=", int(key)]], ["write_date"])
    assert before["write_date"] == after["write_date"]
    assert parties(tryton, "Immer Aktiv AG") == [{"id": key, "active": True}]
    asyncio.run(c.close())


@pytest.mark.parametrize("flag", [False, True], ids=["mapped-false", "mapped-true"])
def test_a_mapping_that_writes_active_decides_it(
    tryton: Tryton, tmp_path: Path, flag: bool
) -> None:
    c = connector(tryton, tmp_path, {"model": "party.party"})
    key = made_then_deactivated(c, {"name": "Gemappt OHG"})
    assert upsert(c, {"name": "Gemappt OHG", "active": flag}, key) == key
    assert parties(tryton, "Gemappt OHG") == [{"id": key, "active": flag}]
    asyncio.run(c.close())


def test_a_mapping_that_gives_active_no_value_leaves_it_to_the_connector(
    tryton: Tryton, tmp_path: Path
) -> None:
    """Outbound, a field the golden record lacks is null: that is no value for the flag."""
    c = connector(tryton, tmp_path, {"model": "party.party"})
    key = made_then_deactivated(c, {"name": "Ohne Wert eG"})
    assert upsert(c, {"name": "Ohne Wert eG", "active": None}, key) == key
    assert parties(tryton, "Ohne Wert eG") == [{"id": key, "active": True}]
    asyncio.run(c.close())


def test_another_active_field_is_set_again(tryton: Tryton, tmp_path: Path) -> None:
    """`active_field` names the flag: the one deactivation cleared is the one set again."""
    write = {"model": "product.template", "links": UNIT, "active_field": "consumable"}
    c = connector(tryton, tmp_path, write)
    payload = {"name": "Handschuhe", "default_uom": "u"}
    key = made_then_deactivated(c, payload)
    [held] = tryton.search_read("product.template", [["id", "=", int(key)]], ["consumable"])
    assert not held["consumable"]
    assert upsert(c, payload, key) == key
    [held] = tryton.search_read("product.template", [["id", "=", int(key)]], ["consumable"])
    assert held["consumable"]
    asyncio.run(c.close())


# --- the writer over both transports (REST looks a record up under the request's context) ---
WRITE = TrytonWrite.model_validate({"model": "party.party", "match": ["code"]})


@pytest.mark.parametrize("over", ["rpc", "rest"])
@pytest.mark.parametrize("by", ["key", "match"])
def test_an_archived_party_is_found_and_reactivated_over_both_transports(
    over: str, by: str
) -> None:
    store = TrytonStore()
    party = store.add("party.party", code="C1", name="Acme", active=False)
    writer = RecordWriter(store if over == "rpc" else rest_client(store), {})
    target = str(party) if by == "key" else None
    assert writer.upsert(WRITE, {"code": "C1", "name": "Acme"}, target, reactivate=True) == party
    assert store.tables["party.party"] == {
        party: {"id": party, "code": "C1", "name": "Acme", "active": True}
    }
    assert store.writes == [("party.party", [party], {"active": True}, {"active_test": False})]


def test_an_active_party_gets_no_write_and_a_new_one_is_made_active() -> None:
    store = TrytonStore()
    party = store.add("party.party", code="C1", name="Acme")
    writer = RecordWriter(store, {})
    assert writer.upsert(WRITE, {"code": "C1", "name": "Acme"}, str(party)) == party
    assert store.writes == []
    made = writer.upsert(WRITE, {"code": "C2", "name": "Beta"}, None)
    assert store.tables["party.party"][made]["active"] is True


def test_a_party_a_person_archived_stays_archived(tryton: Tryton, tmp_path: Path) -> None:
    """The hub did not deactivate it (it holds it active there): its upsert leaves the flag
    alone, or a person's archive at a system that is source and consumer was undone."""
    c = connector(tryton, tmp_path, {"model": "party.party"})
    key = upsert(c, {"name": "Archiviert Hand KG"}, None, reactivate=False)
    tryton.write("party.party", [int(key)], {"active": False})
    assert upsert(c, {"name": "Archiviert Hand KG"}, key, reactivate=False) == key
    assert parties(tryton, "Archiviert Hand KG") == [{"id": key, "active": False}]
    asyncio.run(c.close())
