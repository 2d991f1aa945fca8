"""A field cleared at the hub comes as null, against a live Tryton (the testbed of
tests/e2e/real): written as None to a record Tryton has, left out of a new one (Tryton's
defaults and `on_create` apply), children left alone, and a required field's refusal a
terminal failure naming the field."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from mastersync.connectors.registry import ConnectorContext
from mastersync.connectors.tryton.connector import TrytonConnector
from mastersync.connectors.tryton.spec import TrytonSettings
from mastersync.domain.subscriptions import Operation
from mastersync.ports.outbound import DeliveryAck, DeliveryRequest, TerminalFailure
from tests.e2e.real.conftest import Tryton
from tests.e2e.real.testbed import tryton as bed

# One worker runs them all: one Tryton server (scripts/test uses --dist loadgroup).
pytestmark = pytest.mark.xdist_group("tryton")

DATABASES = [f"nulls{i}" for i in range(4)]

CATEGORY = {"model": "party.category", "by": "name"}
WRITE: dict[str, Any] = {
    "customers": {
        "model": "party.party",
        "match": ["code"],
        "on_create": {"categories": ["Customer"]},
        "links": {"categories": CATEGORY},
    },
    "products": {
        "model": "product.template",
        "match": ["code"],
        "links": {"default_uom": {"model": "product.uom", "by": "symbol"}},
    },
}


def connector(tryton: Tryton, tmp_path: Path) -> TrytonConnector:
    settings = {
        "type": "tryton",
        "url": tryton.url,
        "database": tryton.database,
        "user": bed.USER,
        "password": bed.PASSWORD,
        "retries": 0,
        "write": WRITE,
    }
    return TrytonConnector(
        TrytonSettings.model_validate(settings), ConnectorContext("tryton", tmp_path)
    )


def send(c: TrytonConnector, name: str, payload: dict[str, Any], target: str | None) -> str:
    request = DeliveryRequest(
        subscription=f"tryton.{name}",
        system="tryton",
        domain="item" if name == "products" else "customer",
        master_id="m_1",
        version=1,
        operation=Operation.UPSERT,
        idempotency_key="m_1:1",
        target_key=target,
        payload=payload,
        trace_id="t",
    )
    ack = asyncio.run(c.send(request))
    assert isinstance(ack, DeliveryAck) and ack.target_key is not None
    return ack.target_key


def one(tryton: Tryton, model: str, key: str, fields: list[str]) -> dict[str, Any]:
    [row] = tryton.search_read(model, [["id", "=", int(key)]], fields)
    return row


def test_a_null_clears_the_field_of_a_record_tryton_has(tryton: Tryton, tmp_path: Path) -> None:
    c = connector(tryton, tmp_path)
    key = send(c, "customers", {"code": "N-1", "name": "Nullmann KG"}, None)
    assert send(c, "customers", {"code": "N-1", "name": None}, key) == key
    assert one(tryton, "party.party", key, ["name", "code"])["name"] is None
    asyncio.run(c.close())


def test_a_null_in_a_new_record_leaves_trytons_and_on_creates_defaults(
    tryton: Tryton, tmp_path: Path
) -> None:
    """Review: the None was created with the record, over on_create's category and over
    Tryton's default (a template's type, which is required: the create was refused)."""
    c = connector(tryton, tmp_path)
    party = send(c, "customers", {"code": "N-2", "name": "Neu AG", "categories": None}, None)
    customer = tryton.id_of("party.category", "name", "Customer")
    assert one(tryton, "party.party", party, ["categories"])["categories"] == [customer]
    payload = {"code": "NT-1", "name": "Cap", "default_uom": "u", "type": None}
    template = send(c, "products", payload, None)
    assert one(tryton, "product.template", template, ["type"])["type"] == "goods"
    asyncio.run(c.close())


def test_a_null_for_children_or_links_leaves_them_as_they_are(
    tryton: Tryton, tmp_path: Path
) -> None:
    """Review: a null One2Many deleted every (active) child: Tryton deletes them, with what
    refers to them. The hub never read them as one value it could clear; an empty list
    still removes them. Many2Many links are only ever added, so a null adds none."""
    c = connector(tryton, tmp_path)
    payload = {"code": "N-3", "name": "Kind GmbH", "addresses": [{"city": "Kassel"}]}
    key = send(c, "customers", payload, None)
    before = one(tryton, "party.party", key, ["addresses", "categories"])
    assert len(before["addresses"]) == 1 and len(before["categories"]) == 1
    cleared = {"code": "N-3", "name": "Kind GmbH", "addresses": None, "categories": None}
    assert send(c, "customers", cleared, key) == key
    after = one(tryton, "party.party", key, ["addresses", "categories"])
    assert after == before
    asyncio.run(c.close())


def test_a_null_for_a_required_field_fails_for_good_naming_it(
    tryton: Tryton, tmp_path: Path
) -> None:
    c = connector(tryton, tmp_path)
    payload = {"code": "NT-2", "name": "Cap", "default_uom": "u"}
    template = send(c, "products", payload, None)
    with pytest.raises(TerminalFailure) as refused:
        send(c, "products", {**payload, "name": None}, template)
    assert 'field "Name"' in refused.value.message  # Tryton's own words
    assert "sent as null, cleared at the hub: name" in refused.value.message
    assert one(tryton, "product.template", template, ["name"])["name"] == "Cap"
    asyncio.run(c.close())
