"""Default matching per domain, so good matching needs no configuration at all."""

from __future__ import annotations

from typing import Any

from mastersync.domain.matching.config import MatchConfig
from mastersync.domain.problems import ConfigError

# Customers and suppliers are both organisations with addresses and contacts.
_PARTY: dict[str, Any] = {
    "comparisons": [
        {
            "name": "name",
            "fields": ["name", "legal_name"],
            "normalisers": ["legal_form"],
            "comparator": "jaro_winkler",
            "thresholds": [0.94, 0.85],
        },
        {"name": "tax_id", "fields": ["tax_id"], "normalisers": ["alnum"], "comparator": "exact"},
        {
            "name": "email",
            "fields": ["email", "contacts.email"],
            "normalisers": ["email"],
            "comparator": "exact",
        },
        {
            "name": "phone",
            "fields": ["phone", "contacts.phone"],
            "normalisers": ["phone"],
            "comparator": "edit_distance",
            "thresholds": [1],
        },
        {
            "name": "street",
            "fields": ["addresses.lines"],
            "normalisers": ["street"],
            "comparator": "token_set",
            "thresholds": [0.9, 0.75],
        },
        {
            "name": "city",
            "fields": ["addresses.city"],
            "normalisers": ["text"],
            "comparator": "jaro_winkler",
            "thresholds": [0.92],
        },
        {
            "name": "postal_code",
            "fields": ["addresses.postal_code"],
            "normalisers": ["postal_code"],
            "comparator": "edit_distance",
            "thresholds": [1],
        },
        {
            "name": "country",
            "fields": ["country", "addresses.country"],
            "normalisers": ["alnum"],
            "comparator": "exact",
        },
    ],
    "blocking": [
        {"name": "tax_id", "parts": [{"field": "tax_id", "normalisers": ["alnum"]}]},
        {"name": "email", "parts": [{"field": "email", "normalisers": ["email"]}]},
        {"name": "phone", "parts": [{"field": "phone", "normalisers": ["phone", "last(7)"]}]},
        {
            "name": "name_postcode",
            "parts": [
                {"field": "name", "normalisers": ["legal_form", "first(3)"]},
                {"field": "addresses.postal_code", "normalisers": ["postal_code"]},
            ],
        },
        {
            "name": "name_sound_city",
            "parts": [
                {"field": "name", "normalisers": ["legal_form", "soundex"]},
                {"field": "addresses.city", "normalisers": ["text"]},
            ],
        },
        {
            "name": "street_postcode",
            "parts": [
                {"field": "addresses.lines", "normalisers": ["street"]},
                {"field": "addresses.postal_code", "normalisers": ["postal_code"]},
            ],
        },
    ],
    # Real data rarely has every field; a missing one costs nothing but a default config must
    # not fail on data that never fills, say, phone numbers.
    "em": {"on_constant": "ignore"},
}

_ITEM: dict[str, Any] = {
    "comparisons": [
        {
            "name": "gtin",
            "fields": ["gtin"],
            "normalisers": ["gtin"],
            "comparator": "exact_or_missing",
        },
        {
            "name": "name",
            "fields": ["name"],
            "normalisers": ["text"],
            "comparator": "token_set",
            "thresholds": [0.95, 0.85, 0.7],
        },
        {
            "name": "brand",
            "fields": ["brand"],
            "normalisers": ["legal_form"],
            "comparator": "jaro_winkler",
            "thresholds": [0.92],
        },
        {
            "name": "sku",
            "fields": ["sku", "supplier_item_number"],
            "normalisers": ["alnum"],
            "comparator": "edit_distance",
            "thresholds": [1],
        },
        {
            "name": "manufacturer",
            "fields": ["manufacturer"],
            "normalisers": ["legal_form"],
            "comparator": "jaro_winkler",
            "thresholds": [0.92],
        },
    ],
    "blocking": [
        {"name": "gtin", "parts": [{"field": "gtin", "normalisers": ["gtin"]}]},
        {"name": "sku", "parts": [{"field": "sku", "normalisers": ["alnum"]}]},
        {
            "name": "part_number",
            "parts": [{"field": "supplier_item_number", "normalisers": ["alnum"]}],
        },
        {
            "name": "name_brand",
            "parts": [
                {"field": "name", "normalisers": ["text", "sorted_tokens", "first(6)"]},
                {"field": "brand", "normalisers": ["legal_form", "first(3)"]},
            ],
        },
        {
            "name": "name_sound_maker",
            "parts": [
                {"field": "name", "normalisers": ["text", "soundex"]},
                {"field": "manufacturer", "normalisers": ["legal_form", "first(3)"]},
            ],
        },
    ],
    "em": {"on_constant": "ignore"},
}

DEFAULTS: dict[str, dict[str, Any]] = {"customer": _PARTY, "supplier": _PARTY, "item": _ITEM}


def default_config(domain: str) -> MatchConfig:
    """The default matching configuration of a domain (customer, supplier, item)."""
    try:
        spec = DEFAULTS[domain]
    except KeyError:
        raise ConfigError(
            f"no default matching for domain {domain!r} (have: {', '.join(DEFAULTS)})"
        ) from None
    return MatchConfig.model_validate(spec)
