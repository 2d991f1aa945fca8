"""Properties of merge: arrival order never matters, stale changes never alter a golden record,
an owned field only ever holds its owner's value."""

from __future__ import annotations

import itertools
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from mastersync.domain.ingest import Context, Incoming, Outcome, process
from mastersync.domain.landscape.policy import DomainPolicy
from mastersync.domain.ledger import Ledger
from mastersync.domain.validation import digest
from tests.support import compiled

GTIN = "04006381333931"
# No golden-level required rule: with one, whether a record is accepted depends on what
# arrived before it, which is the point of the rule, not of merging.
POLICY: DomainPolicy = compiled(
    domains={
        "item": {
            "natural_keys": [["gtin"]],
            "ownership": {
                "name": ["erp"],
                "list_price": ["erp"],
                "description": ["pim", "erp"],
                "net_weight_kg": ["wms"],
            },
            "survivorship": {"brand": {"rule": "most_recent"}},
        }
    }
).policies["item"]
KEYS = {"erp": ["E1", "E2"], "pim": ["P1"], "wms": ["W1"]}

texts = st.sampled_from(["a", "b", "c", "Ünïcode", ""])
numbers = st.sampled_from(["1", "2.5", "10"])


@st.composite
def changes(draw: st.DrawFn) -> tuple[str, str, int, str, dict[str, Any]]:
    """One source change: (system, key, version, timestamp, values)."""
    system = draw(st.sampled_from(sorted(KEYS)))
    key = draw(st.sampled_from(KEYS[system]))
    version = draw(st.integers(1, 6))
    fields = {
        "name": texts,
        "description": texts,
        "brand": texts,
        "list_price": numbers,
        "net_weight_kg": numbers,
    }
    chosen = draw(st.lists(st.sampled_from(sorted(fields)), unique=True, max_size=5))
    values = {f: draw(fields[f]) for f in chosen}
    values = {k: v for k, v in values.items() if v != ""}
    values["gtin"] = GTIN
    # The timestamp is the source's own: it moves with the version, never with arrival.
    stamp = f"2026-01-0{version}T00:00:00.000000Z"
    return system, key, version, stamp, values


def run(events: list[tuple[str, str, int, str, dict[str, Any]]]) -> tuple[Ledger, list[Any]]:
    ledger = Ledger()
    ids = itertools.count()
    results = []
    for system, key, version, stamp, values in events:
        rec = Incoming(system, "item", key, version, stamp, values, digest(values))
        ctx = Context("now", "t", "r", lambda p: f"{p}_{next(ids)}")
        result = process(ledger, POLICY, rec, ctx)
        if result.contribution is not None:
            ledger.put(result.contribution, result.golden, result.keys)
        results.append(result)
    return ledger, results


def distinct_versions(events: list[Any]) -> list[Any]:
    """At most one change per (system, key, version): the same version means the same change."""
    seen: dict[tuple[str, str, int], Any] = {}
    for e in events:
        seen.setdefault((e[0], e[1], e[2]), e)
    return list(seen.values())


def golden_state(ledger: Ledger) -> list[dict[str, Any]]:
    return [g.attributes for g in ledger.golden.values()]


@settings(max_examples=300, deadline=None)
@given(st.lists(changes(), min_size=1, max_size=12).map(distinct_versions), st.randoms())
def test_merge_is_independent_of_arrival_order(events: list[Any], rnd: Any) -> None:
    shuffled = list(events)
    rnd.shuffle(shuffled)
    assert golden_state(run(events)[0]) == golden_state(run(shuffled)[0])


@settings(max_examples=300, deadline=None)
@given(st.lists(changes(), min_size=1, max_size=10).map(distinct_versions), changes())
def test_a_stale_change_never_alters_a_golden_record(events: list[Any], late: Any) -> None:
    ledger, _ = run(events)
    system, key, _, _, values = late
    applied = ledger.xrefs.get(("item", system, key))
    if applied is None or not isinstance(applied.version, int) or applied.version <= 1:
        return
    before = {m: (g.version, dict(g.attributes)) for m, g in ledger.golden.items()}
    old = applied.version - 1
    rec = Incoming(
        system, "item", key, old, f"2026-01-0{old}T00:00:00.000000Z", values, digest(values)
    )
    result = process(ledger, POLICY, rec, Context("now", "t", "r", lambda p: p))
    assert result.outcome is Outcome.STALE
    assert result.golden is None
    assert result.contribution is None
    assert result.event is None
    assert {m: (g.version, g.attributes) for m, g in ledger.golden.items()} == before


@settings(max_examples=300, deadline=None)
@given(st.lists(changes(), min_size=1, max_size=12).map(distinct_versions))
def test_an_owned_field_only_ever_takes_its_owners_value(events: list[Any]) -> None:
    ledger, _ = run(events)
    for golden in ledger.golden.values():
        members = ledger.member_list(golden.master_id)
        for field, policy in POLICY.fields.items():
            if not policy.owners or field not in golden.attributes:
                continue
            owner_values = [m.values.get(field) for m in members if m.system in policy.owners]
            assert golden.attributes[field] in owner_values
            assert golden.provenance[field]["system"] in policy.owners


@settings(max_examples=200, deadline=None)
@given(st.lists(changes(), min_size=1, max_size=12).map(distinct_versions))
def test_every_golden_version_has_exactly_one_event(events: list[Any]) -> None:
    ledger, results = run(events)
    for master, golden in ledger.golden.items():
        versions = [r.event.version for r in results if r.event and r.event.master_id == master]
        assert versions == list(range(1, golden.version + 1))
