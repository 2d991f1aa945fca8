"""Whether a record the Tryton connector lists is active there, against a live Tryton (the
testbed of tests/e2e/real: trytond 8.2 from PyPI on SQLite). A listing that holds archived
records (`inactive`, the default) says nothing of a record by listing it; the flag the
subscription's write clears to deactivate (`active_field`, `active` by default) does, when
the listing reads it. Reconciliation needs this to tell a record the hub deactivated from one
someone turned on again in Tryton."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from mastersync.connectors.registry import ConnectorContext
from mastersync.connectors.tryton.connector import TrytonConnector
from mastersync.connectors.tryton.spec import TrytonSettings
from mastersync.domain.subscriptions import Operation
from mastersync.ports.outbound import DeliveryRequest
from mastersync.ports.reconciliation import listed_active
from tests.e2e.real.conftest import Tryton
from tests.e2e.real.testbed import tryton as bed

# One worker runs them all: one Tryton server (scripts/test uses --dist loadgroup).
pytestmark = pytest.mark.xdist_group("tryton")

DATABASES = [f"listed{i}" for i in range(2)]
PARTIES = {"model": "party.party", "fields": ["name", "active"]}
TEMPLATES = {"model": "product.template", "fields": ["name", "active", "consumable"]}
UNIT = {"default_uom": {"model": "product.uom", "by": "symbol"}}


def settings(
    url: str, database: str, read: dict[str, Any], write: dict[str, Any]
) -> TrytonSettings:
    return TrytonSettings.model_validate(
        {
            "type": "tryton",
            "url": url,
            "database": database,
            "user": bed.USER,
            "password": bed.PASSWORD,
            "retries": 0,
            "read": {"customer": read},
            "write": {"customers": write},
        }
    )


def connector(
    tryton: Tryton, tmp_path: Path, read: dict[str, Any], write: dict[str, Any] | None = None
) -> TrytonConnector:
    made = settings(tryton.url, tryton.database, read, write or {"model": "party.party"})
    return TrytonConnector(made, ConnectorContext("tryton", tmp_path))


def send(c: TrytonConnector, master: str, operation: Operation, **found: Any) -> str:
    """One delivery of a record through the connector; the id Tryton holds it under."""
    version = 1 if operation is Operation.UPSERT else 2
    request = DeliveryRequest(
        subscription="tryton.customers",
        system="tryton",
        domain="customer",
        master_id=master,
        version=version,
        operation=operation,
        idempotency_key=f"{master}:{version}",
        target_key=found.pop("target", None),
        payload=found,
        trace_id="t",
    )
    ack = asyncio.run(c.send(request))
    assert ack.target_key is not None
    return ack.target_key


def made(c: TrytonConnector, master: str, deactivated: bool, **payload: Any) -> str:
    """A record written through the connector, then deactivated through it if asked; its id."""
    key = send(c, master, Operation.UPSERT, **payload)
    if deactivated:
        assert send(c, master, Operation.DEACTIVATE, target=key) == key
    return key


def activity(
    c: TrytonConnector, keys: list[str], subscription: str = "customers"
) -> dict[str, bool | None]:
    """What the connector tells of the records of its listing with these ids (the testbed
    holds records of its own: the company's party)."""
    listed = dict(c.read_state("customer"))
    return {key: listed_active(c, "customer", subscription, listed[key]) for key in keys}


def test_a_listed_party_says_whether_it_is_active_as_the_deactivation_left_it(
    tryton: Tryton, tmp_path: Path
) -> None:
    c = connector(tryton, tmp_path, PARTIES)  # inactive: true, the default
    on = made(c, "cus_on", False, name="Aktiv GmbH")
    off = made(c, "cus_off", True, name="Archiviert GmbH")
    assert activity(c, [on, off]) == {on: True, off: False}
    # Turned on again in Tryton, behind the hub's back: listed as active.
    tryton.write("party.party", [int(off)], {"active": True})
    assert activity(c, [on, off]) == {on: True, off: True}
    # No such subscription: nothing says how it deactivates records.
    assert activity(c, [on, off], "suppliers") == {on: None, off: None}
    asyncio.run(c.close())
    # A listing that does not read the flag cannot tell.
    blind = connector(tryton, tmp_path, {"model": "party.party", "fields": ["name"]})
    assert activity(blind, [on, off]) == {on: None, off: None}
    asyncio.run(blind.close())


def test_the_flag_told_by_is_the_writes_active_field(tryton: Tryton, tmp_path: Path) -> None:
    """A deactivation through another Boolean leaves `active` set: that one is read."""
    write = {"model": "product.template", "links": UNIT, "active_field": "consumable"}
    c = connector(tryton, tmp_path, {**TEMPLATES, "inactive": False}, write)
    key = made(c, "itm_1", True, name="Handschuhe", default_uom="u", consumable=True)
    [native] = [row for k, row in c.read_state("customer") if k == key]
    assert bool(native["active"]) is True
    assert activity(c, [key]) == {key: False}
    tryton.write("product.template", [int(key)], {"consumable": True})
    assert activity(c, [key]) == {key: True}
    asyncio.run(c.close())


@pytest.mark.parametrize(
    ("read", "native", "tells"),
    [
        # As Tryton sends a Boolean: true/false (PostgreSQL), 0/1 (SQLite).
        (PARTIES, {"name": "A", "active": True}, True),
        (PARTIES, {"name": "A", "active": False}, False),
        (PARTIES, {"name": "A", "active": 1}, True),
        (PARTIES, {"name": "A", "active": 0}, False),
        # Null, or not among the fields read: it cannot tell.
        (PARTIES, {"name": "A", "active": None}, None),
        (PARTIES, {"name": "A"}, None),
        # Another model's record (variants listed, templates written): not the flag cleared.
        ({"model": "product.product", "fields": ["active"]}, {"active": True}, None),
        # Stock positions are no records the hub deactivates.
        ({"kind": "stock"}, {"active": True}, None),
    ],
    ids=["true", "false", "one", "zero", "null", "missing", "other-model", "stock"],
)
def test_what_the_listed_record_tells(
    tmp_path: Path, read: dict[str, Any], native: dict[str, Any], tells: bool | None
) -> None:
    made = settings("http://erp.invalid", "db", read, {"model": "party.party"})
    c = TrytonConnector(made, ConnectorContext("tryton", tmp_path))
    assert c.listed_active("customer", "customers", native) is tells
    asyncio.run(c.close())
