"""A two-system customer landscape and record builders for matching tests."""

from __future__ import annotations

from typing import Any

from mastersync.domain.landscape.model import Landscape
from mastersync.domain.landscape.policy import CompiledLandscape, compile_landscape
from mastersync.ports.connector import ReadFailure, SourceRecord

CUSTOMER_FIELDS = {
    "name": "name",
    "tax_id": {"from": "vat", "optional": True},
    "email": {"from": "email", "optional": True},
    "phone": {"from": "phone", "optional": True},
    "country": {"from": "country", "optional": True},
    "segment": {"from": "segment", "optional": True},
    "addresses": {"from": "addresses", "optional": True},
}


def landscape(matching: dict[str, Any] | bool | None = None) -> CompiledLandscape:
    """The landscape document below, compiled."""
    return compile_landscape(Landscape.model_validate(landscape_doc(matching)))


def landscape_doc(matching: dict[str, Any] | bool | None = None) -> dict[str, Any]:
    """erp and crm both send customers; erp owns the name, crm the segment.

    ``matching``: the domain's matching configuration (None: the default; False: off).
    """
    domain: dict[str, Any] = {
        "ownership": {"segment": ["crm"]},
        "survivorship": {"default": {"rule": "source_priority", "systems": ["erp", "crm"]}},
    }
    if matching is not None:
        domain["matching"] = matching
    doc: dict[str, Any] = {
        "name": "matching-test",
        "systems": {
            s: {
                "kind": s,
                "inbound": {
                    "customer": {
                        "key": "id",
                        "version": {"from": "v", "kind": "counter"},
                        "fields": CUSTOMER_FIELDS,
                    }
                },
            }
            for s in ("erp", "crm")
        },
        "domains": {"customer": domain},
    }
    return doc


def customer(key: str, name: str, v: int = 1, **fields: Any) -> dict[str, Any]:
    """A native customer record; ``street``, ``city`` and ``postcode`` make one address."""
    record: dict[str, Any] = {"id": key, "v": v, "name": name}
    address = {
        k: fields.pop(f)
        for k, f in (("lines", "street"), ("city", "city"), ("postal_code", "postcode"))
        if f in fields
    }
    if address:
        if "lines" in address:
            address["lines"] = [address["lines"]]
        record["addresses"] = [address]
    record.update(fields)
    return record


def feed(*records: dict[str, Any]) -> list[SourceRecord | ReadFailure]:
    """Records as a connector would yield them."""
    return [SourceRecord(r, f"test:{i + 1}") for i, r in enumerate(records)]


ACME = {
    "email": "info@acme.de",
    "phone": "+49 30 1234567",
    "country": "DE",
    "street": "Hauptstraße 5",
    "city": "Berlin",
    "postcode": "10115",
}


_WORDS = [
    "Nord",
    "Blau",
    "Stern",
    "Kraft",
    "Licht",
    "Feld",
    "Berg",
    "Wald",
    "Hafen",
    "Sonne",
    "Eisen",
    "Glas",
    "Stein",
    "Mühle",
    "Brücke",
    "Quelle",
    "Garten",
    "Turm",
    "Adler",
    "Falke",
]
_KINDS = ["Handel", "Technik", "Logistik", "Bau", "Druck", "Service", "Systeme", "Werke"]
_CITIES = [
    ("Berlin", "10"),
    ("Hamburg", "20"),
    ("München", "80"),
    ("Köln", "50"),
    ("Leipzig", "04"),
    ("Dresden", "01"),
    ("Bremen", "28"),
    ("Essen", "45"),
]
_STREETS = ["Hauptstraße", "Bahnhofstraße", "Gartenweg", "Schulstraße", "Lindenallee", "Ringstraße"]


def backlog(
    n: int, duplicates: int, seed: int = 7
) -> tuple[list[dict[str, Any]], set[frozenset[str]]]:
    """``n`` distinct companies and ``duplicates`` typo'd copies; (records, true pairs by key)."""
    import random

    rng = random.Random(seed)
    names: set[str] = set()
    records = []
    while len(records) < n:
        name = f"{rng.choice(_WORDS)}{rng.choice(_WORDS).lower()} {rng.choice(_KINDS)}"
        if name in names:
            continue
        names.add(name)
        city, prefix = rng.choice(_CITIES)
        i = len(records)
        records.append(
            customer(
                f"E{i}",
                f"{name} GmbH",
                email=f"info{i}@{name.split()[0].lower()}.de",
                phone=f"+49 30 {rng.randrange(1_000_000, 9_999_999)}",
                country="DE",
                street=f"{rng.choice(_STREETS)} {rng.randrange(1, 200)}",
                city=city,
                postcode=f"{prefix}{rng.randrange(100, 999)}",
            )
        )
    pairs = set()
    for j, original in enumerate(rng.sample(records, duplicates)):
        copy = {k: v for k, v in original.items() if k != "addresses"}
        copy["id"] = f"D{j}"
        copy["name"] = original["name"].replace(" GmbH", "").upper()  # legal form, case
        address = dict(original["addresses"][0])
        address["lines"] = [address["lines"][0].replace("straße", "str.")]
        copy["addresses"] = [address]
        if j % 2:
            copy.pop("email")  # a missing value
        else:
            copy["phone"] = copy["phone"].replace("+49 30 ", "030/")  # another format
        records.append(copy)
        pairs.add(frozenset({original["id"], copy["id"]}))
    return records, pairs
