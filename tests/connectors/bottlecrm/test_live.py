"""The BottleCRM connector's account writes against a live BottleCRM (PyPI django-crm, the
testbed of tests/e2e/real on the tests' PostgreSQL): what its own API stores and filters
decides whether a look-up finds an account."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from mastersync.connectors.bottlecrm.connector import BottleCrmConnector
from mastersync.connectors.bottlecrm.spec import BottleCrmSettings
from mastersync.connectors.registry import ConnectorContext
from mastersync.domain.subscriptions import Operation
from mastersync.ports.outbound import DeliveryRequest
from tests.conftest import PG_URL
from tests.e2e.real.testbed import bottlecrm as crm_bed
from tests.e2e.real.testbed.common import TestbedError
from tests.e2e.real.testbed.tryton import Timings

# One worker runs them all: one BottleCRM server (scripts/test uses --dist loadgroup).
pytestmark = pytest.mark.xdist_group("bottlecrm")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[crm_bed.BottleCrmServer]:
    """BottleCRM installed (cached), its template restored, one server for the module."""
    started: crm_bed.BottleCrmServer | None = None
    try:
        template = crm_bed.ensure_template(PG_URL, Timings())
        started = crm_bed.BottleCrmServer(tmp_path_factory.mktemp("crm"), template, PG_URL)
        started.start()
    except TestbedError as exc:
        if started is not None:
            with contextlib.suppress(TestbedError):
                started.stop()
        pytest.fail(f"the BottleCRM testbed could not start: {exc}", pytrace=False)
    yield started
    started.stop()


class Crm:
    """A fresh BottleCRM organisation, worked in as a CRM user would (unrestricted token)."""

    def __init__(self, server: crm_bed.BottleCrmServer) -> None:
        self.url = server.url
        self.template = server.template
        self.client = httpx.Client(
            base_url=f"{server.url}/api",
            timeout=60,
            headers={"Authorization": f"Bearer {server.template.user_token}"},
        )

    def call(self, method: str, path: str, body: Any = None, **params: Any) -> Any:
        response = self.client.request(method, path, json=body, params=params or None)
        assert response.status_code < 400, f"{method} {path}: {response.text}"
        return response.json()

    def accounts(self) -> list[dict[str, Any]]:
        document = self.call("GET", "/accounts/", limit=1000)
        return [
            *document["active_accounts"]["open_accounts"],
            *document["closed_accounts"]["close_accounts"],
        ]


@pytest.fixture
def crm(server: crm_bed.BottleCrmServer) -> Iterator[Crm]:
    try:
        server.reset()
    except TestbedError as exc:
        pytest.fail(f"the BottleCRM testbed could not reset its database: {exc}", pytrace=False)
    crm = Crm(server)
    yield crm
    crm.client.close()


def connector(crm: Crm, tmp_path: Path, match: list[str]) -> BottleCrmConnector:
    settings = BottleCrmSettings.model_validate(
        {
            "type": "bottlecrm",
            "url": crm.url,
            "token": crm.template.hub_token,
            "retries": 0,
            "write": {"accounts": {"match": match}},
        }
    )
    return BottleCrmConnector(settings, ConnectorContext("bottlecrm", tmp_path))


def upsert(c: BottleCrmConnector, payload: dict[str, Any], target: str | None = None) -> str:
    request = DeliveryRequest(
        subscription="bottlecrm.accounts",
        system="bottlecrm",
        domain="customer",
        master_id="cus_1",
        version=1,
        operation=Operation.UPSERT,
        idempotency_key="cus_1:1",
        target_key=target,
        payload=payload,
        trace_id="t",
    )
    ack = asyncio.run(c.send(request))
    assert ack.target_key is not None
    return ack.target_key


def number_field(crm: Crm, key: str) -> None:
    crm.call(
        "POST",
        "/custom-fields/",
        {
            "target_model": "Account",
            "key": key,
            "label": key,
            "field_type": "number",
            "is_filterable": True,
        },
    )


@pytest.mark.parametrize("sent", [4711, "4711", 4711.0], ids=["int", "text", "float"])
def test_an_account_is_found_by_a_number_custom_field(crm: Crm, tmp_path: Path, sent: Any) -> None:
    """Review: BottleCRM stores a number field as a JSON number and its cf_ filter compares
    it with text, so the look-up found nothing and a second account was made."""
    number_field(crm, "erp_number")
    made = crm.call(
        "POST", "/accounts/", {"name": "Gartenwelt AG", "custom_fields": {"erp_number": "4711"}}
    )["id"]
    assert crm.call("GET", f"/accounts/{made}/")["account_obj"]["custom_fields"] == {
        "erp_number": 4711.0
    }
    c = connector(crm, tmp_path, ["custom_fields.erp_number", "name"])
    # Renamed in the hub, and its key never acknowledged (made by hand in the CRM).
    payload = {"name": "Gartenwelt AG & Co. KG", "custom_fields": {"erp_number": sent}}
    assert upsert(c, payload) == str(made)
    [account] = crm.accounts()
    assert account["name"] == "Gartenwelt AG & Co. KG"
    assert account["custom_fields"] == {"erp_number": 4711.0}
    asyncio.run(c.close())


def test_a_number_custom_field_holding_another_number_finds_nothing(
    crm: Crm, tmp_path: Path
) -> None:
    number_field(crm, "erp_number")
    crm.call("POST", "/accounts/", {"name": "Gartenwelt AG", "custom_fields": {"erp_number": 4711}})
    c = connector(crm, tmp_path, ["custom_fields.erp_number"])
    made = upsert(c, {"name": "Baumarkt Süd", "custom_fields": {"erp_number": "47110"}})
    assert sorted(a["name"] for a in crm.accounts()) == ["Baumarkt Süd", "Gartenwelt AG"]
    assert crm.call("GET", f"/accounts/{made}/")["account_obj"]["custom_fields"] == {
        "erp_number": 47110.0
    }
    asyncio.run(c.close())


def test_an_account_is_still_found_by_a_text_custom_field(crm: Crm, tmp_path: Path) -> None:
    made = crm.call(
        "POST", "/accounts/", {"name": "Gartenwelt AG", "custom_fields": {"customer_number": "C-7"}}
    )["id"]
    crm.call("POST", "/accounts/", {"name": "Other", "custom_fields": {"customer_number": "C-8"}})
    c = connector(crm, tmp_path, ["custom_fields.customer_number"])
    payload = {"name": "Gartenwelt GmbH", "custom_fields": {"customer_number": "C-7"}}
    assert upsert(c, payload) == str(made)
    assert sorted(a["name"] for a in crm.accounts()) == ["Gartenwelt GmbH", "Other"]
    asyncio.run(c.close())
