"""Whether the Akeneo connector's listing holds the products the hub deactivated, against
akeneo-mock-server (the testbed of tests/e2e/real). A deactivation disables the product
(`enabled: false`) and keeps it; Akeneo's product list holds disabled products unless the
search asks for enabled ones. The connector's ``lists_inactive`` must say which it is."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from mastersync.connectors.akeneo.connector import AkeneoConnector
from mastersync.connectors.akeneo.spec import AkeneoSettings
from mastersync.connectors.registry import ConnectorContext
from mastersync.domain.subscriptions import Operation
from mastersync.ports.outbound import DeliveryRequest
from mastersync.ports.reconciliation import lists_inactive
from tests.connectors.akeneo.conftest import Pim
from tests.e2e.real.testbed import akeneo as akeneo_bed

# One worker runs them all: one mock server (scripts/test uses --dist loadgroup).
pytestmark = pytest.mark.xdist_group("akeneo")

ENABLED = {"enabled": [{"operator": "=", "value": True}]}
NOT_DISABLED = {"enabled": [{"operator": "!=", "value": False}]}


def connector(pim: Pim, tmp_path: Path, search: dict[str, Any]) -> AkeneoConnector:
    settings = AkeneoSettings.model_validate(
        {
            "type": "akeneo",
            "url": pim.url,
            "client_id": "c",
            "client_secret": "s",
            "username": "u",
            "password": "p",
            "headers": {akeneo_bed.DB_HEADER: pim.database},
            "retries": 0,
            "read": {"item": {"search": search}},
            "write": {"products": {"family": "mro"}},
        }
    )
    return AkeneoConnector(settings, ConnectorContext("pim", tmp_path))


def send(c: AkeneoConnector, sku: str, operation: Operation) -> None:
    version = 1 if operation is Operation.UPSERT else 2
    request = DeliveryRequest(
        subscription="pim.products",
        system="pim",
        domain="item",
        master_id=f"itm_{sku}",
        version=version,
        operation=operation,
        idempotency_key=f"itm_{sku}:{version}",
        target_key=sku,
        # `enabled` written: akeneo-mock-server stores no value for a product written
        # without it (Akeneo defaults it to true), and its enabled search then skips it.
        payload={"identifier": sku, "enabled": True, "values": {"name": f"Gloves {sku}"}},
        trace_id="t",
    )
    ack = asyncio.run(c.send(request))
    assert ack.target_key == sku


def two_made_one_disabled(c: AkeneoConnector) -> None:
    """A-1 and A-2 written through the connector, then A-2 deactivated through it."""
    send(c, "A-1", Operation.UPSERT)
    send(c, "A-2", Operation.UPSERT)
    send(c, "A-2", Operation.DEACTIVATE)


def test_a_listing_without_an_enabled_filter_holds_the_disabled_product_and_says_so(
    pim: Pim, tmp_path: Path
) -> None:
    c = connector(pim, tmp_path, {})
    two_made_one_disabled(c)
    listed = dict(c.read_state("item"))
    assert set(listed) == {"A-1", "A-2"}
    # The listed record shows the deactivation: `enabled` is handed over as Akeneo has it.
    assert (listed["A-1"]["enabled"], listed["A-2"]["enabled"]) == (True, False)
    assert c.lists_inactive is True
    assert lists_inactive(c) is True
    asyncio.run(c.close())


@pytest.mark.parametrize("search", [ENABLED, NOT_DISABLED], ids=["enabled", "not-disabled"])
def test_a_listing_of_enabled_products_leaves_the_disabled_one_out_and_says_so(
    pim: Pim, tmp_path: Path, search: dict[str, Any]
) -> None:
    c = connector(pim, tmp_path, search)
    two_made_one_disabled(c)
    assert [key for key, _ in c.read_state("item")] == ["A-1"]
    assert lists_inactive(c) is False
    # Enabled again in the PIM: listed again, which (a listing of enabled products only)
    # can only mean enabled there.
    response = pim.client.patch("/products/A-2", json={"identifier": "A-2", "enabled": True})
    assert response.status_code < 400, response.text
    assert sorted(key for key, _ in c.read_state("item")) == ["A-1", "A-2"]
    asyncio.run(c.close())


def test_a_family_search_still_lists_the_disabled_product_and_the_connector_says_so(
    pim: Pim, tmp_path: Path
) -> None:
    c = connector(pim, tmp_path, {"family": [{"operator": "IN", "value": ["mro"]}]})
    two_made_one_disabled(c)
    assert sorted(key for key, _ in c.read_state("item")) == ["A-1", "A-2"]
    assert lists_inactive(c) is True
    asyncio.run(c.close())


@pytest.mark.parametrize(
    ("reads", "says"),
    [
        ({}, True),
        ({"item": {}}, True),
        ({"item": {"search": ENABLED}}, False),
        ({"item": {"search": NOT_DISABLED}}, False),
        # A single rule instead of a list (the mock takes it so).
        ({"item": {"search": {"enabled": {"operator": "=", "value": True}}}}, False),
        # Disabled products only: a listed one may be one the hub disabled.
        ({"item": {"search": {"enabled": [{"operator": "=", "value": False}]}}}, True),
        # Not a boolean: Akeneo refuses it, nothing is said of what is listed.
        ({"item": {"search": {"enabled": [{"operator": "=", "value": 1}]}}}, True),
        # Asked once per run, not per domain: one listing holding them is enough.
        ({"item": {"search": ENABLED}, "kit": {}}, True),
    ],
    ids=[
        "no-reads",
        "no-search",
        "enabled",
        "not-disabled",
        "single-rule",
        "disabled-only",
        "not-a-boolean",
        "one-holds-them",
    ],
)
def test_the_declaration_follows_the_searches(
    tmp_path: Path, reads: dict[str, Any], says: bool
) -> None:
    settings = AkeneoSettings.model_validate(
        {
            "type": "akeneo",
            "url": "http://pim.invalid",
            "client_id": "c",
            "client_secret": "s",
            "username": "u",
            "password": "p",
            "read": reads,
        }
    )
    c = AkeneoConnector(settings, ConnectorContext("pim", tmp_path))
    assert lists_inactive(c) is says
    asyncio.run(c.close())
