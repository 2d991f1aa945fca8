"""Writing to Tryton: children lined up with the ones the reader hands over (active only),
archived records updated and deactivated over both transports, and a ConcurrencyException
over REST retried."""

from __future__ import annotations

import pytest

from mastersync.connectors.tryton.reader import ModelReader
from mastersync.connectors.tryton.rpc import Transport
from mastersync.connectors.tryton.spec import TrytonRead, TrytonWrite
from mastersync.connectors.tryton.writer import RecordWriter
from mastersync.ports.connector import TransientError
from tests.connectors.tryton.store import TrytonStore, rest_client

READ = TrytonRead.model_validate(
    {
        "model": "party.party",
        "fields": ["code", "name"],
        "inactive": True,
        "children": {
            "addresses": {"model": "party.address", "parent": "party", "fields": ["street"]},
            "contact_mechanisms": {
                "model": "party.contact_mechanism",
                "parent": "party",
                "fields": ["type", "value"],
            },
        },
    }
)
WRITE = TrytonWrite.model_validate(
    {"model": "party.party", "children": {"addresses": {}, "contact_mechanisms": {}}}
)


def transport(store: TrytonStore, over: str) -> Transport:
    return store if over == "rpc" else rest_client(store)


def party_with_an_archived_address_and_mechanism(store: TrytonStore, *, active: bool) -> int:
    party = store.add("party.party", code="C1", name="Acme", active=active)
    store.add("party.address", party=party, street="Old St 1", active=False)
    store.add("party.address", party=party, street="Main St 2")
    store.add("party.contact_mechanism", party=party, type="email", value="x@a", active=False)
    store.add("party.contact_mechanism", party=party, type="email", value="info@a")
    return party


@pytest.mark.parametrize("over", ["rpc", "rest"])
@pytest.mark.parametrize("active", [True, False], ids=["active", "archived"])
def test_children_are_matched_with_the_active_ones_the_reader_hands_over(
    over: str, active: bool
) -> None:
    store = TrytonStore()
    party = party_with_an_archived_address_and_mechanism(store, active=active)
    [row] = ModelReader(store, READ, {}).records([party])
    # The hub reads the active children only, and sends them back changed, one more address.
    assert [a["street"] for a in row["addresses"]] == ["Main St 2"]
    assert [c["value"] for c in row["contact_mechanisms"]] == ["info@a"]
    payload = {
        "code": "C1",
        "name": "Acme",
        "addresses": [{"street": "Main St 3"}, {"street": "Side St 4"}],
        "contact_mechanisms": [{"type": "email", "value": "sales@a"}],
    }
    assert RecordWriter(transport(store, over), {}).upsert(WRITE, payload, str(party)) == party

    addresses = {a["street"]: a["active"] for a in store.tables["party.address"].values()}
    assert addresses == {"Old St 1": False, "Main St 3": True, "Side St 4": True}
    mechanisms = {c["value"]: c["active"] for c in store.tables["party.contact_mechanism"].values()}
    assert mechanisms == {"x@a": False, "sales@a": True}
    [again] = ModelReader(store, READ, {}).records([party])
    assert [a["street"] for a in again["addresses"]] == ["Main St 3", "Side St 4"]


def test_surplus_children_are_the_active_ones_archived_ones_stay() -> None:
    store = TrytonStore()
    party = party_with_an_archived_address_and_mechanism(store, active=True)
    RecordWriter(store, {}).upsert(WRITE, {"addresses": [], "contact_mechanisms": []}, str(party))
    assert [a["street"] for a in store.tables["party.address"].values()] == ["Old St 1"]
    assert [c["value"] for c in store.tables["party.contact_mechanism"].values()] == ["x@a"]


@pytest.mark.parametrize("over", ["rpc", "rest"])
def test_an_archived_party_is_updated(over: str) -> None:
    store = TrytonStore()
    party = store.add("party.party", code="C1", name="Acme", active=False)
    writer = RecordWriter(transport(store, over), {"company": 1})
    assert writer.upsert(WRITE, {"code": "C1", "name": "Acme GmbH"}, str(party)) == party
    assert store.tables["party.party"][party]["name"] == "Acme GmbH"
    assert store.writes[-1][3] == {"company": 1, "active_test": False}


@pytest.mark.parametrize("over", ["rpc", "rest"])
def test_deactivating_an_archived_party_again_is_no_failure(over: str) -> None:
    store = TrytonStore()
    party = store.add("party.party", code="C1", name="Acme")
    writer = RecordWriter(transport(store, over), {"company": 1})
    writer.deactivate(WRITE, str(party))
    writer.deactivate(WRITE, str(party))  # sent again: its answer was lost
    assert store.tables["party.party"][party]["active"] is False
    assert len(store.writes) == 2


def test_a_concurrency_exception_over_rest_is_transient() -> None:
    store = TrytonStore()
    party = store.add("party.party", code="C1", name="Acme")
    store.locked = True  # Tryton answers 423 Locked
    with pytest.raises(TransientError, match="423") as caught:
        RecordWriter(rest_client(store), {}).upsert(WRITE, {"name": "Acme GmbH"}, str(party))
    assert caught.value.status == 423


def test_a_child_added_with_a_null_is_created_without_it() -> None:
    """A new child is a create too: a null there would override Tryton's default (a null of
    a child it has is written, clearing the field)."""
    store = TrytonStore()
    party = party_with_an_archived_address_and_mechanism(store, active=True)
    for address in store.tables["party.address"].values():
        address["city"] = "Kassel"
    addresses = [{"street": "Main St 2", "city": None}, {"street": "Side St 4", "city": None}]
    RecordWriter(store, {}).upsert(WRITE, {"addresses": addresses}, str(party))
    [(_, _, values, _)] = store.writes
    [(write, [_], changed), create] = values["addresses"]
    assert (write, changed) == ("write", {"city": None})
    assert create == ["create", [{"street": "Side St 4"}]]
