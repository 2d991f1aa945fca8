"""BottleCRM (django-crm 1.35) and Tryton 8.2, live, through the landscape
tests/e2e/real/landscape/tryton-bottlecrm.yaml as a user would run it (`mastersync run`,
`get`, `check`): accounts entered in the CRM become Tryton parties, Tryton's credit terms
survive CRM edits, and contact details edited in the CRM reach Tryton."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from mastersync.bootstrap import build_hub, open_connector
from mastersync.cli import app
from mastersync.domain.subscriptions import Operation
from mastersync.ports.outbound import DeliveryRequest
from mastersync.ports.store import ExceptionFilter
from tests.e2e.real.conftest import BottleCrm, Tryton
from tests.e2e.real.testbed import bottlecrm as crm_bed
from tests.e2e.real.testbed.__main__ import main

# One worker runs them with the other Tryton tests: one Tryton server (--dist loadgroup).
pytestmark = pytest.mark.xdist_group("tryton")

runner = CliRunner()


@pytest.fixture
def crm_landscape(landscape: Path) -> Path:
    """The landscape file the tests run (the fixture copied the folder into the test's)."""
    return landscape.parent / "tryton-bottlecrm.yaml"


def env_of(tryton: Tryton, crm: BottleCrm) -> dict[str, str]:
    return {"COLUMNS": "200", **tryton.env, **crm.env}


def cli(landscape: Path, env: dict[str, str], *args: str) -> str:
    result = runner.invoke(app, ["-l", str(landscape), *args], env=env)
    assert result.exit_code == 0, result.output
    return result.output


def run(landscape: Path, env: dict[str, str]) -> str:
    out = cli(landscape, env, "run", "--until-idle", "--timeout", "120")
    assert "dead 0" in out, out + cli(landscape, env, "exceptions", "list")
    return out


def golden(landscape: Path, env: dict[str, str], ref: str) -> dict[str, Any]:
    record: dict[str, Any] = json.loads(cli(landscape, env, "get", "customer", ref, "--json"))
    return record


def inbox(landscape: Path, kind: str) -> list[Any]:
    """Inbox entries of a kind, open or settled."""
    hub = build_hub(landscape)
    try:
        with hub.store.unit_of_work(write=False) as uow:
            return list(uow.exceptions(ExceptionFilter(status=None, kind=kind)))
    finally:
        hub.close()


def party_of(tryton: Tryton, code: str) -> dict[str, Any]:
    """The one Tryton party with this code, with its payment term and contact mechanisms."""
    [party] = tryton.search_read(
        "party.party",
        [["code", "=", code]],
        ["name", "categories.name", "customer_payment_term.name"],
    )
    party["mechanisms"] = sorted(
        (m["type"], m["value"])
        for m in tryton.search_read(
            "party.contact_mechanism", [["party", "=", party["id"]]], ["type", "value"]
        )
    )
    return party


def new_account(crm: BottleCrm, number: str, name: str, **fields: Any) -> str:
    """An account as a sales person enters it, with the customer number the landscape keys."""
    values: dict[str, Any] = {
        "name": name,
        "email": "einkauf@baumarkt-sued.de",
        "address_line": "Industriestr. 7",
        "postcode": "80331",
        "city": "München",
        "country": "DE",
        "custom_fields": {"customer_number": number},
        **fields,
    }
    return crm.create_account(**values)


def test_an_account_created_in_bottlecrm_becomes_a_tryton_party(
    tryton: Tryton, bottlecrm: BottleCrm, crm_landscape: Path
) -> None:
    env = env_of(tryton, bottlecrm)
    account = new_account(bottlecrm, "CRM-1001", "Baumarkt Süd GmbH", phone="+49 89 123456")
    bottlecrm.create_contact(
        first_name="Anna",
        last_name="Huber",
        email="anna.huber@baumarkt-sued.de",
        phone="+49 89 1234560",
        title="Buyer",
        account=account,
    )
    run(crm_landscape, env)

    party = party_of(tryton, "CRM-1001")
    assert party["name"] == "Baumarkt Süd GmbH"
    assert [c["name"] for c in party["categories."]] == ["Customer"]
    assert party["mechanisms"] == [
        ("email", "einkauf@baumarkt-sued.de"),
        ("phone", "+49 89 123456"),
    ]
    [address] = tryton.search_read(
        "party.address",
        [["party", "=", party["id"]]],
        ["street", "postal_code", "city", "country.code"],
    )
    assert (address["street"], address["postal_code"], address["city"]) == (
        "Industriestr. 7",
        "80331",
        "München",
    )
    assert address["country."]["code"] == "DE"

    record = golden(crm_landscape, env, f"bottlecrm:{account}")
    assert {x["system"]: x["key"] for x in record["xrefs"]} == {
        "bottlecrm": account,
        "tryton": str(party["id"]),
    }
    assert record["attributes"]["contacts"] == [
        {
            "name": "Anna Huber",
            "role": "Buyer",
            "email": "anna.huber@baumarkt-sued.de",
            "phone": "+49 89 1234560",
        }
    ]
    # The hub's own subscription to the CRM found the account by its customer number (no
    # second one), and nothing changed: another run hands over nothing, makes no version.
    assert [a["id"] for a in bottlecrm.accounts()] == [account]
    run(crm_landscape, env)
    assert golden(crm_landscape, env, f"bottlecrm:{account}")["version"] == record["version"]
    checked = cli(crm_landscape, env, "check", "bottlecrm")
    assert "read customer: accounts with their contacts, 1 record(s)" in checked


def new_payment_term(tryton: Tryton, name: str, days: int) -> int:
    return tryton.create(
        "account.invoice.payment_term",
        {
            "name": name,
            "lines": [
                [
                    "create",
                    [{"type": "remainder", "relativedeltas": [["create", [{"days": days}]]]}],
                ]
            ],
        },
    )


def test_credit_terms_set_in_tryton_are_never_overwritten_by_crm_edits(
    tryton: Tryton, bottlecrm: BottleCrm, crm_landscape: Path
) -> None:
    env = env_of(tryton, bottlecrm)
    account = new_account(bottlecrm, "CRM-2001", "Kaufhaus Nord KG")
    run(crm_landscape, env)
    party = party_of(tryton, "CRM-2001")

    # Finance sets the terms in Tryton; the CRM shows them in its custom field.
    net30 = new_payment_term(tryton, "NET30", 30)
    tryton.write("party.party", [party["id"]], {"customer_payment_term": net30})
    run(crm_landscape, env)
    record = golden(crm_landscape, env, f"bottlecrm:{account}")
    assert record["attributes"]["credit_terms"] == "NET30"
    assert record["provenance"]["credit_terms"]["system"] == "tryton"
    assert bottlecrm.account(account)["custom_fields"]["payment_terms"] == "NET30"

    # A sales person edits the account: a new phone number, and other terms.
    bottlecrm.update_account(
        account, phone="+49 40 555000", custom_fields={"payment_terms": "NET90"}
    )
    run(crm_landscape, env)
    [violation] = inbox(crm_landscape, "ownership_violation")
    assert (violation.system, violation.field, violation.source_key) == (
        "bottlecrm",
        "credit_terms",
        account,
    )
    assert "sent 'NET90', golden has 'NET30'" in violation.message
    record = golden(crm_landscape, env, f"bottlecrm:{account}")
    assert record["attributes"]["credit_terms"] == "NET30"
    assert record["attributes"]["phone"] == "+49 40 555000"
    party = party_of(tryton, "CRM-2001")
    assert party["customer_payment_term."]["name"] == "NET30"
    assert ("phone", "+49 40 555000") in party["mechanisms"]
    # The golden record's new version (the phone) went back to the CRM with Tryton's
    # terms; read back from there (the next run polls every source at least once) they
    # agree again, which settles the violation.
    assert bottlecrm.account(account)["custom_fields"]["payment_terms"] == "NET30"
    run(crm_landscape, env)
    [violation] = inbox(crm_landscape, "ownership_violation")
    assert (violation.status, violation.resolution["by"]) == ("resolved", "superseded")


def test_contact_details_edited_in_the_crm_reach_tryton(
    tryton: Tryton, bottlecrm: BottleCrm, crm_landscape: Path
) -> None:
    env = env_of(tryton, bottlecrm)
    account = new_account(bottlecrm, "CRM-3001", "Elektro Weiss GmbH")
    person = bottlecrm.create_contact(
        first_name="Jonas", last_name="Weiss", email="jonas@elektro-weiss.de", account=account
    )
    run(crm_landscape, env)
    assert party_of(tryton, "CRM-3001")["mechanisms"] == [("email", "einkauf@baumarkt-sued.de")]

    bottlecrm.update_account(account, email="einkauf@elektro-weiss.de", phone="+49 711 4711")
    # A person's details are the account's too: a change to one changes the account.
    bottlecrm.update_contact(person, phone="+49 711 4712")
    run(crm_landscape, env)

    party = party_of(tryton, "CRM-3001")
    assert party["mechanisms"] == [
        ("email", "einkauf@elektro-weiss.de"),
        ("phone", "+49 711 4711"),
    ]
    assert len(tryton.search_read("party.party", [["code", "=", "CRM-3001"]], ["id"])) == 1
    record = golden(crm_landscape, env, f"bottlecrm:{account}")
    assert record["attributes"]["email"] == "einkauf@elektro-weiss.de"
    assert [c["phone"] for c in record["attributes"]["contacts"]] == ["+49 711 4712"]


def test_a_lost_acknowledgement_makes_no_second_account_and_a_deletion_shows_in_the_listing(
    bottlecrm: BottleCrm, crm_landscape: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Only the CRM's connector is made: Tryton's settings are never resolved.
    for name, value in bottlecrm.env.items():
        monkeypatch.setenv(name, value)
    hub = build_hub(crm_landscape)
    connector = open_connector(hub.landscape, "bottlecrm")
    try:
        request = DeliveryRequest(
            "bottlecrm.accounts",
            "bottlecrm",
            "customer",
            "cus_1",
            1,
            Operation.UPSERT,
            "cus_1:1",
            None,
            {"name": "Gartenwelt AG", "custom_fields": {"customer_number": "T-17"}},
            "trace-1",
        )
        first = asyncio.run(connector.send(request))
        # The acknowledgement was lost: the hub sends the same version again, knowing no key.
        again = asyncio.run(connector.send(request))
        assert again.target_key == first.target_key
        assert [a["name"] for a in bottlecrm.accounts()] == ["Gartenwelt AG"]

        kept = new_account(bottlecrm, "CRM-4001", "Bleibt GmbH")
        page = connector.read("customer", None, 100)
        assert {r.payload["id"] for r in page.records} == {kept, first.target_key}
        # Nothing changed since: the next poll hands over nothing.
        assert connector.read("customer", page.cursor, 100).records == []

        bottlecrm.delete_account(str(first.target_key))
        # A deletion leaves no trace to read incrementally; the full listing lacks it.
        assert connector.read("customer", page.cursor, 100).records == []
        assert set(dict(connector.read_state("customer"))) == {kept}
    finally:
        asyncio.run(connector.close())
        hub.close()


def test_prepare_is_idempotent_and_says_what_it_took(
    bottlecrm_server: crm_bed.BottleCrmServer, capsys: pytest.CaptureFixture[str]
) -> None:
    # The session's server needed the cache: filled now, a prepare finds everything there.
    assert main(["prepare", "bottlecrm"]) == 0
    # Each step cached; not its seconds: the other test worker may hold the cache's lock
    # for a moment (hashing the dump), which a cached step then waits out.
    assert re.fullmatch(
        r"bottlecrm 1\.35: install [\d.]+ s \(cached\), database template [\d.]+ s \(cached\), "
        r"template database [\d.]+ s \(cached\)",
        capsys.readouterr().out.splitlines()[-1],
    )
    assert (crm_bed.home() / "template.dump").stat().st_size > 100_000
