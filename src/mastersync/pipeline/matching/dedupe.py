"""Batch deduplication of a domain's backlog: fit on its own records, score, review, cluster."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from mastersync.domain.golden import GoldenRecord
from mastersync.domain.landscape.policy import CompiledLandscape
from mastersync.domain.matching import (
    DedupeReport,
    Matcher,
    MatchResult,
    Progress,
    ScoredPair,
    TooFewPairs,
)
from mastersync.domain.matching.compiled import Record
from mastersync.domain.matching.records import (
    SETTLED,
    DecisionStatus,
    MatchDecision,
    MergeRecord,
    pair_key,
)
from mastersync.domain.matching.reports import connected_components
from mastersync.domain.problems import ConfigError
from mastersync.pipeline.ids import new_id, utc_now
from mastersync.pipeline.matching.merging import merge_in
from mastersync.pipeline.matching.models import compiled, load_matcher
from mastersync.ports.matching import MatchChanges
from mastersync.ports.store import Store, UnitOfWork

_STATUS = {"link": DecisionStatus.LINKED, "review": DecisionStatus.OPEN}


@dataclass
class DedupeRun:
    """What a dedupe run found and did."""

    domain: str
    report: DedupeReport
    # Which weights scored: "fitted now", or the stored model and why it was not refitted.
    model: str
    # Pairs a steward had decided before, left as they were.
    known: int = 0
    new_reviews: int = 0
    # Clusters of auto-link pairs (stewards' rejections taken out), largest first.
    clusters: list[list[str]] = field(default_factory=list)
    merges: list[MergeRecord] = field(default_factory=list)
    # Clusters not merged because they hold a pair a steward rejected.
    held_back: list[list[str]] = field(default_factory=list)


def matching_config(landscape: CompiledLandscape, domain: str) -> Matcher:
    """An unfitted matcher of a domain, or a config error saying matching is off there."""
    policy = landscape.policies.get(domain)
    if policy is None:
        raise ConfigError(f"unknown domain {domain!r}")
    if policy.matching is None:
        raise ConfigError(
            f"domain {domain!r} does no matching (set domains.{domain}.matching in the landscape)",
            ("domains", domain, "matching"),
        )
    return Matcher(policy.matching, compiled=compiled(policy.matching))


def dedupe(
    store: Store,
    landscape: CompiledLandscape,
    domain: str,
    *,
    merge: bool = False,
    actor: str = "dedupe",
    progress: Progress | None = None,
    clock: Callable[[], str] = utc_now,
    ids: Callable[[str], str] = new_id,
) -> DedupeRun:
    """Fit weights by EM on the domain's golden records, then find, review and cluster pairs.

    The fitted model is stored for ingest (too few candidate pairs, or none: the weights it
    has score); the candidate index is rebuilt; pairs between the thresholds open review
    entries unless a steward decided them before; with ``merge``, each cluster of auto-link
    pairs in which a steward rejected no pair is merged into its oldest record, and a
    review entry naming a record merged away names its survivor instead.
    """
    matcher = matching_config(landscape, domain)
    with store.unit_of_work(write=False) as uow:
        golden = {g.master_id: g for g in uow.scan_golden(domain)}
    records = {m: g.attributes for m, g in golden.items()}
    try:
        report = matcher.dedupe(records, progress)
        model = "fitted now"
    except TooFewPairs as exc:
        # A small backlog: score with what ingest uses (an earlier fit, or starting weights).
        with store.unit_of_work(write=False) as uow:
            matcher, model = load_matcher(uow, domain, matcher.config)
        report = matcher.dedupe(records, progress)
        model = f"{model}; not refitted: {exc.message}"
    run = DedupeRun(domain, report, model)
    now = clock()
    with store.unit_of_work() as uow:
        if report.fit is not None:
            fit = report.fit.to_dict()
            parameters = fit.pop("parameters")
            uow.save_match_model(domain, parameters, fit, now)
        keys = matcher.compiled
        changes = MatchChanges(
            keys={m: (domain, keys.block_keys(attrs)) for m, attrs in records.items()}
        )
        pairs = [*report.links, *report.reviews]
        known = uow.decisions_between(domain, [(p.left, p.right) for p in pairs])
        rejected = {k for k, d in known.items() if d.status is DecisionStatus.REJECTED}
        position = {m: i for i, m in enumerate(records)}
        edges = [
            (position[p.left], position[p.right])
            for p in report.links
            if pair_key(p.left, p.right) not in rejected
        ]
        run.clusters = connected_components(list(records), edges)
        # Loser -> the record it was merged into by this run.
        survivor_of: dict[str, str] = {}
        if merge:
            # Two records of a cluster may be linked only through a third, so this run
            # never scored them: their stored decisions are read before any merge.
            inside = uow.decisions_between(domain, [p for c in run.clusters for p in _pairs(c)])
            rejected |= {k for k, d in inside.items() if d.status is DecisionStatus.REJECTED}
            for cluster in run.clusters:
                if any(p in rejected for p in _pairs(cluster)):
                    # Linked through a third record, but a steward said two of them differ.
                    run.held_back.append(cluster)
                    continue
                changes.decisions += _merge_cluster(
                    uow, landscape, matcher, golden, cluster, actor, now, ids, run
                )
                # merge_in indexed both sides as merged already.
                for merged in run.merges:
                    changes.keys.pop(merged.loser_id, None)
                    changes.keys.pop(merged.survivor_id, None)
                    survivor_of[merged.loser_id] = merged.survivor_id
        _reviews(uow, domain, matcher, records, pairs, known, survivor_of, changes, now, run)
        uow.write_matching(changes)
        uow.commit()
    return run


def _pairs(cluster: list[str]) -> list[tuple[str, str]]:
    """Every pair of a cluster's records, in stored order."""
    return [pair_key(x, y) for i, x in enumerate(cluster) for y in cluster[i + 1 :]]


def _reviews(
    uow: UnitOfWork,
    domain: str,
    matcher: Matcher,
    records: Mapping[str, Record],
    pairs: list[ScoredPair],
    known: dict[tuple[str, str], MatchDecision],
    survivor_of: dict[str, str],
    changes: MatchChanges,
    now: str,
    run: DedupeRun,
) -> None:
    """Open review entries for pairs between the thresholds no one decided yet.

    A pair one of whose records this run merged away is asked about its survivor instead
    (an entry naming a retired record could never be accepted), scored on the survivor as
    the merge left it; a pair whose records are now one record is not asked at all.
    """
    moved: dict[tuple[str, str], tuple[str, str]] = {}
    for pair in pairs:
        key = pair_key(pair.left, pair.right)
        stored = known.get(key)
        if stored is not None and stored.status in {*SETTLED, DecisionStatus.OPEN}:
            run.known += 1
            continue
        if pair.decision.value != "review":
            continue
        left, right = survivor_of.get(pair.left, pair.left), survivor_of.get(pair.right, pair.right)
        if left == right:
            # Merged into one record by this run: nothing left to ask.
            continue
        if (left, right) != (pair.left, pair.right):
            moved.setdefault(pair_key(left, right), (left, right))
            continue
        result = matcher.compare(records[left], records[right], left, right)
        changes.decisions.append(_decision(domain, result, now))
        run.new_reviews += 1
    # A survivors' pair this run scored itself was dealt with above.
    scored = {pair_key(p.left, p.right) for p in pairs}
    wanted = [k for k in moved if k not in scored]
    if not wanted:
        return
    # The survivors as merged: their stored decisions, and their values now.
    decided = uow.decisions_between(domain, wanted)
    live, _ = uow.load_golden(sorted({m for k in wanted for m in k}))
    values = {g.master_id: g.attributes for g in live}
    for key in wanted:
        stored = decided.get(key)
        if stored is not None and stored.status in {*SETTLED, DecisionStatus.OPEN}:
            run.known += 1
            continue
        left, right = moved[key]
        result = matcher.compare(values[left], values[right], left, right)
        if result.decision.value == "distinct":
            # The merged survivor no longer resembles the other record enough to ask.
            continue
        decision = _decision(domain, result, now)
        # Not merged by this run, so a steward decides, whatever the new score says.
        decision.status = DecisionStatus.OPEN
        changes.decisions.append(decision)
        run.new_reviews += 1


def _merge_cluster(
    uow: UnitOfWork,
    landscape: CompiledLandscape,
    matcher: Matcher,
    golden: dict[str, GoldenRecord],
    cluster: list[str],
    actor: str,
    now: str,
    ids: Callable[[str], str],
    run: DedupeRun,
) -> list[MatchDecision]:
    """Merge a cluster into its oldest record (its id stays the one people know)."""
    survivor = min(cluster, key=lambda m: (golden[m].created_at, m))
    out = []
    for loser in sorted(m for m in cluster if m != survivor):
        result = matcher.compare(
            golden[survivor].attributes, golden[loser].attributes, survivor, loser
        )
        reason = f"dedupe: p={result.probability:.4f}"
        merge = merge_in(
            uow, landscape, survivor, loser, actor=actor, reason=reason, now=now, ids=ids
        )
        run.merges.append(merge)
        decision = _decision(run.domain, result, now)
        decision.status, decision.decided_at, decision.decided_by = (
            DecisionStatus.LINKED,
            now,
            actor,
        )
        out.append(decision)
    return out


def _decision(domain: str, result: MatchResult, now: str) -> MatchDecision:
    return MatchDecision(
        domain,
        result.left_id or "",
        result.right_id or "",
        result.weight,
        result.probability,
        result.decision.value,
        _STATUS.get(result.decision.value, DecisionStatus.DISTINCT),
        "dedupe",
        result.to_dict(),
        now,
    )
