"""Whether a product the Akeneo connector lists is active there, against akeneo-mock-server
(the testbed of tests/e2e/real). A listing without an enabled-only search holds disabled
products, so listing one says nothing; its `enabled`, which the hub's deactivation clears,
does. Reconciliation needs this to tell a product the hub disabled from one someone enabled
again in the PIM."""

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
from mastersync.ports.reconciliation import listed_active
from tests.connectors.akeneo.conftest import Pim
from tests.e2e.real.testbed import akeneo as akeneo_bed

# One worker runs them all: one mock server (scripts/test uses --dist loadgroup).
pytestmark = pytest.mark.xdist_group("akeneo")


def settings(url: str, headers: dict[str, str]) -> AkeneoSettings:
    return AkeneoSettings.model_validate(
        {
            "type": "akeneo",
            "url": url,
            "client_id": "c",
            "client_secret": "s",
            "username": "u",
            "password": "p",
            "headers": headers,
            "retries": 0,
            "read": {"item": {}},
            "write": {"products": {"family": "mro"}},
        }
    )


def connector(pim: Pim, tmp_path: Path) -> AkeneoConnector:
    made = settings(pim.url, {akeneo_bed.DB_HEADER: pim.database})
    return AkeneoConnector(made, ConnectorContext("pim", tmp_path))


def send(c: AkeneoConnector, sku: str, operation: Operation, target: str | None) -> None:
    """One delivery of a product through the connector, as the outbound mapping gives it
    (without `enabled`: the connector decides it)."""
    version = 1 if operation is Operation.UPSERT else 2
    request = DeliveryRequest(
        subscription="pim.products",
        system="pim",
        domain="item",
        master_id=f"itm_{sku}",
        version=version,
        operation=operation,
        idempotency_key=f"itm_{sku}:{version}",
        target_key=target,
        payload={"identifier": sku, "values": {"name": f"Gloves {sku}"}},
        trace_id="t",
    )
    assert asyncio.run(c.send(request)).target_key == sku


def activity(c: AkeneoConnector, subscription: str = "products") -> dict[str, bool | None]:
    """What the connector tells of each product its listing holds."""
    return {
        key: listed_active(c, "item", subscription, native) for key, native in c.read_state("item")
    }


def test_a_listed_product_says_whether_it_is_active_as_the_deactivation_left_it(
    pim: Pim, tmp_path: Path
) -> None:
    c = connector(pim, tmp_path)
    send(c, "A-1", Operation.UPSERT, None)
    send(c, "A-2", Operation.UPSERT, None)
    send(c, "A-2", Operation.DEACTIVATE, "A-2")
    assert activity(c) == {"A-1": True, "A-2": False}
    # Enabled again in the PIM, behind the hub's back: listed as active.
    response = pim.client.patch("/products/A-2", json={"identifier": "A-2", "enabled": True})
    assert response.status_code < 400, response.text
    assert activity(c) == {"A-1": True, "A-2": True}
    # No such subscription: nothing says how it deactivates products.
    assert activity(c, "others") == {"A-1": None, "A-2": None}
    asyncio.run(c.close())


def test_a_product_listed_without_its_flag_cannot_tell(pim: Pim, tmp_path: Path) -> None:
    """akeneo-mock-server stores no `enabled` for a product made without one (Akeneo itself
    defaults it to true): nothing in the listing says which it is."""
    pim.post("/products", {"identifier": "B-1", "family": "mro", "values": {}})
    c = connector(pim, tmp_path)
    [(key, native)] = list(c.read_state("item"))
    assert key == "B-1" and native.get("enabled") is None
    assert activity(c) == {"B-1": None}
    asyncio.run(c.close())


@pytest.mark.parametrize(
    ("native", "tells"),
    [
        ({"identifier": "A-1", "enabled": True}, True),
        ({"identifier": "A-1", "enabled": False}, False),
        ({"identifier": "A-1", "enabled": None}, None),
        ({"identifier": "A-1"}, None),
    ],
    ids=["enabled", "disabled", "null", "missing"],
)
def test_what_the_listed_record_tells(
    tmp_path: Path, native: dict[str, Any], tells: bool | None
) -> None:
    c = AkeneoConnector(settings("http://pim.invalid", {}), ConnectorContext("pim", tmp_path))
    assert c.listed_active("item", "products", native) is tells
    # No such subscription, or a domain it does not read.
    assert c.listed_active("item", "others", native) is None
    assert c.listed_active("kit", "products", native) is None
    asyncio.run(c.close())
