"""Messages name a domain with the article it takes."""

from __future__ import annotations

from mastersync.domain.canonical import DOMAINS
from mastersync.domain.words import a_or_an


def test_every_domain_takes_its_article() -> None:
    assert {d: a_or_an(d) for d in DOMAINS} == {
        "customer": "a customer",
        "item": "an item",
        "supplier": "a supplier",
        "location": "a location",
        "price": "a price",
        "inventory": "an inventory",
    }
