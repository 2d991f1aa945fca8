"""Incremental matching inside ingest: a new record meets the golden records it may duplicate.

For a record that neither its xref nor a natural key identifies, the persisted candidate index
(``match_keys``: every golden record's blocking keys) names the golden records sharing a key;
each is scored against the record. At or above the auto-link threshold the record joins the
best one (its values then merge under ownership and survivorship like any second source);
between the thresholds it gets its own golden record and a review entry; below, its own
golden record. Every decision is stored with its explanation, in the chunk's transaction.

A record whose blocks hold more than ``max_candidates`` golden records is scored against the
best-ranked of them only (``blocking.select``); only those are loaded from the store. Its
decisions then say how many were found, how many scored, and where the cut fell.
"""

from __future__ import annotations

from collections.abc import Sequence

from mastersync.domain.golden import GoldenRecord
from mastersync.domain.ingest import Incoming, Outcome, RecordResult
from mastersync.domain.landscape.policy import DomainPolicy
from mastersync.domain.ledger import Ledger
from mastersync.domain.matching import Decision, Matcher, MatchResult
from mastersync.domain.matching.blocking import Candidates, select
from mastersync.domain.matching.compiled import Prepared
from mastersync.domain.matching.records import DecisionStatus, MatchDecision
from mastersync.pipeline.matching.models import compiled, use_model
from mastersync.ports.matching import MatchChanges
from mastersync.ports.store import UnitOfWork

# Review entries one record may open (its best candidates in the review band).
MAX_REVIEWS = 5
_STATUS = {
    Decision.LINK: DecisionStatus.LINKED,
    Decision.REVIEW: DecisionStatus.OPEN,
    Decision.DISTINCT: DecisionStatus.DISTINCT,
}


class Linker:
    """Matches one chunk's new records and keeps the candidate index current."""

    def __init__(self, uow: UnitOfWork, policy: DomainPolicy, ledger: Ledger, now: str):
        assert policy.matching is not None
        self.domain = policy.spec.name
        self.matcher = Matcher(policy.matching, compiled=compiled(policy.matching))
        # Which model scores, read when a record first has candidates to score: a chunk
        # that only changes known records (most pushes) needs the blocking keys alone.
        self._uow = uow
        self._model: str | None = None
        self.ledger, self.now = ledger, now
        self.changes = MatchChanges()
        # Blocking key -> master ids: from the store, then as this chunk changes records.
        self._index: dict[str, set[str]] = {}
        self.skipped = 0
        # Candidates the last match() scored, and what max_candidates cut of its candidates.
        self.candidates_scored = 0
        self.selected = Candidates([], 0, self.matcher.config.max_candidates)
        # The scores of the record being processed, until its outcome is known.
        self._pending: list[MatchResult] = []
        # Golden records prepared for comparison, by master id and version: a candidate of
        # many records in the chunk is normalised once.
        self._prepared: dict[str, tuple[int, Prepared]] = {}
        # The blocking keys of the chunk's new records, computed once in load().
        self._keys: dict[tuple[str, str], list[str]] = {}

    def load(self, uow: UnitOfWork, records: Sequence[Incoming]) -> None:
        """Fetch the candidates of the chunk's new records and load their golden records."""
        block_keys = self.matcher.compiled.block_keys
        self._keys = {(r.system, r.key): block_keys(r.values) for r in records}
        keys = {k for found in self._keys.values() for k in found}
        if not keys:
            return
        found, self.skipped = uow.match_candidates(
            self.domain, keys, self.matcher.config.max_block_size
        )
        for key, masters in found.items():
            self._index.setdefault(key, set()).update(masters)
        # Only the golden records some record will score: its best max_candidates.
        cap = self.matcher.config.max_candidates
        index = self._index
        wanted: set[str] = set()
        for record_keys in self._keys.values():
            blocks = [index[k] for k in dict.fromkeys(record_keys) if k in index]
            wanted.update(select(blocks, cap).ids)
        wanted -= set(self.ledger.golden)
        if wanted:
            golden, members = uow.load_golden(wanted)
            self.ledger.load_golden(golden, members)

    def match(self, record: Incoming) -> str | None:
        """The master id to link ``record`` to, or None for a new golden record."""
        compiled = self.matcher.compiled
        keys = self._keys.get((record.system, record.key))
        if keys is None:
            keys = compiled.block_keys(record.values)
        index, golden_of = self._index, self.ledger.golden

        def usable(master_id: str) -> bool:
            golden = golden_of.get(master_id)
            return golden is not None and golden.merged_into is None

        blocks = [index[k] for k in dict.fromkeys(keys) if k in index]
        self.selected = chosen = select(blocks, self.matcher.config.max_candidates, usable)
        ref = f"{record.system}:{record.key}"
        scored: list[tuple[float, str, Decision, Prepared]] = []
        mine = compiled.prepare(record.values) if chosen.ids else ()
        for master_id in chosen.ids:
            golden = golden_of[master_id]
            cached = self._prepared.get(master_id)
            if cached is None or cached[0] != golden.version:
                cached = self._prepared[master_id] = (
                    golden.version,
                    compiled.prepare(golden.attributes),
                )
            weight, _, decision = self._scorer().score_prepared(mine, cached[1])
            scored.append((-weight, master_id, decision, cached[1]))
        # Explanations only for what is stored: the best candidate, or every review candidate.
        scored.sort(key=lambda x: (x[0], x[1]))
        keep = [x for x in scored if x[2] is Decision.REVIEW][:MAX_REVIEWS]
        if scored and scored[0] not in keep:
            keep.insert(0, scored[0])
        self._pending = [self.matcher.compare_prepared(mine, p, ref, m) for _, m, _, p in keep]
        self.candidates_scored = len(scored)
        if scored and scored[0][2] is Decision.LINK:
            return scored[0][1]
        return None

    def _scorer(self) -> Matcher:
        """The matcher, with the domain's model loaded."""
        if self._model is None:
            self._model = use_model(self._uow, self.domain, self.matcher)
        return self.matcher

    @property
    def model(self) -> str:
        """Which model scored ("fitted at ...", or "starting")."""
        assert self._model is not None, "no record was scored"
        return self._model

    def settle(self, result: RecordResult, trace_id: str) -> None:
        """Store the decisions of the record just processed and re-index what it changed."""
        pending, self._pending = self._pending, []
        accepted = result.outcome is Outcome.ACCEPTED and result.master_id is not None
        if accepted and pending:
            assert result.master_id is not None
            best = pending[0]
            if best.decision is Decision.LINK:
                chosen = [best]
            elif best.decision is Decision.REVIEW:
                chosen = [r for r in pending if r.decision is Decision.REVIEW][:MAX_REVIEWS]
            else:
                chosen = [best]
            cut = self.selected.to_dict() if self.selected.cut else None
            for r in chosen:
                # A linked record has no golden record of its own: the pair is its source ref.
                left = r.left_id if r.decision is Decision.LINK else result.master_id
                self.changes.decisions.append(self._decision(r, left or "", trace_id, cut))
            result.detail["match"] = {
                "decision": best.decision.value,
                "candidate": best.right_id,
                "probability": best.probability,
                "weight": round(best.weight, 4),
                "candidates": self.candidates_scored,
                "model": self.model,
            }
            if cut is not None:
                # More candidates than max_candidates: which were scored, and which were not.
                result.detail["match"]["cut"] = cut
        if result.golden is not None:
            self.index(result.golden)

    def index(self, golden: GoldenRecord) -> None:
        """Re-key a changed golden record, in the store and in this chunk's view."""
        keys = [] if golden.merged_into else self.matcher.compiled.block_keys(golden.attributes)
        self.changes.keys[golden.master_id] = (self.domain, keys)
        for key in keys:
            self._index.setdefault(key, set()).add(golden.master_id)

    def _decision(
        self, r: MatchResult, left: str, trace_id: str, cut: dict[str, object] | None
    ) -> MatchDecision:
        explanation = {**r.to_dict(), "left_id": left, "model": self.model}
        if cut is not None:
            explanation["candidates"] = cut
        return MatchDecision(
            self.domain,
            left,
            r.right_id or "",
            r.weight,
            r.probability,
            r.decision.value,
            _STATUS[r.decision],
            "ingest",
            explanation,
            self.now,
            decided_at=self.now if r.decision is not Decision.REVIEW else None,
            decided_by="matcher" if r.decision is not Decision.REVIEW else None,
            trace_id=trace_id,
        )
