"""Whether the BottleCRM connector's listing holds the accounts the hub deactivated, against
a live BottleCRM (PyPI django-crm, the testbed of tests/e2e/real on the tests' PostgreSQL). A
deactivation archives the account (`is_active: false`), which BottleCRM keeps in the closed
half of its account list; `inactive` reads that half too. The connector's
``lists_inactive`` must say which it is."""

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
from mastersync.ports.reconciliation import lists_inactive
from tests.connectors.bottlecrm.conftest import Crm

# One worker runs them all: one BottleCRM server (scripts/test uses --dist loadgroup).
pytestmark = pytest.mark.xdist_group("bottlecrm")

ACCOUNTS = {"resource": "accounts", "fields": ["name", "is_active"]}


def connector(crm: Crm, tmp_path: Path, read: dict[str, Any]) -> BottleCrmConnector:
    settings = BottleCrmSettings.model_validate(
        {
            "type": "bottlecrm",
            "url": crm.url,
            "token": crm.template.hub_token,
            "retries": 0,
            "read": {"customer": read},
            "write": {"accounts": {}},
        }
    )
    return BottleCrmConnector(settings, ConnectorContext("crm", tmp_path))


def send(c: BottleCrmConnector, name: str, operation: Operation, target: str | None) -> str:
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


def two_made_one_archived(c: BottleCrmConnector) -> tuple[str, str]:
    """Two accounts written through the connector, then the second deactivated through it;
    their ids."""
    kept = send(c, "Gartenwelt AG", Operation.UPSERT, None)
    gone = send(c, "Baumarkt Süd", Operation.UPSERT, None)
    assert send(c, "Baumarkt Süd", Operation.DEACTIVATE, gone) == gone
    return kept, gone


def test_reading_archived_accounts_lists_the_one_the_hub_archived_and_says_so(
    crm: Crm, tmp_path: Path
) -> None:
    c = connector(crm, tmp_path, ACCOUNTS)  # inactive: true, the default
    kept, gone = two_made_one_archived(c)
    listed = dict(c.read_state("customer"))
    assert set(listed) == {kept, gone}
    # The listed record shows the deactivation (`is_active` is among the fields read).
    assert (listed[kept]["is_active"], listed[gone]["is_active"]) == (True, False)
    assert c.lists_inactive is True
    assert lists_inactive(c) is True
    asyncio.run(c.close())


def test_reading_active_accounts_only_leaves_the_archived_one_out_and_says_so(
    crm: Crm, tmp_path: Path
) -> None:
    c = connector(crm, tmp_path, {**ACCOUNTS, "inactive": False})
    kept, gone = two_made_one_archived(c)
    assert [key for key, _ in c.read_state("customer")] == [kept]
    assert lists_inactive(c) is False
    # Made active again in the CRM: listed again, which (a listing of active accounts only)
    # can only mean active there.
    crm.call("PATCH", f"/accounts/{gone}/", {"is_active": True})
    assert sorted(key for key, _ in c.read_state("customer")) == sorted([kept, gone])
    asyncio.run(c.close())


@pytest.mark.parametrize(
    ("reads", "says"),
    [
        ({}, True),
        ({"customer": ACCOUNTS}, True),
        ({"customer": {**ACCOUNTS, "inactive": False}}, False),
        # The hub writes (and archives) accounts only: a contact listing holds none of them.
        ({"contact": {"resource": "contacts"}}, True),
        ({"customer": {**ACCOUNTS, "inactive": False}, "contact": {"resource": "contacts"}}, False),
        # Asked once per run, not per domain: one listing holding them is enough.
        ({"customer": {**ACCOUNTS, "inactive": False}, "supplier": ACCOUNTS}, True),
    ],
    ids=[
        "no-reads",
        "inactive",
        "active-only",
        "contacts-only",
        "active-only-and-contacts",
        "one-holds-them",
    ],
)
def test_the_declaration_follows_the_account_reads(
    tmp_path: Path, reads: dict[str, Any], says: bool
) -> None:
    settings = BottleCrmSettings.model_validate(
        {"type": "bottlecrm", "url": "http://crm.invalid", "token": "t", "read": reads}
    )
    c = BottleCrmConnector(settings, ConnectorContext("crm", tmp_path))
    assert lists_inactive(c) is says
    asyncio.run(c.close())
