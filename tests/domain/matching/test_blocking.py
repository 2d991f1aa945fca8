"""Blocking: the union of keys, block caps, and the incremental index."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from mastersync.domain.matching import MatchConfig, Matcher, MatchIndex
from mastersync.domain.matching.blocking import Rank, block, select
from mastersync.domain.matching.compiled import CompiledConfig, compile_config

KEYS: list[dict[str, Any]] = [
    {
        "name": "postcode",
        "parts": [{"field": "addresses.postal_code", "normalisers": ["postal_code"]}],
    },
    {"name": "phone", "parts": [{"field": "phone", "normalisers": ["phone", "last(7)"]}]},
    {
        "name": "name_city",
        "parts": [
            {"field": "name", "normalisers": ["legal_form", "soundex"]},
            {"field": "addresses.city", "normalisers": ["text"]},
        ],
    },
]


def compiled(keys: list[dict[str, Any]], max_block: int = 1_000) -> CompiledConfig:
    return compile_config(
        MatchConfig.model_validate(
            {
                "comparisons": [{"name": "name", "fields": ["name"], "comparator": "exact"}],
                "blocking": keys,
                "max_block_size": max_block,
            }
        )
    )


def pairs(
    config: CompiledConfig, records: list[dict[str, Any]], split: int | None = None
) -> set[tuple[int, int]]:
    result = block(config, [config.block_keys(r) for r in records], split)
    return {result.pair(code) for code in result.codes}


def rec(name: str, postcode: str | None, city: str, phone: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "country": "DE", "addresses": [{"city": city}]}
    if postcode:
        out["addresses"][0]["postal_code"] = postcode
    if phone:
        out["phone"] = phone
    return out


RECORDS = [
    rec("Acme GmbH", "10115", "Berlin", "030 1234567"),
    rec("ACME AG", "101 15", "Berlin", None),  # postcode spelt apart: same key
    rec("Akme GmbH", None, "Berlin", "+49 30 1234567"),  # soundex + city, and phone
    rec("Zenith Ltd", "80331", "München", None),
    rec("Other GmbH", "80331", "Hamburg", None),
]


def test_keys_are_tagged_and_normalised() -> None:
    config = compiled(KEYS)
    assert config.block_keys(RECORDS[0]) == [
        "postcode:10115",
        "phone:1234567",
        "name_city:A250\x1fberlin",
    ]
    # No phone: no key of that definition.
    assert config.block_keys(RECORDS[3]) == ["postcode:80331", "name_city:Z530\x1fmunchen"]
    # A part without a value (no postcode) gives no key of its definition either.
    assert config.block_keys(RECORDS[2]) == ["phone:1234567", "name_city:A250\x1fberlin"]


def test_union_of_keys() -> None:
    config = compiled(KEYS)
    assert pairs(config, RECORDS) == {(0, 1), (0, 2), (1, 2), (3, 4)}
    only_postcode = compiled(KEYS[:1])
    assert pairs(only_postcode, RECORDS) == {(0, 1), (3, 4)}


def test_link_mode_pairs_only_across() -> None:
    config = compiled(KEYS)
    # Left: records 0 and 1; right: 2, 3, 4.
    assert pairs(config, RECORDS, split=2) == {(0, 2), (1, 2)}


def test_capped_blocks_are_skipped_and_counted() -> None:
    config = compiled(KEYS[:1], max_block=2)
    same = [rec(f"N{i}", "10115", "Berlin", None) for i in range(4)]
    result = block(config, [config.block_keys(r) for r in [*same, RECORDS[3], RECORDS[4]]])
    assert [result.pair(c) for c in result.codes] == [(4, 5)]
    assert result.pairs_skipped == 6
    assert result.capped_blocks == {"postcode": 1}


def test_index_add_update_remove() -> None:
    index = MatchIndex(compiled(KEYS))
    for i, record in enumerate(RECORDS[:4]):
        index.add(f"R{i}", record)
    assert len(index) == 4
    assert "R0" in index
    assert index.candidates(RECORDS[0]) == ["R0", "R1", "R2"]
    assert index.candidates(RECORDS[0], exclude="R0") == ["R1", "R2"]
    assert index.candidates(RECORDS[4]) == ["R3"]
    # The customer moves: found under the new postcode, no longer under the old one.
    index.update("R1", rec("ACME AG", "80331", "München", None))
    assert index.candidates(RECORDS[0], exclude="R0") == ["R2"]
    assert index.candidates(RECORDS[4]) == ["R3", "R1"]
    assert index.remove("R3")
    assert not index.remove("R3")
    assert index.candidates(RECORDS[4]) == ["R1"]
    assert len(index) == 3


def test_index_skips_large_blocks() -> None:
    index = MatchIndex(compiled(KEYS[:1], max_block=3))
    for i in range(5):
        index.add(f"R{i}", rec(f"N{i}", "10115", "Berlin", None))
    assert index.candidates(rec("X", "10115", "Berlin", None)) == []
    assert index.skipped == 5
    index.remove("R0")
    index.remove("R1")
    assert index.candidates(rec("X", "10115", "Berlin", None)) == ["R2", "R3", "R4"]
    assert index.skipped == 0


def test_matcher_exposes_its_index() -> None:
    matcher = Matcher(
        MatchConfig.model_validate(
            {
                "comparisons": [{"name": "name", "fields": ["name"], "comparator": "exact"}],
                "blocking": KEYS,
            }
        )
    )
    matcher.index.add("A", RECORDS[0])
    assert matcher.candidates(RECORDS[1]) == ["A"]


names = st.sampled_from(["Acme", "Akme", "Zenith", "Zenit", "Müller", "Mueller", "Smith"])
postcodes = st.sampled_from(["10115", "10117", "80331", None])
cities = st.sampled_from(["Berlin", "München", "Paris"])
phones = st.sampled_from(["030 1234567", "+49 30 1234567", "040 7654321", None])
records = st.lists(st.builds(rec, names, postcodes, cities, phones), min_size=2, max_size=25)


@settings(max_examples=60, deadline=None)
@given(records, st.integers(min_value=0, max_value=25))
def test_several_keys_find_a_superset_of_each_key(
    generated: list[dict[str, Any]], split: int
) -> None:
    everything = pairs(compiled(KEYS), generated)
    found_by_each = set()
    for key in KEYS:
        alone = pairs(compiled([key]), generated)
        assert alone <= everything
        found_by_each |= alone
    # ... and nothing else: the union is exactly the pairs some key finds.
    assert everything == found_by_each
    # Linking never pairs two records of the same side.
    cut = min(split, len(generated))
    assert all(i < cut <= j for i, j in pairs(compiled(KEYS), generated, split=cut))


# -- max_candidates: a per-record cap on the candidates incremental matching scores ---------


def _reference(blocks: list[list[str]], exclude: str | None = None) -> list[str]:
    """Every candidate ranked one by one: most shared keys, smallest shared block, newest."""
    union = {m for b in blocks for m in b} - {exclude}
    sets = [set(b) for b in blocks]

    def rank(m: str) -> tuple[int, int]:
        holding = [len(s) for s in sets if m in s]
        return -len(holding), min(holding)

    return sorted(sorted(union, reverse=True), key=rank)


ids = st.sampled_from([f"M{i:02d}" for i in range(30)])
blocks_st = st.lists(st.lists(ids, min_size=1, max_size=20, unique=True), max_size=6)


@settings(max_examples=200, deadline=None)
@given(blocks_st, st.integers(min_value=1, max_value=40), st.one_of(st.none(), ids))
def test_within_the_cap_the_candidates_are_exactly_the_uncapped_ones(
    blocks: list[list[str]], cap: int, exclude: str | None
) -> None:
    uncapped = [m for m in dict.fromkeys(m for b in blocks for m in b) if m != exclude]
    chosen = select(blocks, cap, exclude=exclude)
    assert chosen.found == len(uncapped)
    if len(uncapped) <= cap:
        assert chosen.ids == uncapped  # same candidates, same (first-found) order
        assert (chosen.cut, chosen.cut_at) == (0, None)
    else:
        assert chosen.ids == _reference(blocks, exclude)[:cap]
        assert chosen.cut == len(uncapped) - cap
        assert chosen.cut_at is not None and chosen.cut_at.id == chosen.ids[-1]
        # The cut point tells every pair apart: kept ones rank at or before it, cut ones after.
        sets = [set(b) for b in blocks]
        for m in uncapped:
            holding = [len(s) for s in sets if m in s]
            rank = Rank(len(holding), min(holding), m)
            assert (m in chosen.ids) == (rank == chosen.cut_at or rank.before(chosen.cut_at))


@settings(max_examples=100, deadline=None)
@given(blocks_st, st.integers(min_value=1, max_value=40), st.sets(ids))
def test_unusable_candidates_take_no_place_under_the_cap(
    blocks: list[list[str]], cap: int, gone: set[str]
) -> None:
    chosen = select(blocks, cap, usable=lambda m: m not in gone)
    ranked = [m for m in _reference(blocks) if m not in gone]
    assert set(chosen.ids) == set(ranked[:cap])
    assert not set(chosen.ids) & gone


def test_the_cap_keeps_those_sharing_most_keys_then_the_rarest_then_the_newest() -> None:
    big = [f"M{i:02d}" for i in range(10)]
    small = ["M03", "S1", "S2"]
    chosen = select([big, small, ["M03", "M07"]], 4)
    # M03 shares three keys, M07 two; then the small block's rest, newest first.
    assert chosen.ids == ["M03", "M07", "S2", "S1"]
    assert (chosen.found, chosen.cut) == (12, 8)
    assert chosen.cut_at == Rank(1, 3, "S1")
    assert chosen.to_dict() == {
        "found": 12,
        "scored": 4,
        "max_candidates": 4,
        "cut": 8,
        "cut_at": {"shared_keys": 1, "block_size": 3, "id": "S1"},
    }
    # Within one block, newest (highest id) first.
    assert select([big], 3).ids == ["M09", "M08", "M07"]


def test_the_index_caps_candidates_and_says_what_it_cut() -> None:
    config = compile_config(
        MatchConfig.model_validate(
            {
                "comparisons": [{"name": "name", "fields": ["name"], "comparator": "exact"}],
                "blocking": KEYS,
                "max_candidates": 2,
            }
        )
    )
    index = MatchIndex(config)
    for i in range(5):
        index.add(f"R{i}", rec(f"N{i}", "10115", "Hamburg", None))
    # Shares postcode and phone: two keys, ahead of the newer ones sharing the postcode only.
    index.add("A", rec("Acme", "10115", "Berlin", "030 1234567"))
    assert index.candidates(RECORDS[0]) == ["A", "R4"]
    assert (index.last.found, index.last.cut) == (6, 4)
    assert index.candidates(RECORDS[0], exclude="A") == ["R4", "R3"]
    assert index.last.found == 5


def test_max_candidates_defaults_and_bounds() -> None:
    spec = {
        "comparisons": [{"name": "name", "fields": ["name"], "comparator": "exact"}],
        "blocking": KEYS,
    }
    assert MatchConfig.model_validate(spec).max_candidates == 50
    with pytest.raises(ValidationError):
        MatchConfig.model_validate({**spec, "max_candidates": 0})
