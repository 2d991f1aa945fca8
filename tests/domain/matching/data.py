"""Small deterministic customer sets with planted duplicates, for matching tests."""

from __future__ import annotations

import random
from typing import Any

SURNAMES = [
    "Müller",
    "Schmidt",
    "Schneider",
    "Fischer",
    "Weber",
    "Meyer",
    "Wagner",
    "Becker",
    "Schulz",
    "Hoffmann",
    "Koch",
    "Richter",
    "Klein",
    "Wolf",
    "Schröder",
    "Neumann",
    "Schwarz",
    "Zimmermann",
    "Braun",
    "Krüger",
    "Hofmann",
    "Hartmann",
    "Lange",
    "Werner",
    "Dupont",
    "Martin",
    "Bernard",
    "Moreau",
    "Laurent",
    "Lefebvre",
    "Rossi",
    "Russo",
    "Ferrari",
    "Esposito",
    "Bianchi",
    "Romano",
    "Smith",
    "Jones",
    "Taylor",
    "Brown",
    "Williams",
    "Wilson",
    "Johnson",
    "Davies",
    "Robinson",
    "Wright",
    "Thompson",
    "Evans",
]
SECTORS = [
    "Logistik",
    "Handel",
    "Technik",
    "Bau",
    "Foods",
    "Trading",
    "Systems",
    "Metall",
    "Pharma",
    "Tools",
    "Print",
]
FORMS = ("GmbH", "AG", "GmbH & Co. KG", "Ltd", "S.A.", "SARL", "S.r.l.", "Inc.", "B.V.")
CITIES = (
    ("Berlin", "10115", "DE"),
    ("Hamburg", "20095", "DE"),
    ("München", "80331", "DE"),
    ("Köln", "50667", "DE"),
    ("Paris", "75001", "FR"),
    ("Lyon", "69001", "FR"),
    ("Milano", "20121", "IT"),
    ("London", "SW1A 1AA", "GB"),
    ("Leeds", "LS1 4AP", "GB"),
)
STREETS = ("Hauptstraße", "Bahnhofstraße", "Rue de Rivoli", "Via Roma", "High Street", "Mill Lane")


def customer(rng: random.Random, n: int) -> dict[str, Any]:
    """One customer; ``n`` keeps identifiers unique."""
    city, postcode, country = rng.choice(CITIES)
    surname = rng.choice(SURNAMES)
    name = f"{surname} {rng.choice(SECTORS)} {rng.choice(FORMS)}"
    return {
        "name": name,
        "tax_id": f"{country}{100000000 + n * 7919 % 899999999}",
        "country": country,
        "email": f"info@{surname.lower()}{n}.example",
        "phone": f"+49 30 {1000000 + n * 104729 % 8999999}",
        "addresses": [
            {
                "type": "billing",
                "lines": [f"{rng.choice(STREETS)} {rng.randint(1, 99)}"],
                "city": city,
                "postal_code": postcode,
                "country": country,
            }
        ],
    }


def duplicate(rng: random.Random, record: dict[str, Any]) -> dict[str, Any]:
    """The same customer as another system sends it: other spellings, one gap."""
    out = {**record, "addresses": [dict(a) for a in record["addresses"]]}
    out["name"] = out["name"].upper().replace("GMBH", "G.m.b.H.")
    line = out["addresses"][0]["lines"][0]
    out["addresses"][0]["lines"] = [line.replace("straße", "str.").replace("Street", "St")]
    out["phone"] = out["phone"].replace("+49 30 ", "030 ")
    out.pop(rng.choice(("email", "tax_id")))
    return out


def customers(
    count: int = 300, duplicates: int = 40, seed: int = 3
) -> tuple[dict[str, dict[str, Any]], set[tuple[str, str]]]:
    """``count`` customers plus ``duplicates`` duplicates of some; returns (records, true pairs)."""
    rng = random.Random(seed)
    records = {f"C{i:04d}": customer(rng, i) for i in range(count)}
    truth = set()
    for k, source in enumerate(rng.sample(sorted(records), duplicates)):
        dup_id = f"D{k:04d}"
        records[dup_id] = duplicate(rng, records[source])
        truth.add((source, dup_id))
    return records, truth
