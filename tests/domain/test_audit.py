"""The audit log's canonical JSON: the fast path spells every value exactly as the
standard library did when existing chains were hashed."""

from __future__ import annotations

import datetime as dt
import json
import random
import uuid
from decimal import Decimal
from enum import Enum, IntEnum, StrEnum
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mastersync.domain.governance.audit import AuditEntry, canonical_json, verify_chain


def reference(value: Any) -> str:
    """The spelling existing chains were hashed with (canonical_json before orjson)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def _code_points() -> list[str]:
    return [chr(cp) for cp in range(0x110000) if not 0xD800 <= cp <= 0xDFFF]


def test_every_code_point_is_escaped_as_before_in_values_and_keys() -> None:
    chars = _code_points()
    for start in range(0, len(chars), 4096):
        block = chars[start : start + 4096]
        text = "".join(block)
        assert canonical_json(text) == reference(text)
        assert canonical_json([text, {"k": text}]) == reference([text, {"k": text}])
        shuffled = block[:]
        random.Random(start).shuffle(shuffled)
        # Keys are sorted by code point, as sorted() does.
        keys = {c: i for i, c in enumerate(shuffled)}
        assert canonical_json(keys) == reference(keys)


class Colour(Enum):
    RED = "red"


class Size(StrEnum):
    XL = "xl"


class Rank(IntEnum):
    ONE = 1


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        0,
        -(2**63),
        2**64 - 1,
        2**64,
        -(2**63) - 1,
        2**70,
        "",
        "plain",
        0.1,
        1e-05,
        2.5e-07,
        1e16,
        float("nan"),
        float("inf"),
        -0.0,
        Decimal("2.50"),
        dt.datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=dt.UTC),
        dt.date(2026, 1, 2),
        uuid.UUID(int=12345),
        Colour.RED,
        Size.XL,
        Rank.ONE,
        {"b": 1, "a": [1, "x", None, False]},
        {"n": {"before": 1.5, "after": 2}},
        {1: "int key", 2: "another"},
        {None: 1},
        {Size.XL: 1},
        ("a", 1),
        [[[[]]]],
        {"lone": "\ud800"},
        {"deep": json.loads("[" * 300 + "]" * 300)},
    ],
    ids=repr,
)
def test_values_beyond_plain_json_keep_their_old_spelling(value: Any) -> None:
    assert canonical_json(value) == reference(value)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_any_json_value_is_spelled_as_before(value: Any) -> None:
    assert canonical_json(value) == reference(value)


def _entry(changes: dict[str, Any]) -> AuditEntry:
    return AuditEntry(
        7,
        "2026-01-02T03:04:05.000006Z",
        "itm_01",
        "item",
        3,
        "updated",
        "system:erp",
        "ingest:api",
        "trace-1",
        canonical_json(changes),
        "ab" * 32,
    ).seal()


def test_hashes_of_entries_are_those_the_chain_was_built_with() -> None:
    # Hashes computed with the json.dumps-only canonical_json: chains already stored verify.
    plain = _entry(
        {
            "name": {"before": None, "after": 'Würth "XL" \u2028 Ærø\\ \x01 tab\t'},
            "list_price": {"before": "2.5", "after": "2.50"},
            "channels": {"before": ["b2b"], "after": ["b2b", "shop"]},
            "lot_control": {"before": False, "after": True},
            "shelf_life_days": {"before": None, "after": 9007199254740993},
        }
    )
    assert plain.hash == "9a99f7b954a69ef58bf421b4662e603e22929efd91f631b7cd096cd8739a5385"
    mixed = _entry(
        {
            "name": {"before": None, "after": 'Würth "XL" \u2028 tab\t'},
            "list_price": {"before": "2.5", "after": "2.50"},
            "weight": {"before": 1e-05, "after": 12},
        }
    )
    assert mixed.hash == "caa2237fe8c408c6d8030756183babd882067b480d26d0320f7108c2995fa932"
    assert verify_chain([plain], start=(6, "ab" * 32)) == []
