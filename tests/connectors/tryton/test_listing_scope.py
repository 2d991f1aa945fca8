"""Whether the Tryton connector's listing holds the records the hub deactivated, against a
live Tryton (the testbed of tests/e2e/real: trytond 8.2 from PyPI on SQLite). A deactivation
clears the record's `active_field` (archives it, by default); Tryton's search and reads leave
archived records out unless the context says ``active_test: false`` (what `inactive` asks
for). The connector's ``lists_inactive`` must say what its listing then holds."""

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
from mastersync.ports.reconciliation import lists_inactive
from tests.e2e.real.conftest import Tryton
from tests.e2e.real.testbed import tryton as bed

# One worker runs them all: one Tryton server (scripts/test uses --dist loadgroup).
pytestmark = pytest.mark.xdist_group("tryton")

DATABASES = [f"scope{i}" for i in range(6)]
PARTIES = {"model": "party.party", "fields": ["name", "active"]}


def connector(
    tryton: Tryton,
    tmp_path: Path,
    read: dict[str, Any],
    write: dict[str, Any] | None = None,
    context: dict[str, Any] | None = None,
) -> TrytonConnector:
    return TrytonConnector(
        TrytonSettings.model_validate(
            {
                "type": "tryton",
                "url": tryton.url,
                "database": tryton.database,
                "user": bed.USER,
                "password": bed.PASSWORD,
                "retries": 0,
                "context": context or {},
                "read": {"customer": read},
                "write": {"customers": write or {"model": "party.party"}},
            }
        ),
        ConnectorContext("tryton", tmp_path),
    )


def request(operation: Operation, payload: dict[str, Any], target: str | None) -> DeliveryRequest:
    version = 1 if operation is Operation.UPSERT else 2
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
    )


def made_then_deactivated(c: TrytonConnector, payload: dict[str, Any]) -> str:
    """A record created through the connector, then deactivated through it; its id."""

    async def run() -> str:
        made = await c.send(request(Operation.UPSERT, payload, None))
        assert made.target_key is not None
        await c.send(request(Operation.DEACTIVATE, {}, made.target_key))
        return made.target_key

    return asyncio.run(run())


def listed(c: TrytonConnector) -> dict[str, dict[str, Any]]:
    return dict(c.read_state("customer"))


def flag(value: Any) -> bool:
    """A Boolean as Tryton sends it (on SQLite: 0 or 1)."""
    assert value in (0, 1)
    return bool(value)


def test_reading_inactive_records_lists_the_archived_party_and_says_so(
    tryton: Tryton, tmp_path: Path
) -> None:
    c = connector(tryton, tmp_path, PARTIES)  # inactive: true, the default
    key = made_then_deactivated(c, {"name": "Archiviert GmbH"})
    assert tryton.search_read("party.party", [["id", "=", int(key)]], ["active"]) == []
    held = listed(c)
    # Listed, and showing its deactivation (`active` is among the fields read).
    assert held[key]["name"] == "Archiviert GmbH"
    assert flag(held[key]["active"]) is False
    assert c.lists_inactive is True
    assert lists_inactive(c) is True
    asyncio.run(c.close())


def test_reading_active_records_only_leaves_the_archived_party_out_and_says_so(
    tryton: Tryton, tmp_path: Path
) -> None:
    c = connector(tryton, tmp_path, {**PARTIES, "inactive": False})
    key = made_then_deactivated(c, {"name": "Archiviert AG"})
    assert key not in listed(c)
    assert lists_inactive(c) is False
    # Turned on again in Tryton: listed again, which (a listing of active records only)
    # can only mean active there.
    tryton.write("party.party", [int(key)], {"active": True})
    assert flag(listed(c)[key]["active"]) is True
    asyncio.run(c.close())


def test_a_filter_naming_active_brings_no_archived_party_back_and_the_connector_says_so(
    tryton: Tryton, tmp_path: Path
) -> None:
    """Tryton adds no `active = true` to a domain that names `active`, so the search finds
    the archived party; but the records found are read again under the context, whose
    active test leaves it out."""
    read = {**PARTIES, "inactive": False, "filter": [["active", "in", [True, False]]]}
    c = connector(tryton, tmp_path, read)
    key = made_then_deactivated(c, {"name": "Gefiltert KG"})
    assert key not in listed(c)
    assert lists_inactive(c) is False
    asyncio.run(c.close())


def test_a_context_without_active_test_lists_archived_parties_and_the_connector_says_so(
    tryton: Tryton, tmp_path: Path
) -> None:
    c = connector(tryton, tmp_path, {**PARTIES, "inactive": False}, context={"active_test": False})
    key = made_then_deactivated(c, {"name": "Kontext OHG"})
    assert flag(listed(c)[key]["active"]) is False
    assert lists_inactive(c) is True
    asyncio.run(c.close())


TEMPLATES = {"model": "product.template", "fields": ["name", "active", "consumable"]}
UNIT = {"default_uom": {"model": "product.uom", "by": "symbol"}}


def test_a_deactivation_through_another_field_leaves_the_record_listed_and_says_so(
    tryton: Tryton, tmp_path: Path
) -> None:
    """`active_field` names another Boolean: active_test does not look at it."""
    write = {"model": "product.template", "links": UNIT, "active_field": "consumable"}
    c = connector(tryton, tmp_path, {**TEMPLATES, "inactive": False}, write)
    payload = {"name": "Handschuhe", "default_uom": "u", "consumable": True}
    key = made_then_deactivated(c, payload)
    held = listed(c)[key]
    assert (flag(held["consumable"]), flag(held["active"])) == (False, True)
    assert lists_inactive(c) is True
    asyncio.run(c.close())


def test_a_product_deactivated_through_active_is_left_out_and_the_connector_says_so(
    tryton: Tryton, tmp_path: Path
) -> None:
    write = {"model": "product.template", "links": UNIT}
    c = connector(tryton, tmp_path, {**TEMPLATES, "inactive": False}, write)
    key = made_then_deactivated(c, {"name": "Schutzbrille", "default_uom": "u"})
    assert key not in listed(c)
    assert lists_inactive(c) is False
    asyncio.run(c.close())


@pytest.mark.parametrize(
    ("reads", "says"),
    [
        ({}, True),
        ({"inventory": {"kind": "stock"}}, True),
        ({"customer": PARTIES}, True),
        ({"customer": {**PARTIES, "inactive": False}}, False),
        (
            {"customer": {**PARTIES, "inactive": False}, "inventory": {"kind": "stock"}},
            False,
        ),
        # Asked once per run, not per domain: one listing holding them is enough.
        ({"customer": {**PARTIES, "inactive": False}, "supplier": PARTIES}, True),
    ],
    ids=[
        "no-reads",
        "stock-only",
        "inactive",
        "active-only",
        "active-only-and-stock",
        "one-holds-them",
    ],
)
def test_the_declaration_follows_the_reads(
    tmp_path: Path, reads: dict[str, Any], says: bool
) -> None:
    settings = TrytonSettings.model_validate(
        {
            "type": "tryton",
            "url": "http://erp.invalid",
            "database": "db",
            "user": "u",
            "password": "p",
            "read": reads,
        }
    )
    c = TrytonConnector(settings, ConnectorContext("tryton", tmp_path))
    assert lists_inactive(c) is says
    asyncio.run(c.close())
