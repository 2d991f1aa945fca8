"""Steward review of possible duplicates, and explanations of any two records."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from mastersync.domain.canonical import DOMAINS
from mastersync.domain.landscape.policy import CompiledLandscape
from mastersync.domain.matching import Matcher, MatchResult
from mastersync.domain.matching.blocking import key_name, ranked
from mastersync.domain.matching.compiled import Record
from mastersync.domain.matching.records import DecisionStatus, MatchDecision, MergeRecord
from mastersync.domain.problems import ConfigError
from mastersync.domain.words import a_or_an
from mastersync.pipeline.ids import new_id, utc_now
from mastersync.pipeline.matching.merging import merge_in
from mastersync.pipeline.matching.models import load_matcher
from mastersync.pipeline.queries import NotFound, live_record
from mastersync.ports.matching import DecisionFilter, MatchChanges
from mastersync.ports.store import Store, UnitOfWork


class ReviewError(ValueError):
    """A review action that cannot be taken (the entry is settled, or names no golden record)."""


def open_reviews(store: Store, domain: str | None = None, limit: int = 50) -> list[MatchDecision]:
    """Open review entries, newest first."""
    with store.unit_of_work(write=False) as uow:
        return uow.match_decisions(DecisionFilter(DecisionStatus.OPEN, domain, limit))


def review_entry(store: Store, decision_id: int) -> MatchDecision:
    """One review entry (any status)."""
    with store.unit_of_work(write=False) as uow:
        found = uow.match_decision(decision_id)
    if found is None:
        raise NotFound(f"no review entry {decision_id}")
    return found


def _open(uow: UnitOfWork, decision_id: int) -> MatchDecision:
    found = uow.match_decision(decision_id)
    if found is None:
        raise NotFound(f"no review entry {decision_id}")
    if found.status is not DecisionStatus.OPEN:
        by = f" by {found.decided_by}" if found.decided_by else ""
        raise ReviewError(
            f"review entry {decision_id} is {found.status.value} already{by}: "
            "a pair is decided once"
        )
    return found


def accept(
    store: Store,
    landscape: CompiledLandscape,
    decision_id: int,
    *,
    actor: str,
    note: str | None = None,
    clock: Callable[[], str] = utc_now,
    ids: Callable[[str], str] = new_id,
) -> MergeRecord:
    """The two records are one: merge the newer into the older, and remember the decision."""
    now = clock()
    with store.unit_of_work() as uow:
        decision = _open(uow, decision_id)
        # An entry opened before a merge names the merged-away record: its survivor now.
        left, right = live_record(uow, decision.left_id), live_record(uow, decision.right_id)
        if left is None or right is None:
            raise ReviewError(
                f"review entry {decision_id} does not name two golden records "
                f"({decision.left_id}, {decision.right_id})"
            )
        if left.master_id == right.master_id:
            raise ReviewError(
                f"review entry {decision_id}: {decision.left_id} and {decision.right_id} "
                f"were merged into one record ({left.master_id}) already"
            )
        survivor, loser = sorted([left, right], key=lambda g: (g.created_at, g.master_id))
        merge = merge_in(
            uow,
            landscape,
            survivor.master_id,
            loser.master_id,
            actor=actor,
            reason=note or f"review {decision_id}",
            now=now,
            ids=ids,
        )
        _settle(uow, decision, DecisionStatus.ACCEPTED, actor, note, now)
        uow.commit()
    return merge


def reject(
    store: Store,
    decision_id: int,
    *,
    actor: str,
    note: str | None = None,
    clock: Callable[[], str] = utc_now,
) -> MatchDecision:
    """The two records differ: remember it, so the pair is never asked again."""
    with store.unit_of_work() as uow:
        decision = _open(uow, decision_id)
        _settle(uow, decision, DecisionStatus.REJECTED, actor, note, clock())
        uow.commit()
    return decision


def _settle(
    uow: UnitOfWork,
    decision: MatchDecision,
    status: DecisionStatus,
    actor: str,
    note: str | None,
    now: str,
) -> None:
    decision.status, decision.decided_by, decision.decided_at = status, actor, now
    decision.note = note
    uow.write_matching(MatchChanges(decisions=[decision]))


def _values(
    uow: UnitOfWork, landscape: CompiledLandscape, ref: str, domain: str | None
) -> tuple[str, dict[str, object]]:
    """(domain, values) of a master id (its golden record) or system:key (the source record)."""
    prefixes = {spec.id_prefix: name for name, spec in DOMAINS.items()}
    prefix = ref.split("_", 1)[0]
    if prefix in prefixes and ":" not in ref:
        golden = uow.golden(ref)
        if golden is None:
            raise NotFound(f"no golden record {ref}")
        return golden.domain, golden.attributes
    if ":" not in ref:
        raise NotFound(f"{ref!r} is neither a master id (cus_..., itm_...) nor system:key")
    system, key = ref.split(":", 1)
    domains = [domain] if domain else [d for d, p in landscape.policies.items() if p.matching]
    for d in domains:
        found = uow.load_xrefs(d, [(system, key)])
        if found:
            return d, dict(found[0].values)
    raise NotFound(f"no source record {system}:{key} in {', '.join(domains)}")


def explain(
    store: Store, landscape: CompiledLandscape, a: str, b: str, domain: str | None = None
) -> tuple[MatchResult, str]:
    """Score two records as ingest would, with the domain's model; (result, model used).

    The result's ``blocking`` says whether ingest would compare them at all, as the candidate
    index stands now: the blocking keys they share, and where a golden record ranks among the
    other record's candidates against ``max_block_size`` and ``max_candidates``.
    """
    with store.unit_of_work(write=False) as uow:
        left_domain, left = _values(uow, landscape, a, domain)
        right_domain, right = _values(uow, landscape, b, domain)
        if left_domain != right_domain:
            raise ReviewError(
                f"{a} is {a_or_an(left_domain)}, {b} {a_or_an(right_domain)}: nothing to compare"
            )
        config = landscape.policies[left_domain].matching
        if config is None:
            raise ConfigError(
                f"domain {left_domain!r} does no matching", ("domains", left_domain, "matching")
            )
        matcher, model = load_matcher(uow, left_domain, config)
        # Ingest scores a new record against golden records: a master id is the candidate.
        if _is_master(b) or not _is_master(a):
            note = _blocking(uow, matcher, left_domain, (a, left), (b, right))
        else:
            note = _blocking(uow, matcher, left_domain, (b, right), (a, left))
    return replace(matcher.compare(left, right, a, b), blocking=note), model


def _is_master(ref: str) -> bool:
    prefixes = {spec.id_prefix for spec in DOMAINS.values()}
    return ":" not in ref and ref.split("_", 1)[0] in prefixes


def _blocking(
    uow: UnitOfWork,
    matcher: Matcher,
    domain: str,
    record: tuple[str, Record],
    candidate: tuple[str, Record],
) -> dict[str, Any]:
    """Whether ingest would score ``candidate`` (a golden record) for ``record``, and why."""
    (ref, values), (other, other_values) = record, candidate
    config, compiled = matcher.config, matcher.compiled
    keys = list(dict.fromkeys(compiled.block_keys(values)))
    theirs = set(compiled.block_keys(other_values))
    shared = sorted({key_name(k) for k in keys if k in theirs})
    note: dict[str, Any] = {"shared_keys": shared, "compared": False}
    if not shared:
        note["why"] = "they share no blocking key: ingest never compares them"
        return note
    names = ", ".join(shared)
    if not _is_master(other):
        note["compared"] = None
        note["why"] = f"they share {names}; only a golden record is a candidate in ingest"
        return note
    # Every block of the record, however large (an explanation is a one-off).
    found, _ = uow.match_candidates(domain, keys, 2**62)
    blocks = [set(found[k]) for k in keys if k in found]
    small = [b for b in blocks if len(b) <= config.max_block_size]
    exclude = ref if _is_master(ref) else None
    order = ranked(small, exclude)
    position = next((i for i, r in enumerate(order) if r.id == other), None)
    cap = config.max_candidates
    note.update(candidates=len(order), max_candidates=cap, max_block_size=config.max_block_size)
    if position is None:
        if any(other in b for b in blocks):
            note["why"] = (
                f"they share {names}, but every shared block holds more than max_block_size "
                f"({config.max_block_size}) records: skipped, never compared"
            )
        else:
            note["why"] = f"they share {names}, but {other} is not in the candidate index"
        return note
    rank = order[position]
    note.update(rank=position + 1, cut_at=order[cap - 1].to_dict() if len(order) > cap else None)
    where = (
        f"{other} ranks {position + 1} of {len(order)} candidates of {ref} "
        f"({_keys(rank.shared_keys)} shared, smallest shared block {rank.block_size})"
    )
    if position < cap:
        note["compared"] = True
        note["why"] = f"they share {names}; {where}: within max_candidates ({cap}), compared"
    else:
        last = order[cap - 1]
        note["why"] = (
            f"they share {names}; {where}: over max_candidates ({cap}), not compared (the "
            f"last compared shares {_keys(last.shared_keys)}, smallest block {last.block_size})"
        )
    return note


def _keys(n: int) -> str:
    return f"{n} key" if n == 1 else f"{n} keys"
