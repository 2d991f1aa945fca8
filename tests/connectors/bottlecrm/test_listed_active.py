"""Whether an account the BottleCRM connector lists is active there, against a live BottleCRM
(PyPI django-crm, the testbed of tests/e2e/real on the tests' PostgreSQL). A listing that
holds archived accounts (`inactive`, the default) says nothing of an account by listing it;
its `is_active`, which the hub's deactivation clears, does, when the listing reads it.
Reconciliation needs this to tell an account the hub archived from one someone made active
again in the CRM."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from mastersync.connectors.bottlecrm.connector import BottleCrmConnector
from mastersync.connectors.bottlecrm.spec import BottleCrmSettings
from mastersync.connectors.registry import ConnectorContext
from mastersync.domain.subscriptions import Operation
from mastersync.ports.outbound import DeliveryRequest
from mastersync.ports.reconciliation import listed_active
from tests.connectors.bottlecrm.conftest import Crm

# One worker runs them all: one BottleCRM server (scripts/test uses --dist loadgroup).
pytestmark = pytest.mark.xdist_group("bottlecrm")

ACCOUNTS = {"resource": "accounts", "fields": ["name", "is_active"]}


def settings(url: str, token: str, read: dict[str, Any]) -> BottleCrmSettings:
    return BottleCrmSettings.model_validate(
        {
            "type": "bottlecrm",
            "url": url,
            "token": token,
            "retries": 0,
            "read": {"customer": read},
            "write": {"accounts": {}},
        }
    )


def connector(crm: Crm, tmp_path: Path, read: dict[str, Any]) -> BottleCrmConnector:
    made = settings(crm.url, crm.template.hub_token, read)
    return BottleCrmConnector(made, ConnectorContext("crm", tmp_path))


def send(c: BottleCrmConnector, name: str, operation: Operation, target: str | None) -> str:
    """One delivery of an account through the connector; the id BottleCRM holds it under."""
    version = 1 if operation is Operation.UPSERT else 2
    request = DeliveryRequest(
        subscription="crm.accounts",
        system="crm",
        domain="customer",
        master_id=f"cus_{name}",
        version=version,
        operation=operation,
        idempotency_key=f"cus_{name}:{version}",
        target_key=target,
        payload={"name": name},
        trace_id="t",
    )
    ack = asyncio.run(c.send(request))
    assert ack.target_key is not None
    return ack.target_key


def activity(c: BottleCrmConnector, subscription: str = "accounts") -> dict[str, bool | None]:
    """What the connector tells of each account its listing holds."""
    return {
        key: listed_active(c, "customer", subscription, native)
        for key, native in c.read_state("customer")
    }


def test_a_listed_account_says_whether_it_is_active_as_the_deactivation_left_it(
    crm: Crm, tmp_path: Path
) -> None:
    c = connector(crm, tmp_path, ACCOUNTS)  # inactive: true, the default
    on = send(c, "Gartenwelt AG", Operation.UPSERT, None)
    off = send(c, "Baumarkt Süd", Operation.UPSERT, None)
    assert send(c, "Baumarkt Süd", Operation.DEACTIVATE, off) == off
    assert activity(c) == {on: True, off: False}
    # Made active again in the CRM, behind the hub's back: listed as active.
    crm.call("PATCH", f"/accounts/{off}/", {"is_active": True})
    assert activity(c) == {on: True, off: True}
    # No such subscription: nothing says how it deactivates accounts.
    assert activity(c, "suppliers") == {on: None, off: None}
    asyncio.run(c.close())
    # A listing that does not read the flag cannot tell.
    blind = connector(crm, tmp_path, {"resource": "accounts", "fields": ["name"]})
    assert activity(blind) == {on: None, off: None}
    asyncio.run(blind.close())


@pytest.mark.parametrize(
    ("read", "native", "tells"),
    [
        (ACCOUNTS, {"id": "1", "name": "A", "is_active": True}, True),
        (ACCOUNTS, {"id": "1", "name": "A", "is_active": False}, False),
        # Listed as null (the API left it out), or not among the fields read.
        (ACCOUNTS, {"id": "1", "name": "A", "is_active": None}, None),
        (ACCOUNTS, {"id": "1", "name": "A"}, None),
        # A contact's flag is a person's: the hub archives accounts only.
        ({"resource": "contacts"}, {"id": "1", "is_active": True}, None),
    ],
    ids=["active", "archived", "null", "missing", "contacts"],
)
def test_what_the_listed_record_tells(
    tmp_path: Path, read: dict[str, Any], native: dict[str, Any], tells: bool | None
) -> None:
    c = BottleCrmConnector(
        settings("http://crm.invalid", "t", read), ConnectorContext("crm", tmp_path)
    )
    assert c.listed_active("customer", "accounts", native) is tells
    asyncio.run(c.close())
