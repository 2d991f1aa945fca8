"""The BottleCRM connector's account writes against a live BottleCRM (PyPI django-crm, the
testbed of tests/e2e/real on the tests' PostgreSQL): what its own API stores and filters
decides whether a look-up finds an account."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from mastersync.connectors.bottlecrm.connector import BottleCrmConnector
from mastersync.connectors.bottlecrm.spec import BottleCrmSettings
from mastersync.connectors.registry import ConnectorContext
from mastersync.domain.subscriptions import Operation
from mastersync.ports.outbound import DeliveryRequest, TerminalFailure
from tests.connectors.bottlecrm.conftest import Crm

# One worker runs them all: one BottleCRM server (scripts/test uses --dist loadgroup).
pytestmark = pytest.mark.xdist_group("bottlecrm")


def connector(crm: Crm, tmp_path: Path, match: list[str], **write: Any) -> BottleCrmConnector:
    settings = BottleCrmSettings.model_validate(
        {
            "type": "bottlecrm",
            "url": crm.url,
            "token": crm.template.hub_token,
            "retries": 0,
            "write": {"accounts": {"match": match, **write}},
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


def account(crm: Crm, key: str) -> dict[str, Any]:
    found: dict[str, Any] = crm.call("GET", f"/accounts/{key}/")["account_obj"]
    return found


def test_a_null_clears_a_field_and_a_custom_field_of_an_account(crm: Crm, tmp_path: Path) -> None:
    """A field cleared at the hub comes as null: BottleCRM empties the field, and drops the
    custom field's key; what the payload leaves out stays."""
    c = connector(crm, tmp_path, ["name"])
    made = {
        "name": "Leer GmbH",
        "email": "info@leer.example",
        "city": "Kassel",
        "custom_fields": {"customer_number": "C-9", "payment_terms": "NET30"},
    }
    key = upsert(c, made)
    cleared = {"name": "Leer GmbH", "email": None, "custom_fields": {"customer_number": None}}
    assert upsert(c, cleared, key) == key
    held = account(crm, key)
    assert (held["email"], held["city"]) == (None, "Kassel")
    assert held["custom_fields"] == {"payment_terms": "NET30"}
    asyncio.run(c.close())


def test_a_null_in_a_new_account_leaves_on_creates_value(crm: Crm, tmp_path: Path) -> None:
    """Review: the create carried the null, over `on_create`'s industry and payment terms."""
    on_create = {"industry": "AUTOMOTIVE", "custom_fields": {"payment_terms": "NET30"}}
    c = connector(crm, tmp_path, ["name"], on_create=on_create)
    payload = {
        "name": "Neu KG",
        "industry": None,
        "website": None,
        "custom_fields": {"customer_number": "C-10", "payment_terms": None},
    }
    held = account(crm, upsert(c, payload))
    assert (held["industry"], held["website"], held["is_active"]) == ("AUTOMOTIVE", None, True)
    assert held["custom_fields"] == {"customer_number": "C-10", "payment_terms": "NET30"}
    asyncio.run(c.close())


def test_a_null_name_is_refused_for_good_naming_the_field(crm: Crm, tmp_path: Path) -> None:
    c = connector(crm, tmp_path, ["name"])
    key = upsert(c, {"name": "Pflicht AG", "city": "Kassel"})
    with pytest.raises(TerminalFailure) as refused:
        upsert(c, {"name": None, "city": "Bremen"}, key)
    assert refused.value.status == 400
    assert '"name"' in refused.value.message and "may not be null" in refused.value.message
    assert (account(crm, key)["name"], account(crm, key)["city"]) == ("Pflicht AG", "Kassel")
    asyncio.run(c.close())
