"""The ERP: semicolon CSV exports with decimal commas, day-first dates and change counters."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

from mastersync.sandbox.identifiers import corrupt_check_digit
from mastersync.sandbox.systems import Faults, decimal_comma, rng_for, write_csv
from mastersync.sandbox.world import World

CSV = {"delimiter": ";", "encoding": "utf-8-sig"}
# The ERP's own unit codes (German heritage).
UOM = {
    "EA": "ST",
    "BX": "KAR",
    "BT": "FL",
    "CN": "DS",
    "RL": "RO",
    "PK": "PAK",
    "RM": "RM",
    "PR": "PAA",
}
TERMS = {"NET30": "Z030", "NET45": "Z045", "NET60": "Z060", "NET14": "Z014", "PREPAID": "V000"}


def write_erp(world: World, folder: Path, seed: int, faults: Faults) -> dict[str, Path]:
    """Write the ERP's exports; returns file name -> path."""
    rng = rng_for(seed, "erp")
    out = {}
    path = folder / "locations.csv"
    write_csv(
        path,
        ["SITE", "NAME", "TYPE", "GLN", "STREET", "ZIP", "CITY", "COUNTRY", "CHANGE_NO"],
        [
            [s.code, s.name, s.kind.upper(), s.gln, s.street, s.postal_code, s.city, s.country, 3]
            for s in world.sites
        ],
        **CSV,
    )
    out["locations"] = path

    rows: list[list[Any]] = []
    for s in world.suppliers:
        iban = s.iban
        if rng.random() < faults.bad_iban:
            iban = iban[:-1] + str((int(iban[-1]) + 3) % 10)
        rows.append(
            [
                s.number,
                s.name,
                s.legal_name,
                s.vat,
                s.country,
                s.currency,
                iban,
                TERMS[s.terms],
                s.lead_time_days,
                s.street,
                s.postal_code,
                s.city,
                s.email,
                "A",
                rng.randint(1, 40),
            ]
        )
    path = folder / "suppliers.csv"
    write_csv(
        path,
        [
            "VENDOR_NO",
            "NAME",
            "LEGAL_NAME",
            "VAT_REG_NO",
            "COUNTRY",
            "CURRENCY",
            "IBAN",
            "PAY_TERMS",
            "LEAD_DAYS",
            "STREET",
            "ZIP",
            "CITY",
            "EMAIL",
            "STATUS",
            "CHANGE_NO",
        ],
        rows,
        **CSV,
    )
    out["suppliers"] = path

    versions: dict[str, int] = {}
    rows = []
    for it in world.items:
        ean = it.gtin
        roll = rng.random()
        if roll < faults.bad_gtin:
            ean = corrupt_check_digit(ean)
        elif roll < faults.bad_gtin + faults.missing_gtin:
            ean = ""
        versions[it.sku] = rng.randint(1, 30)
        rows.append(
            [
                it.sku,
                it.name_de,
                ean,
                UOM[it.base_uom],
                it.case_qty,
                it.case_gtin,
                it.pallet_qty,
                decimal_comma(it.list_price),
                decimal_comma(it.cost_price),
                "EUR",
                it.status,
                it.supplier_no,
                it.country_of_origin,
                it.hs_code,
                versions[it.sku],
            ]
        )
    header = [
        "ITEM_NO",
        "DESCRIPTION",
        "EAN",
        "BASE_UOM",
        "CASE_QTY",
        "CASE_EAN",
        "PALLET_QTY",
        "LIST_PRICE",
        "COST_PRICE",
        "CURRENCY",
        "STATUS",
        "VENDOR_NO",
        "ORIGIN",
        "HS_CODE",
        "CHANGE_NO",
    ]
    path = folder / "items.csv"
    write_csv(path, header, rows, **CSV)
    out["items"] = path

    # A day later: 5% of items get a new list price; a stray older export is re-sent too.
    delta = []
    for row in rng.sample(rows, k=max(1, len(rows) // 20)):
        changed = list(row)
        price = Decimal(changed[7].replace(",", ".")) * Decimal("1.04")
        changed[7] = decimal_comma(price.quantize(Decimal("0.01")))
        changed[14] = int(row[14]) + 1
        delta.append(changed)
    for row in rng.sample(rows, k=max(1, len(rows) // 200)):
        stale = list(row)
        stale[7] = decimal_comma(Decimal("0.99"))
        stale[14] = int(row[14]) - 1
        delta.append(stale)
    path = folder / "items_delta.csv"
    write_csv(path, header, delta, **CSV)
    out["items_delta"] = path

    rows = []
    for c in world.customers:
        rows.append(
            [
                c.number,
                c.legal_name,
                "",
                c.street,
                c.postal_code,
                c.city,
                c.country,
                c.vat,
                c.currency,
                TERMS[c.terms],
                decimal_comma(c.credit_limit, True),
                "A",
                c.email,
                c.phone,
                rng.randint(1, 60),
            ]
        )
    path = folder / "customers.csv"
    write_csv(
        path,
        [
            "CUST_NO",
            "NAME",
            "NAME_2",
            "STREET",
            "ZIP",
            "CITY",
            "COUNTRY",
            "VAT_REG_NO",
            "CURRENCY",
            "PAY_TERMS",
            "CREDIT_LIMIT",
            "STATUS",
            "EMAIL",
            "PHONE",
            "CHANGE_NO",
        ],
        rows,
        **CSV,
    )
    # One line with a stray separator, as hand-edited exports have.
    with path.open("a", encoding="utf-8") as handle:
        handle.write("1999999;Broken Line GmbH;;Hauptstr. 1;10115;Berlin;DE;extra;;\r\n")
    out["customers"] = path

    rows = []
    skus = [it.sku for it in world.items]
    for it in world.items:
        for price_list, factor in (("LIST", Decimal(1)), ("WHOLESALE", Decimal("0.85"))):
            sku = it.sku
            if rng.random() < faults.unknown_reference:
                sku = f"X{rng.randint(100000, 999999)}"
            rows.append(
                [
                    sku,
                    price_list,
                    "EUR",
                    UOM[it.base_uom],
                    decimal_comma((it.list_price * factor).quantize(Decimal("0.01"))),
                    1 if price_list == "LIST" else it.case_qty,
                    "01.01.2026",
                    rng.randint(1, 9),
                ]
            )
    path = folder / "prices.csv"
    write_csv(
        path,
        ["ITEM_NO", "PRICE_LIST", "CURRENCY", "UOM", "PRICE", "MIN_QTY", "VALID_FROM", "CHANGE_NO"],
        rows,
        **CSV,
    )
    out["prices"] = path
    assert len(set(skus)) == len(skus)
    return out
