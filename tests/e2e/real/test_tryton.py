"""Scenarios against a live Tryton 8.2 server, through the landscape in
tests/e2e/real/landscape as a user would run it: `mastersync run`, `ingest`, `get`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from mastersync.bootstrap import build_hub, open_connector
from mastersync.cli import app
from mastersync.connectors.sandbox.target import SandboxTarget
from mastersync.domain.reconciliation import Bucket
from mastersync.pipeline.reconcile import reconcile_source
from mastersync.ports.store import ExceptionFilter
from tests.e2e.real.conftest import Tryton
from tests.e2e.real.test_tryton_connector import stock_in

# One worker runs them all: one Tryton server (scripts/test uses --dist loadgroup).
pytestmark = pytest.mark.xdist_group("tryton")

runner = CliRunner()


def cli(landscape: Path, tryton: Tryton, *args: str) -> str:
    result = runner.invoke(app, ["-l", str(landscape), *args], env={"COLUMNS": "200", **tryton.env})
    assert result.exit_code == 0, result.output
    return result.output


def run(landscape: Path, tryton: Tryton) -> str:
    out = cli(landscape, tryton, "run", "--until-idle", "--timeout", "120")
    assert "dead 0" in out, out + cli(landscape, tryton, "exceptions", "list")
    return out


def golden(landscape: Path, tryton: Tryton, domain: str, ref: str) -> dict[str, Any]:
    record: dict[str, Any] = json.loads(cli(landscape, tryton, "get", domain, ref, "--json"))
    return record


def decimal(value: str) -> dict[str, str]:
    return {"__class__": "Decimal", "decimal": value}


def new_product(tryton: Tryton, code: str, name: str, list_price: str, cost: str) -> int:
    """A template with one variant; the variant's id."""
    unit = tryton.id_of("product.uom", "symbol", "u")
    tryton.create(
        "product.template",
        {
            "name": name,
            "type": "goods",
            "default_uom": unit,
            "list_price": decimal(list_price),
            "code": code,
            "products": [["create", [{"cost_price": decimal(cost)}]]],
        },
    )
    return tryton.id_of("product.product", "code", code)


def test_a_product_created_in_tryton_becomes_a_golden_item(tryton: Tryton, landscape: Path) -> None:
    product = new_product(tryton, "GL-100", "Nitrile gloves M", "12.50", "7.10")
    run(landscape, tryton)

    item = golden(landscape, tryton, "item", f"tryton:{product}")
    attributes = item["attributes"]
    assert attributes["sku"] == "GL-100"
    assert attributes["name"] == "Nitrile gloves M"
    assert attributes["list_price"] == "12.5"
    assert attributes["cost_price"] == "7.1"
    assert attributes["base_uom"] == "EA"
    assert attributes["lifecycle_state"] == "active"
    assert item["provenance"]["list_price"]["system"] == "tryton"
    # The list price is a price too, on the price list LIST, for the golden item.
    [price] = golden_records(landscape, "price")
    assert price.attributes["item"] == item["master_id"]
    assert (price.attributes["amount"], price.attributes["currency"]) == ("12.5", "EUR")

    # Nothing changed in Tryton: another run reads nothing new and makes no version.
    run(landscape, tryton)
    assert golden(landscape, tryton, "item", f"tryton:{product}")["version"] == item["version"]
    checked = cli(landscape, tryton, "check", "tryton")
    assert "read item: product.product, 1 record(s)" in checked


def test_a_price_change_in_tryton_reaches_the_subscriber(tryton: Tryton, landscape: Path) -> None:
    product = new_product(tryton, "GL-200", "Nitrile gloves L", "12.90", "7.40")
    run(landscape, tryton)
    shop = SandboxTarget(landscape.parent / "targets" / "shop.db")
    [price] = shop.records("price").values()
    assert price["payload"]["amount"] == "12.9"

    # The list price lives on the template: the product's own write_date does not move.
    template = tryton.search_read("product.product", [["id", "=", product]], ["template"])[0]
    tryton.write("product.template", [template["template"]], {"list_price": decimal("13.20")})
    run(landscape, tryton)
    [price] = shop.records("price").values()
    assert price["payload"]["amount"] == "13.2"


def new_party(
    tryton: Tryton,
    name: str,
    code: str,
    category: str,
    *,
    vat: str | None = None,
    city: str = "Berlin",
) -> int:
    """A party in a category, with an address in Germany (and a VAT number)."""
    values: dict[str, Any] = {
        "name": name,
        "code": code,
        "categories": [["add", [tryton.id_of("party.category", "name", category)]]],
        "addresses": [
            [
                "create",
                [
                    {
                        "street": "Hauptstr. 1",
                        "postal_code": "10115",
                        "city": city,
                        "country": tryton.id_of("country.country", "code", "DE"),
                    }
                ],
            ]
        ],
    }
    if vat is not None:
        values["identifiers"] = [["create", [{"type": "eu_vat", "code": vat}]]]
    return tryton.create("party.party", values)


def test_an_address_changed_in_tryton_changes_the_golden_customer(
    tryton: Tryton, landscape: Path
) -> None:
    party = new_party(tryton, "Kaufhaus Nord KG", "C-100", "Customer")
    run(landscape, tryton)
    record = golden(landscape, tryton, "customer", f"tryton:{party}")
    assert record["attributes"]["addresses"][0]["city"] == "Berlin"
    version = record["version"]

    # Writing the address itself leaves the party's write_date alone.
    [address] = tryton.search_read("party.address", [["party", "=", party]], ["id"])
    tryton.write("party.address", [address["id"]], {"city": "Hamburg", "postal_code": "20095"})
    run(landscape, tryton)
    record = golden(landscape, tryton, "customer", f"tryton:{party}")
    assert record["attributes"]["addresses"][0]["city"] == "Hamburg"
    assert record["attributes"]["addresses"][0]["postal_code"] == "20095"
    assert record["version"] == version + 1


def tryton_keys(landscape: Path, domain: str) -> set[str]:
    """The Tryton keys the hub holds golden records of a domain under."""
    hub = build_hub(landscape)
    try:
        with hub.store.unit_of_work(write=False) as uow:
            return {
                member.key
                for record in uow.list_golden(domain, limit=1000)
                for member in uow.members(record.master_id)
                if member.system == "tryton"
            }
    finally:
        hub.close()


def test_a_party_deleted_in_tryton_is_detected_by_its_full_listing(
    tryton: Tryton, landscape: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kept = new_party(tryton, "Bleibt GmbH", "C-200", "Customer")
    gone = new_party(tryton, "Geht AG", "C-201", "Customer")
    run(landscape, tryton)
    assert tryton_keys(landscape, "customer") == {str(kept), str(gone)}

    tryton.call("party.party.delete", [gone])
    # Incremental reads cannot see a deletion: nothing changed that still exists.
    run(landscape, tryton)
    assert tryton_keys(landscape, "customer") == {str(kept), str(gone)}
    for name, value in tryton.env.items():
        monkeypatch.setenv(name, value)
    hub = build_hub(landscape)
    connector = open_connector(hub.landscape, "tryton")
    try:
        with hub.store.unit_of_work(write=False) as uow:
            master = uow.find_master("customer", "tryton", str(gone))
        # The full listing does: reconciliation files the party in the inbox.
        result = reconcile_source(hub.store, hub.landscape, connector, "tryton", "customer")
        with hub.store.unit_of_work(write=False) as uow:
            entries = uow.exceptions(ExceptionFilter(kind="drift", system="tryton"))
    finally:
        connector.transport.close()
        hub.close()
    assert result.report.keys(Bucket.MISSING) == [str(gone)]
    assert result.report.counts[Bucket.MATCHED] == 1 and result.report.error_count == 0
    [entry] = entries
    assert (entry.rule, entry.domain, entry.source_key) == (
        "source_record_missing",
        "customer",
        str(gone),
    )
    assert master is not None and entry.master_id == master
    assert entry.payload["last_seen"]["name"] == "Geht AG"
    assert f"'{gone}' of tryton" in entry.message


CRM_ACCOUNTS = (
    "ACCOUNT_NO,CHANGE_NO,ACCOUNT_NAME,EMAIL,PHONE,STREET,ZIP,CITY,COUNTRY\n"
    "CRM-1001,1,Baumarkt Süd GmbH,einkauf@baumarkt-sued.de,,Industriestr. 7,80331,München,DE\n"
)


def test_a_customer_from_the_crm_is_created_in_tryton_as_a_party_with_address(
    tryton: Tryton, landscape: Path, tmp_path: Path
) -> None:
    accounts = tmp_path / "accounts.csv"
    accounts.write_text(CRM_ACCOUNTS)
    cli(landscape, tryton, "ingest", "--system", "crm", "--domain", "customer", str(accounts))
    run(landscape, tryton)

    [party] = tryton.search_read(
        "party.party",
        [["code", "=", "CRM-1001"]],
        ["name", "categories.name", "addresses", "contact_mechanisms"],
    )
    assert party["name"] == "Baumarkt Süd GmbH"
    assert [c["name"] for c in party["categories."]] == ["Customer"]
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
    mechanisms = tryton.search_read(
        "party.contact_mechanism", [["party", "=", party["id"]]], ["type", "value"]
    )
    assert [(m["type"], m["value"]) for m in mechanisms] == [("email", "einkauf@baumarkt-sued.de")]
    # Tryton's id became the golden record's key there, and reading the party back made
    # no second customer.
    record = golden(landscape, tryton, "customer", "crm:CRM-1001")
    assert {x["system"]: x["key"] for x in record["xrefs"]}["tryton"] == str(party["id"])

    # A phone number added in the CRM reaches the same party; nothing is duplicated.
    accounts.write_text(
        CRM_ACCOUNTS.replace(",1,Baumarkt", ",2,Baumarkt").replace(
            "sued.de,,", "sued.de,+49 89 123456,"
        )
    )
    cli(landscape, tryton, "ingest", "--system", "crm", "--domain", "customer", str(accounts))
    run(landscape, tryton)
    assert len(tryton.search_read("party.party", [["code", "=", "CRM-1001"]], ["id"])) == 1
    mechanisms = tryton.search_read(
        "party.contact_mechanism", [["party", "=", party["id"]]], ["type", "value"]
    )
    assert sorted((m["type"], m["value"]) for m in mechanisms) == [
        ("email", "einkauf@baumarkt-sued.de"),
        ("phone", "+49 89 123456"),
    ]
    assert len(golden_records(landscape, "customer")) == 1


def inbox(landscape: Path, kind: str) -> list[Any]:
    hub = build_hub(landscape)
    try:
        with hub.store.unit_of_work(write=False) as uow:
            return list(uow.exceptions(ExceptionFilter(kind=kind)))
    finally:
        hub.close()


def golden_records(landscape: Path, domain: str) -> list[Any]:
    hub = build_hub(landscape)
    try:
        with hub.store.unit_of_work(write=False) as uow:
            return list(uow.list_golden(domain, limit=1000))
    finally:
        hub.close()


def test_tryton_owned_fields_are_not_overwritten_by_another_system(
    tryton: Tryton, landscape: Path, tmp_path: Path
) -> None:
    product = new_product(tryton, "GL-300", "Nitrile gloves XL", "14.00", "8.00")
    run(landscape, tryton)
    enrichment = tmp_path / "enrichment.csv"
    enrichment.write_text(
        "SKU,REVISION,DESCRIPTION,PRICE\n"
        "GL-300,1,Powder-free nitrile examination gloves size XL,9.99\n"
    )
    cli(landscape, tryton, "ingest", "--system", "pim", "--domain", "item", str(enrichment))

    item = golden(landscape, tryton, "item", f"tryton:{product}")
    assert item["attributes"]["description"] == "Powder-free nitrile examination gloves size XL"
    assert item["attributes"]["list_price"] == "14"
    assert item["provenance"]["list_price"]["system"] == "tryton"
    [violation] = inbox(landscape, "ownership_violation")
    assert (violation.system, violation.field, violation.source_key) == (
        "pim",
        "list_price",
        "GL-300",
    )

    # Tryton's own later change still wins, and the description stays the PIM's.
    template = tryton.search_read("product.product", [["id", "=", product]], ["template"])[0]
    tryton.write("product.template", [template["template"]], {"list_price": decimal("14.50")})
    run(landscape, tryton)
    item = golden(landscape, tryton, "item", f"tryton:{product}")
    assert item["attributes"]["list_price"] == "14.5"
    assert item["attributes"]["description"] == "Powder-free nitrile examination gloves size XL"


def test_the_same_supplier_in_tryton_and_a_vendor_file_is_one_golden_supplier(
    tryton: Tryton, landscape: Path, tmp_path: Path
) -> None:
    party = new_party(
        tryton, "Acme Industrial GmbH", "S-100", "Supplier", vat="DE136695976", city="Köln"
    )
    run(landscape, tryton)
    vendors = tmp_path / "vendors.csv"
    vendors.write_text(
        "VENDOR_NO,CHANGE_NO,VENDOR_NAME,VAT_ID,COUNTRY,EMAIL\n"
        "V-77,1,ACME Industrial GmbH.,DE 136 695 976,DE,orders@acme-industrial.de\n"
    )
    cli(
        landscape, tryton, "ingest", "--system", "procurement", "--domain", "supplier", str(vendors)
    )

    [supplier] = golden_records(landscape, "supplier")
    record = golden(landscape, tryton, "supplier", f"tryton:{party}")
    assert record["master_id"] == supplier.master_id
    assert {(x["system"], x["key"]) for x in record["xrefs"]} == {
        ("tryton", str(party)),
        ("procurement", "V-77"),
    }
    attributes = record["attributes"]
    assert attributes["tax_id"] == "DE136695976"
    assert attributes["name"] == "Acme Industrial GmbH"  # Tryton first, by the landscape
    assert attributes["email"] == "orders@acme-industrial.de"  # only the vendor file has it


def test_price_list_lines_are_prices_and_their_changes_reach_the_subscriber(
    tryton: Tryton, landscape: Path
) -> None:
    product = new_product(tryton, "GL-400", "Nitrile gloves S", "12.00", "7.00")
    price_list = tryton.create(
        "product.price_list",
        {
            "name": "Wholesale",
            "lines": [
                ["create", [{"product": product, "quantity": 10, "formula": "11.00"}]],
                # A computed price has no fixed amount: an inbox entry, not a price.
                ["create", [{"product": product, "quantity": 100, "formula": "unit_price * 0.8"}]],
            ],
        },
    )
    run(landscape, tryton)
    item = golden(landscape, tryton, "item", f"tryton:{product}")
    prices = {
        (p.attributes["price_list"], p.attributes.get("min_quantity")): p
        for p in golden_records(landscape, "price")
    }
    assert set(prices) == {("LIST", None), ("Wholesale", "10")}
    wholesale = prices[("Wholesale", "10")].attributes
    assert (wholesale["item"], wholesale["amount"], wholesale["uom"]) == (
        item["master_id"],
        "11",
        "EA",
    )
    [computed] = inbox(landscape, "mapping_error")
    assert (computed.system, computed.field) == ("tryton_pricelists", "amount")

    # A change of the line reaches the shop; so does a change of the list's name (a
    # related record: the line's own write_date stays).
    shop = SandboxTarget(landscape.parent / "targets" / "shop.db")
    master = prices[("Wholesale", "10")].master_id
    assert shop.records("price")[master]["payload"]["amount"] == "11"
    [line] = tryton.search_read(
        "product.price_list.line", [["price_list", "=", price_list], ["quantity", "=", 10]], ["id"]
    )
    tryton.write("product.price_list.line", [line["id"]], {"formula": "10.50"})
    run(landscape, tryton)
    assert shop.records("price")[master]["payload"]["amount"] == "10.5"
    tryton.write("product.price_list", [price_list], {"name": "Wholesale DE"})
    run(landscape, tryton)
    assert shop.records("price")[master]["payload"]["price_list"] == "Wholesale DE"


def test_a_supplier_reference_in_tryton_reaches_the_golden_item_and_its_purchase_prices(
    tryton: Tryton, landscape: Path
) -> None:
    acme = new_party(tryton, "Acme Industrial GmbH", "S-300", "Supplier")
    product = new_product(tryton, "GL-500", "Nitrile gloves XS", "12.00", "7.00")
    [row] = tryton.search_read("product.product", [["id", "=", product]], ["template"])
    unit = tryton.id_of("product.uom", "symbol", "u")
    tryton.write("product.template", [row["template"]], {"purchasable": True, "purchase_uom": unit})
    run(landscape, tryton)

    # The supplier's own code, name and lead time for the gloves, with two quantity breaks.
    tryton.create(
        "purchase.product_supplier",
        {
            "template": row["template"],
            "party": acme,
            "code": "AC-500",
            "name": "Acme nitrile XS",
            "lead_time": {"__class__": "timedelta", "seconds": 10 * 86400},
            "prices": [
                [
                    "create",
                    [
                        {"quantity": 0, "unit_price": decimal("6.80")},
                        {"quantity": 500, "unit_price": decimal("6.20")},
                    ],
                ]
            ],
        },
    )
    run(landscape, tryton)
    item = golden(landscape, tryton, "item", f"tryton:{product}")
    attributes = item["attributes"]
    assert (
        attributes["primary_supplier"]
        == golden(landscape, tryton, "supplier", f"tryton:{acme}")["master_id"]
    )
    assert (
        attributes["supplier_item_number"],
        attributes["supplier_item_name"],
        attributes["supplier_lead_time_days"],
    ) == ("AC-500", "Acme nitrile XS", 10)
    purchase = {
        p.attributes["min_quantity"]: p.attributes
        for p in golden_records(landscape, "price")
        if p.attributes["price_list"] == "PURCHASE:S-300"
    }
    assert {q: (p["amount"], p["item"], p["uom"]) for q, p in purchase.items()} == {
        "0": ("6.8", item["master_id"], "EA"),
        "500": ("6.2", item["master_id"], "EA"),
    }
    # The shop subscribes to sales prices only: it has the list price, not the supplier's.
    shop = SandboxTarget(landscape.parent / "targets" / "shop.db")
    assert [p["payload"]["price_list"] for p in shop.records("price").values()] == ["LIST"]


def test_a_stock_move_done_in_tryton_changes_the_golden_inventory(
    tryton: Tryton, landscape: Path
) -> None:
    product = new_product(tryton, "GL-600", "Nitrile gloves XXL", "15.00", "9.00")
    run(landscape, tryton)
    warehouse = tryton.id_of("stock.location", "code", "WH")
    key = f"tryton:{product}@{warehouse}"

    stock_in(tryton, product, 40)  # a goods receipt into the warehouse's storage zone
    run(landscape, tryton)
    position = golden(landscape, tryton, "inventory", key)
    assert position["attributes"] == {
        "item": golden(landscape, tryton, "item", f"tryton:{product}")["master_id"],
        "location": golden(landscape, tryton, "location", f"tryton:{warehouse}")["master_id"],
        "uom": "EA",
        "on_hand": "40",
    }
    assert (
        golden(landscape, tryton, "location", f"tryton:{warehouse}")["attributes"]["code"] == "WH"
    )
