"""An upsert after a deactivation leaves the product enabled in Akeneo, against
akeneo-mock-server (PyPI, the testbed of tests/e2e/real, its databases on the tests'
PostgreSQL). The hub deactivates a product (its subscription's filter stops selecting it, or
a merge) by disabling it (`enabled: false`); Akeneo keeps a disabled product, reads it by
identifier and merges a PATCH into it. When the hub selects the product again it sends an
upsert, and the product must be enabled again, the same product (its uuid), never a second
one. An outbound mapping that writes `enabled` itself decides it."""

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
from tests.connectors.akeneo.conftest import Pim
from tests.e2e.real.testbed import akeneo as akeneo_bed

# One worker runs them all: one mock server (scripts/test uses --dist loadgroup).
pytestmark = pytest.mark.xdist_group("akeneo")

ENABLED = {"enabled": [{"operator": "=", "value": True}]}


def connector(pim: Pim, tmp_path: Path) -> AkeneoConnector:
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
            # A domain listing enabled products only: what the hub reconciles against.
            "read": {"item": {"search": ENABLED}},
            "write": {"products": {"family": "mro"}},
        }
    )
    return AkeneoConnector(settings, ConnectorContext("pim", tmp_path))


def send(
    c: AkeneoConnector,
    operation: Operation,
    payload: dict[str, Any],
    target: str | None,
    version: int,
    reactivate: bool | None = None,
) -> str | None:
    # The hub says so for an upsert after its deactivation (here: any upsert after the first).
    again = operation is Operation.UPSERT and version > 1 if reactivate is None else reactivate
    request = DeliveryRequest(
        subscription="pim.products",
        system="pim",
        domain="item",
        master_id="itm_1",
        version=version,
        operation=operation,
        idempotency_key=f"itm_1:{version}",
        target_key=target,
        payload=payload,
        trace_id="t",
        reactivate=again,
    )
    return asyncio.run(c.send(request)).target_key


def made_then_disabled(c: AkeneoConnector, pim: Pim, payload: dict[str, Any]) -> str:
    """A product written through the connector (as the outbound mapping gives it: without
    `enabled`), then deactivated through it; its uuid."""
    sku = str(payload["identifier"])
    assert send(c, Operation.UPSERT, payload, None, 1) == sku
    assert send(c, Operation.DEACTIVATE, {}, sku, 2) == sku
    product = pim.product(sku)
    assert product is not None
    assert product["enabled"] is False
    return str(product["uuid"])


def test_an_upsert_enables_the_disabled_product_again(pim: Pim, tmp_path: Path) -> None:
    """Review: the PATCH carried the values only, so the product stayed disabled (and out
    of an enabled-only listing), while the hub held it as delivered active."""
    c = connector(pim, tmp_path)
    uuid = made_then_disabled(c, pim, {"identifier": "A-1", "values": {"name": "Gloves"}})
    assert [key for key, _ in c.read_state("item")] == []
    payload = {"identifier": "A-1", "values": {"name": "Gloves L"}}
    assert send(c, Operation.UPSERT, payload, "A-1", 3) == "A-1"
    assert pim.identifiers() == ["A-1"]
    product = pim.product("A-1")
    assert product is not None
    assert (product["uuid"], product["enabled"]) == (uuid, True)
    assert product["values"]["name"][0]["data"] == "Gloves L"
    assert [key for key, _ in c.read_state("item")] == ["A-1"]
    asyncio.run(c.close())


def test_a_renamed_disabled_product_is_enabled_under_its_new_identifier(
    pim: Pim, tmp_path: Path
) -> None:
    """Selected again with a new SKU: renamed by uuid, and enabled in the same PATCH."""
    c = connector(pim, tmp_path)
    uuid = made_then_disabled(c, pim, {"identifier": "A-2", "values": {"name": "Gloves"}})
    payload = {"identifier": "A-2-M", "values": {"name": "Gloves M"}}
    assert send(c, Operation.UPSERT, payload, "A-2", 3) == "A-2-M"
    assert pim.identifiers() == ["A-2-M"]
    product = pim.product("A-2-M")
    assert product is not None
    assert (product["uuid"], product["enabled"]) == (uuid, True)
    asyncio.run(c.close())


def test_a_product_first_written_without_enabled_is_made_enabled(pim: Pim, tmp_path: Path) -> None:
    """akeneo-mock-server stores no flag for a product written without one (Akeneo defaults
    it to true), and its enabled search then skips the product."""
    c = connector(pim, tmp_path)
    assert send(c, Operation.UPSERT, {"identifier": "A-3", "values": {}}, None, 1) == "A-3"
    product = pim.product("A-3")
    assert product is not None
    assert product["enabled"] is True
    assert [key for key, _ in c.read_state("item")] == ["A-3"]
    asyncio.run(c.close())


@pytest.mark.parametrize("flag", [False, True], ids=["mapped-false", "mapped-true"])
def test_a_mapping_that_writes_enabled_decides_it(pim: Pim, tmp_path: Path, flag: bool) -> None:
    c = connector(pim, tmp_path)
    made_then_disabled(c, pim, {"identifier": "A-4", "values": {"name": "Gloves"}})
    payload = {"identifier": "A-4", "enabled": flag, "values": {"name": "Gloves"}}
    assert send(c, Operation.UPSERT, payload, "A-4", 3) == "A-4"
    product = pim.product("A-4")
    assert product is not None
    assert product["enabled"] is flag
    asyncio.run(c.close())


def test_a_mapping_that_gives_enabled_no_value_leaves_it_to_the_connector(
    pim: Pim, tmp_path: Path
) -> None:
    """Outbound, a field the golden record lacks is null: that is no value for the flag."""
    c = connector(pim, tmp_path)
    made_then_disabled(c, pim, {"identifier": "A-5", "values": {"name": "Gloves"}})
    payload = {"identifier": "A-5", "enabled": None, "values": {"name": "Gloves"}}
    assert send(c, Operation.UPSERT, payload, "A-5", 3) == "A-5"
    product = pim.product("A-5")
    assert product is not None
    assert product["enabled"] is True
    asyncio.run(c.close())


def test_a_product_a_person_disabled_stays_disabled(pim: Pim, tmp_path: Path) -> None:
    """The hub did not disable it (it holds it active there): its upsert leaves `enabled`
    alone, or a person's choice at a PIM that is source and consumer was undone."""
    c = connector(pim, tmp_path)
    assert send(c, Operation.UPSERT, {"identifier": "P-1", "values": {}}, None, 1) == "P-1"
    patched = pim.client.patch("/products/P-1", json={"identifier": "P-1", "enabled": False})
    assert patched.status_code in (200, 204), patched.text
    payload = {"identifier": "P-1", "values": {"name": "Hat"}}
    assert send(c, Operation.UPSERT, payload, "P-1", 2, reactivate=False) == "P-1"
    product = pim.product("P-1")
    assert product is not None and product["enabled"] is False
    assert product["values"]["name"][0]["data"] == "Hat"
    asyncio.run(c.close())


def test_the_first_write_leaves_a_product_a_person_disabled_disabled(
    pim: Pim, tmp_path: Path
) -> None:
    """No key held yet (a first delivery) is no creation when the PIM has the product: its
    PATCH enabled one a person had disabled."""
    pim.post("/products", {"identifier": "P-9", "enabled": False, "values": {}})
    c = connector(pim, tmp_path)
    payload = {"identifier": "P-9", "values": {"name": "Scarf"}}
    assert send(c, Operation.UPSERT, payload, None, 1) == "P-9"
    product = pim.product("P-9")
    assert product is not None and product["enabled"] is False
    assert product["values"]["name"][0]["data"] == "Scarf"
    asyncio.run(c.close())
