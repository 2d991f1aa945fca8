"""Payload hygiene before storage: what no JSON column can hold is made storable."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import given
from hypothesis import strategies as st

from mastersync.domain.validation import digest, is_storable, serialised, storable

_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=False)
    | st.text(st.characters(), max_size=4),  # lone surrogates included
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(st.characters(), max_size=3), inner, max_size=3)
    ),
    max_leaves=8,
)


def _plain(value: Any) -> bool:
    try:
        orjson.dumps(value)
    except TypeError:
        return False
    return True


@given(_VALUES)
def test_whatever_a_source_sends_can_be_stored_and_what_could_is_kept(value: Any) -> None:
    made = storable(value)
    assert is_storable(serialised(made))  # never raises, and holds no NUL
    if _plain(value) and is_storable(serialised(value)):
        assert made == value


def test_big_integers_keep_their_digits_and_lone_surrogates_are_replaced() -> None:
    payload = {"id": 2**70, "name": "Pen\ud800", "ok": [1, -(2**63)], "k\x00": "a\x00"}
    assert storable(payload) == {
        "id": str(2**70),
        "name": "Pen\ufffd",
        "ok": [1, -(2**63)],
        "k\ufffd": "a\ufffd",
    }
    assert digest(storable(payload)) == digest(storable(payload))


def test_text_over_its_length_is_counted_in_characters() -> None:
    """Text is normalised before its length is checked, and pydantic said "at most 200
    items", followed by the whole text."""
    from mastersync.domain.canonical import DOMAINS
    from mastersync.domain.validation import validate

    _, [problem] = validate(DOMAINS["item"], {"sku": "A1", "name": "é" * 201})
    assert (problem.field, problem.rule) == ("name", "too_long")
    assert problem.message == "text should have at most 200 characters, not 201"
