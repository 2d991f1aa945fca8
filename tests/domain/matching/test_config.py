"""Configuration: defaults per domain, the YAML shape, and mistakes named with their key path."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from mastersync.domain.matching import MatchConfig, Matcher, default_config
from mastersync.domain.problems import ConfigError

DOCS = Path(__file__).parents[3] / "docs" / "matching.md"

SMALL: dict[str, Any] = {
    "comparisons": [
        {"name": "name", "fields": ["name"], "normalisers": ["legal_form"], "comparator": "exact"}
    ],
    "blocking": [{"name": "name", "parts": ["name"]}],
}


def config(**changes: Any) -> MatchConfig:
    return MatchConfig.model_validate({**SMALL, **changes})


@pytest.mark.parametrize("domain", ["customer", "supplier", "item"])
def test_defaults_compile(domain: str) -> None:
    matcher = Matcher(default_config(domain))
    names = matcher.compiled.names
    assert len(names) >= 5
    assert matcher.config.thresholds.link == 0.99
    assert matcher.config.thresholds.review == 0.8
    assert len(matcher.compiled.keys) >= 5


def test_default_comparisons() -> None:
    customer = {c.name: c for c in default_config("customer").comparisons}
    assert list(customer) == [
        "name",
        "tax_id",
        "email",
        "phone",
        "street",
        "city",
        "postal_code",
        "country",
    ]
    assert customer["name"].fields == ["name", "legal_name"]
    assert customer["name"].normalisers == ["legal_form"]
    assert customer["phone"].normalisers == ["phone"]
    item = {c.name: c for c in default_config("item").comparisons}
    assert list(item) == ["gtin", "name", "brand", "sku", "manufacturer"]
    assert item["gtin"].comparator == "exact_or_missing"
    assert item["name"].comparator == "token_set"


def test_unknown_domain() -> None:
    with pytest.raises(ConfigError, match="no default matching for domain 'order'"):
        default_config("order")


def test_yaml_shape_with_short_key_parts() -> None:
    text = """
comparisons:
  - name: name
    fields: [name, legal_name]
    normalisers: [legal_form]
    comparator: jaro_winkler
    thresholds: [0.94, 0.85]
  - {name: tax_id, fields: [tax_id], normalisers: [alnum], comparator: exact}
blocking:
  - {name: tax_id, parts: [tax_id]}
  - name: name_postcode
    parts:
      - {field: name, normalisers: [legal_form, "first(3)"]}
      - addresses.postal_code
thresholds: {link: 0.95, review: 0.6}
em: {seed: 7, max_iterations: 50}
"""
    parsed = MatchConfig.model_validate(yaml.safe_load(text))
    assert parsed.blocking[0].parts[0].field == "tax_id"
    assert parsed.blocking[1].parts[1].normalisers == []
    assert parsed.em.seed == 7
    assert parsed.em.sample_size == 200_000
    assert Matcher(parsed).compiled.names == ("name", "tax_id")


def test_docs_examples_are_valid() -> None:
    blocks = re.findall(r"```yaml\n(.*?)```", DOCS.read_text(encoding="utf-8"), re.DOTALL)
    assert blocks
    for block in blocks:
        document = yaml.safe_load(block)
        matching = document["domains"]["customer"]["matching"]
        Matcher(MatchConfig.model_validate(matching))


@pytest.mark.parametrize(
    ("changes", "message", "loc"),
    [
        (
            {"thresholds": {"link": 0.8, "review": 0.9}},
            "the review threshold (0.9) is above the auto-link threshold (0.8)",
            ("thresholds", "review"),
        ),
        (
            {"thresholds": {"link": 1.5, "review": 0.9}},
            "probability thresholds lie strictly between 0 and 1",
            ("thresholds",),
        ),
        (
            {"comparisons": [{"name": "n", "fields": ["name"], "comparator": "soundalike"}]},
            "unknown comparator 'soundalike'",
            ("comparisons", 0, "comparator"),
        ),
        (
            {
                "comparisons": [
                    {
                        "name": "n",
                        "fields": ["name"],
                        "normalisers": ["lower"],
                        "comparator": "exact",
                    }
                ]
            },
            "unknown normaliser 'lower'",
            ("comparisons", 0, "normalisers", 0),
        ),
        (
            {"blocking": [{"name": "k", "parts": [{"field": "name", "normalisers": ["sundex"]}]}]},
            "unknown normaliser 'sundex'; did you mean 'soundex'?",
            ("blocking", 0, "parts", 0, "normalisers", 0),
        ),
        (
            {"blocking": [{"name": "k", "parts": ["name"]}, {"name": "k", "parts": ["email"]}]},
            "blocking key name 'k' is used twice",
            ("blocking", 1, "name"),
        ),
        (
            {"comparisons": [{"name": "n", "fields": ["a..b"], "comparator": "exact"}]},
            "invalid field path 'a..b'",
            ("comparisons", 0, "fields", 0),
        ),
    ],
)
def test_mistakes_are_config_errors(
    changes: dict[str, Any], message: str, loc: tuple[str | int, ...]
) -> None:
    with pytest.raises(ConfigError) as caught:
        Matcher(config(**changes))
    assert caught.value.message.startswith(message)
    assert caught.value.loc == loc


def test_weight_scale_allows_any_numbers() -> None:
    matcher = Matcher(config(thresholds={"link": 12, "review": 4, "scale": "weight"}))
    assert matcher.config.thresholds.scale == "weight"


def test_shape_mistakes_are_validation_errors() -> None:
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        config(matchng={})
    with pytest.raises(ValidationError, match="String should match pattern"):
        config(blocking=[{"name": "Bad Name", "parts": ["name"]}])
    with pytest.raises(ValidationError, match="at least 1 item"):
        config(comparisons=[])
