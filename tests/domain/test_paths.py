"""Source paths and conditions read exactly as JMESPath reads them, fast path or not."""

from __future__ import annotations

import json
from typing import Any

import jmespath
from hypothesis import example, given
from hypothesis import strategies as st

from mastersync.domain.mapping.paths import (
    MISSING,
    compile_condition,
    compile_path,
    is_simple_path,
)

# Any key a source may use: quotes, backslashes, dots, spaces, accents (no lone surrogates,
# which no JSON document carries).
_KEYS = st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=8)
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=3),
    lambda inner: (
        st.lists(inner, max_size=2) | st.dictionaries(st.text(max_size=2), inner, max_size=2)
    ),
    max_leaves=4,
)


@given(st.lists(_KEYS, min_size=1, max_size=3), _JSON, st.booleans(), st.booleans())
def test_a_quoted_dotted_path_reads_what_jmespath_reads(
    keys: list[str], leaf: Any, ascii_only: bool, present: bool
) -> None:
    path = ".".join(json.dumps(k, ensure_ascii=ascii_only) for k in keys)
    record: Any = leaf
    for key in reversed(keys):
        record = {key: record}
    if not present:
        record = {"elsewhere": record}
    assert is_simple_path(path)  # read without the JMESPath interpreter
    got = compile_path(path)(record)
    assert (None if got is MISSING else got) == jmespath.search(path, record)


def test_plain_and_escaped_keys() -> None:
    record = {"a\\b": 1, 'say "hi"': {"x": 2}, "Artikel Nr.": "A-7"}
    assert compile_path('"a\\\\b"')(record) == 1
    assert compile_path('"say \\"hi\\"".x')(record) == 2
    assert compile_path('"Artikel Nr."')(record) == "A-7"
    assert compile_path('"Artikel Nr.".x')(record) is MISSING


@given(_JSON)
@example(0)
@example(0.0)
@example(False)
@example([0])
def test_a_condition_holds_exactly_when_the_value_is_jmespath_true(value: Any) -> None:
    expected = jmespath.search("a && `true`", {"a": value}) is True
    assert compile_condition("a")({"a": value}) is expected


def test_zero_is_true_and_empty_things_are_false_as_in_jmespath() -> None:
    holds = compile_condition("on_hand")
    assert holds({"on_hand": 0}) and holds({"on_hand": 0.0}) and holds({"on_hand": "0"})
    assert not any(holds({"on_hand": v}) for v in (None, False, "", [], {}))
    assert not holds({})
