"""An upsert after a deactivation leaves the account active in BottleCRM, against a live
BottleCRM (PyPI django-crm, the testbed of tests/e2e/real on the tests' PostgreSQL). The hub
deactivates an account (its subscription's filter stops selecting it, or a merge) by
archiving it (`is_active: false`); BottleCRM keeps archived accounts readable and writable
(its detail and PATCH look them up without the flag) and lists them in the closed half of
its account list. When the hub selects the account again it sends an upsert, and the
account must be active again, found by its id or by `match`, never made a second time. An
outbound mapping that writes `is_active` itself decides it."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from mastersync.connectors.bottlecrm.connector import BottleCrmConnector
from mastersync.connectors.bottlecrm.spec import BottleCrmSettings, BottleCrmWrite
from mastersync.connectors.bottlecrm.writer import AccountWriter
from mastersync.connectors.registry import ConnectorContext
from mastersync.domain.subscriptions import Operation
from mastersync.ports.outbound import DeliveryRequest
from tests.connectors.bottlecrm.conftest import Crm
from tests.connectors.bottlecrm.test_writing import FakeApi

# One worker runs them all: one BottleCRM server (scripts/test uses --dist loadgroup).
pytestmark = pytest.mark.xdist_group("bottlecrm")


def connector(crm: Crm, tmp_path: Path, match: list[str] | None = None) -> BottleCrmConnector:
    write = {} if match is None else {"match": match}
    settings = BottleCrmSettings.model_validate(
        {
            "type": "bottlecrm",
            "url": crm.url,
            "token": crm.template.hub_token,
            "retries": 0,
            "write": {"accounts": write},
        }
    )
    return BottleCrmConnector(settings, ConnectorContext("crm", tmp_path))


def send(
    c: BottleCrmConnector,
    operation: Operation,
    payload: dict[str, Any],
    target: str | None,
    version: int,
    reactivate: bool = False,
) -> str | None:
    request = DeliveryRequest(
        subscription="crm.accounts",
        system="crm",
        domain="customer",
        master_id="cus_1",
        version=version,
        operation=operation,
        idempotency_key=f"cus_1:{version}",
        target_key=target,
        payload=payload,
        trace_id="t",
        reactivate=reactivate,
    )
    return asyncio.run(c.send(request)).target_key


def made_then_archived(c: BottleCrmConnector, payload: dict[str, Any]) -> str:
    """An account written through the connector, then deactivated through it; its id."""
    key = send(c, Operation.UPSERT, payload, None, 1)
    assert key is not None
    assert send(c, Operation.DEACTIVATE, {}, key, 2) == key
    return key


def upsert(
    c: BottleCrmConnector, payload: dict[str, Any], target: str | None, reactivate: bool = True
) -> str:
    """The hub's upsert once the account is selected again (it archived it, so it says
    so); the acknowledged id."""
    key = send(c, Operation.UPSERT, payload, target, 3, reactivate)
    assert key is not None
    return key


def held(crm: Crm) -> list[tuple[str, str, bool]]:
    """Every account (both halves of the list): id, name and flag."""
    return sorted((str(a["id"]), a["name"], a["is_active"]) for a in crm.accounts())


def test_an_upsert_by_the_id_the_hub_keeps_reactivates_the_archived_account(
    crm: Crm, tmp_path: Path
) -> None:
    """Review: the upsert found nothing to change and left the account archived, while the
    hub held it as delivered active."""
    c = connector(crm, tmp_path)
    key = made_then_archived(c, {"name": "Gartenwelt AG", "city": "Ulm"})
    assert held(crm) == [(key, "Gartenwelt AG", False)]
    # Readable while archived: the detail the writer compares with.
    assert crm.call("GET", f"/accounts/{key}/")["account_obj"]["is_active"] is False
    assert upsert(c, {"name": "Gartenwelt AG", "city": "Neu-Ulm"}, key) == key
    assert held(crm) == [(key, "Gartenwelt AG", True)]
    assert crm.call("GET", f"/accounts/{key}/")["account_obj"]["city"] == "Neu-Ulm"
    asyncio.run(c.close())


@pytest.mark.parametrize("match", [["name"], ["email", "name"]], ids=["name", "email-then-name"])
def test_an_upsert_found_by_match_reactivates_the_archived_account_and_makes_none(
    crm: Crm, tmp_path: Path, match: list[str]
) -> None:
    """No id held (an unmerge gives the record a new master id): the look-up lists the
    archived half too, so it finds the account instead of making a second one (which
    BottleCRM would refuse: the name is taken)."""
    c = connector(crm, tmp_path, match)
    payload = {"name": "Baumarkt Süd", "email": "info@baumarkt.example"}
    key = made_then_archived(c, payload)
    assert upsert(c, payload, None) == key
    assert held(crm) == [(key, "Baumarkt Süd", True)]
    asyncio.run(c.close())


def test_an_active_account_upserted_unchanged_is_not_written(
    crm: Crm, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The flag is written only when the account is archived: every save of an account
    records an activity and fires its webhooks and automations."""
    c = connector(crm, tmp_path)
    key = upsert(c, {"name": "Immer Aktiv GmbH"}, None)
    patched: list[tuple[str, dict[str, Any]]] = []
    patch = c.api.patch

    def counting(resource: str, at: str, body: dict[str, Any]) -> None:
        patched.append((at, body))
        patch(resource, at, body)

    monkeypatch.setattr(c.api, "patch", counting)
    assert upsert(c, {"name": "Immer Aktiv GmbH"}, key) == key
    assert patched == []
    assert held(crm) == [(key, "Immer Aktiv GmbH", True)]
    asyncio.run(c.close())


@pytest.mark.parametrize("flag", [False, True], ids=["mapped-false", "mapped-true"])
def test_a_mapping_that_writes_is_active_decides_it(crm: Crm, tmp_path: Path, flag: bool) -> None:
    c = connector(crm, tmp_path)
    key = made_then_archived(c, {"name": "Gemappt KG"})
    assert upsert(c, {"name": "Gemappt KG", "is_active": flag}, key) == key
    assert held(crm) == [(key, "Gemappt KG", flag)]
    asyncio.run(c.close())


def test_a_mapping_that_gives_is_active_no_value_leaves_it_to_the_connector(
    crm: Crm, tmp_path: Path
) -> None:
    """Outbound, a field the golden record lacks is null: that is no value for the flag
    (BottleCRM would refuse a null one)."""
    c = connector(crm, tmp_path)
    key = made_then_archived(c, {"name": "Ohne Wert eG"})
    assert upsert(c, {"name": "Ohne Wert eG", "is_active": None}, key) == key
    assert held(crm) == [(key, "Ohne Wert eG", True)]
    asyncio.run(c.close())


def test_the_writer_sets_the_flag_only_where_it_differs() -> None:
    """Against the fake: an archived account gets `is_active: true` with the other changes;
    an active one none; a new one is made active."""
    api = FakeApi()
    api.accounts["old"] = {"id": "old", "name": "Acme", "is_active": False}
    writer = AccountWriter(api, 100)  # type: ignore[arg-type]
    writer.upsert(BottleCrmWrite(), {"name": "Acme", "phone": "1"}, "old", reactivate=True)
    assert api.calls[-1] == ("patch", ("old", {"phone": "1", "is_active": True}))
    api.calls.clear()
    writer.upsert(BottleCrmWrite(), {"name": "Acme", "phone": "1"}, "old", reactivate=True)
    assert [c for c in api.calls if c[0] == "patch"] == []
    # One the hub did not archive (a person did) keeps its flag.
    api.accounts["old"]["is_active"] = False
    writer.upsert(BottleCrmWrite(), {"name": "Acme", "phone": "2"}, "old")
    assert api.calls[-1] == ("patch", ("old", {"phone": "2"}))
    assert api.accounts["old"]["is_active"] is False
    made = writer.upsert(BottleCrmWrite(match=[]), {"name": "Neu"}, None)
    assert api.accounts[made]["is_active"] is True
