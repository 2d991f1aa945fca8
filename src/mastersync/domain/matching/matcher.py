"""The matcher: fit weights on the user's data, score pairs, deduplicate and link batches."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence

from mastersync.domain.matching.blocking import Blocked, MatchIndex, block
from mastersync.domain.matching.comparators import MISSING, MISSING_LABEL
from mastersync.domain.matching.compiled import CompiledConfig, Prepared, Record, compile_config
from mastersync.domain.matching.config import MatchConfig
from mastersync.domain.matching.estimation import (
    Parameters,
    Pattern,
    level_frequencies,
    refine_with_labels,
    run_em,
)
from mastersync.domain.matching.explain import ComparisonOutcome, Decision, MatchResult
from mastersync.domain.matching.reports import (
    DedupeReport,
    FitReport,
    Progress,
    ScoredPair,
    connected_components,
)
from mastersync.domain.problems import ConfigError

# How often (in pairs) long loops report progress.
_PROGRESS_EVERY = 20_000
# Weights beyond this many bits make 2**w overflow; the probability is 0 or 1 by then anyway.
_WEIGHT_CLIP = 1000.0

Score = tuple[float, float, Decision, int, str | None]


class NotFittedError(RuntimeError):
    """Scoring needs parameters: call fit() (or dedupe/link, which fit first) or pass them."""


def probability(weight: float) -> float:
    """Match probability of a total weight (log2 odds)."""
    clipped = max(-_WEIGHT_CLIP, min(_WEIGHT_CLIP, weight))
    return 1.0 / (1.0 + float(2.0**-clipped))


class Matcher:
    """Duplicate detection for one domain with explainable Fellegi-Sunter scores."""

    def __init__(
        self,
        config: MatchConfig,
        parameters: Parameters | None = None,
        compiled: CompiledConfig | None = None,
    ):
        self.config = config
        # A configuration compiled before (for this very config) is reused as it is.
        self.compiled: CompiledConfig = compiled or compile_config(config)
        self.index = MatchIndex(self.compiled)
        self._levels = [c.comparator.level for c in self.compiled.comparisons]
        self._parameters: Parameters | None = None
        self._weights: list[list[float]] = []
        self._scores: dict[Pattern, Score] = {}
        if parameters is not None:
            self.use(parameters)

    # -- parameters ----------------------------------------------------------------------

    @property
    def parameters(self) -> Parameters | None:
        """The fitted (or given) model, None before fitting."""
        return self._parameters

    def use(self, parameters: Parameters) -> None:
        """Score with these parameters (e.g. stored from an earlier fit)."""
        for c in self.compiled.comparisons:
            got = parameters.comparisons.get(c.name)
            if got is None or tuple(got.levels) != c.comparator.labels:
                raise ConfigError(
                    f"the parameters were fitted for another configuration: comparison "
                    f"{c.name!r} {'is missing' if got is None else 'has other levels'}; refit",
                    ("comparisons", c.name),
                )
        self._parameters = parameters
        # Index -1 (missing) reads the trailing 0.0.
        self._weights = [[*parameters.comparisons[n].weights(), 0.0] for n in self.compiled.names]
        self._scores = {}

    def _require(self) -> Parameters:
        if self._parameters is None:
            raise NotFittedError("the matcher has no parameters yet: call fit(records) first")
        return self._parameters

    # -- scoring -------------------------------------------------------------------------

    def _pattern(self, a: Prepared, b: Prepared) -> Pattern:
        return tuple([level(x, y) for level, x, y in zip(self._levels, a, b, strict=True)])

    def _score(self, pattern: Pattern) -> Score:
        cached = self._scores.get(pattern)
        if cached is not None:
            return cached
        params = self._require()
        weight = params.prior_weight + sum(
            w[lv] for w, lv in zip(self._weights, pattern, strict=True)
        )
        p = probability(weight)
        ignored = {i for i, n in enumerate(self.compiled.names) if params.comparisons[n].ignored}
        active = len(pattern) - len(ignored)
        missing = sum(1 for i, lv in enumerate(pattern) if lv == MISSING and i not in ignored)
        t = self.config.thresholds
        value = p if t.scale == "probability" else weight
        reason = None
        if value >= t.link:
            decision = Decision.LINK
            if active == 0 or missing / active > self.config.max_missing:
                decision = Decision.REVIEW
                reason = (
                    f"{missing} of {active} comparisons have a missing side: too sparse to "
                    f"auto-link (max_missing {self.config.max_missing:g})"
                )
        elif value >= t.review:
            decision = Decision.REVIEW
        else:
            decision = Decision.DISTINCT
        score = (weight, p, decision, missing, reason)
        self._scores[pattern] = score
        return score

    def _result(
        self, a: Prepared, b: Prepared, left_id: str | None, right_id: str | None
    ) -> MatchResult:
        params = self._require()
        pattern = self._pattern(a, b)
        weight, p, decision, missing, reason = self._score(pattern)
        outcomes = []
        for c, level, x, y, w in zip(
            self.compiled.comparisons, pattern, a, b, self._weights, strict=True
        ):
            label = MISSING_LABEL if level == MISSING else c.comparator.labels[level]
            outcomes.append(ComparisonOutcome(c.name, label, level, x, y, w[level]))
        return MatchResult(
            decision, p, weight, params.prior_weight, tuple(outcomes), missing, reason,
            left_id, right_id,
        )  # fmt: skip

    def compare(
        self, a: Record, b: Record, left_id: str | None = None, right_id: str | None = None
    ) -> MatchResult:
        """Score two records and explain the score."""
        return self._result(self.compiled.prepare(a), self.compiled.prepare(b), left_id, right_id)

    def score_prepared(self, a: Prepared, b: Prepared) -> tuple[float, float, Decision]:
        """(weight, probability, decision) of two prepared records, without the explanation."""
        weight, p, decision, _, _ = self._score(self._pattern(a, b))
        return weight, p, decision

    def compare_prepared(
        self, a: Prepared, b: Prepared, left_id: str | None = None, right_id: str | None = None
    ) -> MatchResult:
        """Score two records prepared before (``compiled.prepare``): one record against many."""
        return self._result(a, b, left_id, right_id)

    def candidates(self, record: Record, exclude: str | None = None) -> list[str]:
        """Ids in ``self.index`` sharing a blocking key with the record."""
        return self.index.candidates(record, exclude)

    def match(
        self,
        record: Record,
        lookup: Mapping[str, Record] | Callable[[str], Record | None],
        exclude: str | None = None,
    ) -> list[MatchResult]:
        """Score one record against its indexed candidates, best first (incremental matching).

        ``lookup`` gives a candidate's current values (a mapping, or a store read).
        """
        self._require()
        fetch = lookup.get if isinstance(lookup, Mapping) else lookup
        mine = self.compiled.prepare(record)
        results = []
        for other_id in self.index.candidates(record, exclude):
            other = fetch(other_id)
            if other is not None:
                results.append(self._result(mine, self.compiled.prepare(other), None, other_id))
        results.sort(key=lambda r: -r.weight)
        return results

    # -- estimation ----------------------------------------------------------------------

    def _random_patterns(self, prepared: Sequence[Prepared], split: int | None) -> Counter[Pattern]:
        n = len(prepared)
        rng = random.Random(self.config.em.seed)
        out: Counter[Pattern] = Counter()
        if n < 2 or split == 0 or split == n:
            return out
        for _ in range(self.config.em.u_sample_size):
            if split is None:
                i, j = rng.sample(range(n), 2)
            else:
                i, j = rng.randrange(split), rng.randrange(split, n)
            out[self._pattern(prepared[i], prepared[j])] += 1
        return out

    def _estimate(
        self,
        patterns: Counter[Pattern],
        prepared: Sequence[Prepared],
        split: int | None,
        blocked: Blocked,
        labelled: Iterable[tuple[Pattern, bool]] = (),
    ) -> FitReport:
        names = self.compiled.names
        labels = [c.comparator.labels for c in self.compiled.comparisons]
        sizes = [len(lv) for lv in labels]
        randoms = self._random_patterns(prepared, split)
        # u starts from chance agreement among random pairs; without any, from the candidates
        # themselves (mostly non-matches).
        u_start = level_frequencies(randoms or patterns, sizes)
        em = run_em(patterns, names, labels, u_start, self.config.em)
        params, used = refine_with_labels(em.parameters, labelled, self.config.em.label_strength)
        self.use(params)
        return FitReport(
            parameters=params,
            candidate_pairs=len(blocked.codes),
            pairs_used=sum(patterns.values()),
            random_pairs=sum(randoms.values()),
            iterations=em.iterations,
            converged=em.converged,
            ignored=em.ignored,
            labelled_pairs=used,
            pairs_skipped=blocked.pairs_skipped,
        )

    def _prepare(
        self, records: Iterable[Record], total: int, progress: Progress | None
    ) -> tuple[list[Prepared], list[list[str]]]:
        prepared: list[Prepared] = []
        keys: list[list[str]] = []
        for i, record in enumerate(records):
            prepared.append(self.compiled.prepare(record))
            keys.append(self.compiled.block_keys(record))
            if progress and i % _PROGRESS_EVERY == 0:
                progress("prepare", i, total)
        if progress:
            progress("prepare", total, total)
        return prepared, keys

    def fit(
        self,
        records: Mapping[str, Record],
        labels: Iterable[tuple[str, str, bool]] | None = None,
        progress: Progress | None = None,
    ) -> FitReport:
        """Estimate m, u and the prior by EM on candidate pairs of these records.

        ``labels`` ((id, id, is_match) over the same records) refine the estimate.
        """
        ids = list(records)
        prepared, keys = self._prepare(records.values(), len(ids), progress)
        blocked = block(self.compiled, keys)
        codes = blocked.codes
        if len(codes) > self.config.em.sample_size:
            rng = random.Random(self.config.em.seed)
            codes = sorted(rng.sample(codes, self.config.em.sample_size))
        patterns: Counter[Pattern] = Counter()
        for k, code in enumerate(codes):
            i, j = blocked.pair(code)
            patterns[self._pattern(prepared[i], prepared[j])] += 1
            if progress and k % _PROGRESS_EVERY == 0:
                progress("compare", k, len(codes))
        if progress:
            progress("estimate", 0, 1)
        position = {record_id: i for i, record_id in enumerate(ids)}
        labelled = []
        for a, b, is_match in labels or ():
            if a not in position or b not in position:
                missing = a if a not in position else b
                raise ValueError(
                    f"a labelled pair names {missing!r}, which is not among the records"
                )
            labelled.append((self._pattern(prepared[position[a]], prepared[position[b]]), is_match))
        return self._estimate(patterns, prepared, None, blocked, labelled)

    # -- batches -------------------------------------------------------------------------

    def dedupe(
        self, records: Mapping[str, Record], progress: Progress | None = None
    ) -> DedupeReport:
        """Duplicates within one set: pairs to link or review, and clusters of linked records.

        An unfitted matcher first fits on the very pairs it compares (one pass, no labels).
        """
        ids = list(records)
        prepared, keys = self._prepare(records.values(), len(ids), progress)
        return self._run(ids, prepared, keys, None, progress)

    def link(
        self,
        left: Mapping[str, Record],
        right: Mapping[str, Record],
        progress: Progress | None = None,
    ) -> DedupeReport:
        """Matches across two sets (never within one); ids must differ between the sets."""
        clash = next((k for k in left if k in right), None)
        if clash is not None:
            raise ValueError(f"id {clash!r} is in both sets: link needs distinct ids")
        ids = [*left, *right]
        records = [*left.values(), *right.values()]
        prepared, keys = self._prepare(records, len(ids), progress)
        return self._run(ids, prepared, keys, len(left), progress)

    def _run(
        self,
        ids: list[str],
        prepared: list[Prepared],
        keys: list[list[str]],
        split: int | None,
        progress: Progress | None,
    ) -> DedupeReport:
        blocked = block(self.compiled, keys, split)
        n = len(ids)
        pattern_of = self._pattern
        pairs: list[Pattern] = []
        append = pairs.append
        total = len(blocked.codes)
        for k, code in enumerate(blocked.codes):
            i, j = divmod(code, n)
            append(pattern_of(prepared[i], prepared[j]))
            if progress and k % _PROGRESS_EVERY == 0:
                progress("compare", k, total)
        fit = None
        if self._parameters is None:
            if progress:
                progress("estimate", 0, 1)
            fit = self._estimate(Counter(pairs), prepared, split, blocked)
        if progress:
            progress("score", 0, total)
        score = self._score
        links: list[ScoredPair] = []
        reviews: list[ScoredPair] = []
        edges: list[tuple[int, int]] = []
        decisions: Counter[str] = Counter()
        for code, pattern in zip(blocked.codes, pairs, strict=True):
            weight, p, decision, _, _ = score(pattern)
            decisions[decision.value] += 1
            if decision is Decision.DISTINCT:
                continue
            i, j = divmod(code, n)
            pair = ScoredPair(ids[i], ids[j], p, weight, decision)
            if decision is Decision.LINK:
                links.append(pair)
                edges.append((i, j))
            else:
                reviews.append(pair)
        if progress:
            progress("score", total, total)
        return DedupeReport(
            records=n,
            pairs_compared=total,
            pairs_skipped=blocked.pairs_skipped,
            capped_blocks=blocked.capped_blocks,
            links=links,
            reviews=reviews,
            clusters=connected_components(ids, edges),
            fit=fit,
            decisions=dict(decisions),
        )
