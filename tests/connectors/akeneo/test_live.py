"""The Akeneo connector's product writes against akeneo-mock-server (PyPI, the testbed of
tests/e2e/real, its databases on the tests' PostgreSQL): what the PIM holds after a SKU is
renamed in the hub."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from mastersync.connectors.akeneo.connector import AkeneoConnector
from mastersync.connectors.akeneo.spec import AkeneoSettings
from mastersync.connectors.registry import ConnectorContext
from mastersync.domain.subscriptions import Operation
from mastersync.ports.outbound import DeliveryAck, DeliveryRequest, TerminalFailure
from tests.connectors.akeneo.conftest import Pim
from tests.e2e.real.testbed import akeneo as akeneo_bed

# One worker runs them all: one mock server (scripts/test uses --dist loadgroup).
pytestmark = pytest.mark.xdist_group("akeneo")


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
            "write": {"products": {"family": "mro"}},
        }
    )
    return AkeneoConnector(settings, ConnectorContext("pim", tmp_path))


def send(
    c: AkeneoConnector, version: int, payload: dict[str, Any], target: str | None
) -> DeliveryAck:
    request = DeliveryRequest(
        subscription="pim.products",
        system="pim",
        domain="item",
        master_id="itm_1",
        version=version,
        operation=Operation.UPSERT,
        idempotency_key=f"itm_1:{version}",
        target_key=target,
        payload=payload,
        trace_id="t",
    )
    return asyncio.run(c.send(request))


def test_a_sku_renamed_in_the_hub_renames_the_product_the_pim_holds(
    pim: Pim, tmp_path: Path
) -> None:
    """Review: the PATCH went to the new SKU, which made a second product and left the one
    the xref names (with its enrichment in the PIM) behind."""
    c = connector(pim, tmp_path)
    first = send(c, 1, {"identifier": "A-100", "values": {"name": "Gloves"}}, None)
    assert first.target_key == "A-100"
    before = pim.product("A-100")
    assert before is not None
    renamed = send(c, 2, {"identifier": "A-100-M", "values": {"name": "Gloves M"}}, "A-100")
    assert renamed.target_key == "A-100-M"
    assert pim.identifiers() == ["A-100-M"]
    after = pim.product("A-100-M")
    assert after is not None
    assert after["uuid"] == before["uuid"]
    assert after["values"]["name"][0]["data"] == "Gloves M"
    # Sent again (its answer was lost): the old SKU is gone, the renamed product updated.
    again = send(c, 2, {"identifier": "A-100-M", "values": {"name": "Gloves M"}}, "A-100")
    assert again.target_key == "A-100-M"
    assert pim.identifiers() == ["A-100-M"]
    asyncio.run(c.close())


def test_a_rename_onto_a_sku_another_product_has_is_refused_naming_both(
    pim: Pim, tmp_path: Path
) -> None:
    c = connector(pim, tmp_path)
    send(c, 1, {"identifier": "A-100", "values": {"name": "Gloves"}}, None)
    pim.post("/products", {"identifier": "B-200", "family": "mro"})
    with pytest.raises(TerminalFailure, match=r"renaming Akeneo product 'A-100' to 'B-200'"):
        send(c, 2, {"identifier": "B-200", "values": {"name": "Gloves"}}, "A-100")
    assert pim.identifiers() == ["A-100", "B-200"]
    asyncio.run(c.close())
