"""The CRM: Salesforce-shaped accounts with nested addresses and contacts, ISO timestamps."""

from __future__ import annotations

import datetime as dt
import string
from pathlib import Path
from typing import Any

from mastersync.sandbox.systems import Faults, rng_for, write_jsonl
from mastersync.sandbox.world import Company, World

COUNTRY_NAMES = {
    "DE": "Germany",
    "AT": "Austria",
    "FR": "France",
    "NL": "Netherlands",
    "BE": "Belgium",
    "IT": "Italy",
    "PL": "Poland",
    "DK": "Denmark",
}
_BASE = dt.datetime(2026, 11, 2, 8, 0, tzinfo=dt.UTC)


def _account(c: Company, rng: Any, faults: Faults, n: int) -> dict[str, Any]:
    contacts = []
    for name, email, phone, role in c.contacts:
        first, _, last = name.rpartition(" ")
        if rng.random() < faults.bad_email:
            email = email.replace("@", "@@")
        contacts.append(
            {
                "FirstName": first or None,
                "LastName": last,
                "Email": email,
                "Phone": phone,
                "Title": role,
            }
        )
    stamp = _BASE + dt.timedelta(minutes=n * 7 + rng.randint(0, 5))
    record: dict[str, Any] = {
        "Id": "001" + "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(15)),
        "Name": c.name.upper() if rng.random() < 0.1 else c.name,
        "AccountNumber": c.number if rng.random() < 0.6 else None,
        "VAT_Number__c": None if rng.random() < faults.no_tax_id else c.vat,
        "Industry": c.segment,
        "Phone": c.phone,
        "Website": c.website,
        "BillingAddress": {
            "street": c.street,
            "postalCode": c.postal_code,
            "city": c.city,
            "country": COUNTRY_NAMES[c.country],
        },
        "Owner": {"Name": rng.choice(["Lena Vogel", "Marc Dubois", "Anna Kowalska"])},
        "Contacts": contacts,
        "SystemModstamp": stamp.isoformat().replace("+00:00", "Z"),
    }
    if rng.random() < faults.ownership_violation:
        # Sales "knows better" than credit management: a write the CRM does not own.
        record["Credit_Limit__c"] = float(c.credit_limit * 2)
    return record


def write_crm(world: World, folder: Path, seed: int, faults: Faults) -> dict[str, Path]:
    """Write the CRM's account export; returns file name -> path."""
    rng = rng_for(seed, "crm")
    accounts = [
        _account(c, rng, faults, n) for n, c in enumerate(world.customers) if rng.random() < 0.9
    ]
    path = folder / "accounts.jsonl"
    write_jsonl(path, accounts)
    return {"accounts": path}
