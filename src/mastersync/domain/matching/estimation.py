"""Fellegi-Sunter parameters and their unsupervised estimation by EM.

Pairs are reduced to comparison patterns (one level per comparison) with counts, so EM costs
the number of distinct patterns per iteration, not the number of pairs. Missing levels are
left out of both products (missing at random), which is why they weigh 0.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict

from mastersync.domain.matching.comparators import MISSING
from mastersync.domain.matching.config import EMConfig
from mastersync.domain.problems import ConfigError

Pattern = tuple[int, ...]
# A probability never falls below this many pseudo-pairs' worth: an agreement never seen among
# non-matches gets a large but finite weight.
_PSEUDO_PAIRS = 1.0
# Labels with no EM estimate behind them (label_strength 0) can leave a probability at 0.
_FLOOR = 1e-12


class EstimationError(ConfigError):
    """Weights cannot be estimated from the data (no candidate pairs, a constant comparison)."""

    def __init__(self, message: str, comparison: str | None = None):
        loc: tuple[str | int, ...] = ("comparisons", comparison) if comparison else ()
        super().__init__(message, loc)
        self.comparison = comparison


class ComparisonParameters(BaseModel):
    """m and u probabilities of one comparison's levels, best level first."""

    model_config = ConfigDict(extra="forbid")

    levels: list[str]
    m: list[float]
    u: list[float]
    # Levels no candidate pair had: their weight is 0 rather than a guess.
    unobserved: list[int] = []
    # A comparison that never varied (on_constant: ignore): all its weights are 0.
    ignored: bool = False

    def weights(self) -> list[float]:
        """log2(m/u) per level."""
        if self.ignored:
            return [0.0] * len(self.levels)
        return [
            0.0 if i in self.unobserved else math.log2(max(m, _FLOOR) / max(u, _FLOOR))
            for i, (m, u) in enumerate(zip(self.m, self.u, strict=True))
        ]


class Parameters(BaseModel):
    """A fitted model: the prior match probability among candidate pairs and every m and u."""

    model_config = ConfigDict(extra="forbid")

    prior: float
    comparisons: dict[str, ComparisonParameters]

    @property
    def prior_weight(self) -> float:
        """log2 of the prior odds."""
        return math.log2(self.prior / (1 - self.prior))


class TooFewPairs(EstimationError):
    """Too few candidate pairs for EM to estimate weights that can be trusted."""


@dataclass(frozen=True, slots=True)
class EMResult:
    """What one EM run produced and how it went."""

    parameters: Parameters
    iterations: int
    converged: bool
    ignored: tuple[str, ...]


def _smooth(counts: Sequence[float]) -> list[float]:
    total = sum(counts) + _PSEUDO_PAIRS
    share = _PSEUDO_PAIRS / len(counts)
    return [(c + share) / total for c in counts]


def level_frequencies(patterns: Mapping[Pattern, int], sizes: Sequence[int]) -> list[list[float]]:
    """Per comparison, the smoothed share of each level among non-missing values."""
    counts = [[0.0] * k for k in sizes]
    for pattern, n in patterns.items():
        for c, level in enumerate(pattern):
            if level != MISSING:
                counts[c][level] += n
    return [_smooth(row) for row in counts]


def initial_m(size: int) -> list[float]:
    """A starting guess for m: matches mostly agree fully, the rest tails off."""
    if size == 1:
        return [1.0]
    tail = [0.5**i for i in range(1, size)]
    return [0.9, *(0.1 * t / sum(tail) for t in tail)]


def _initial_prior(patterns: Mapping[Pattern, int]) -> float:
    # The share of pairs agreeing fully on most comparisons they can compare: a fair first
    # guess at the share of matches, which EM then corrects.
    total = agreeing = 0
    for pattern, n in patterns.items():
        present = [lv for lv in pattern if lv != MISSING]
        total += n
        if present and sum(1 for lv in present if lv == 0) * 2 > len(present):
            agreeing += n
    return min(0.5, max(1e-3, agreeing / total if total else 0.0))


def run_em(
    patterns: Mapping[Pattern, int],
    names: Sequence[str],
    labels: Sequence[Sequence[str]],
    u_start: Sequence[Sequence[float]],
    settings: EMConfig,
) -> EMResult:
    """Estimate m, u and the prior from pattern counts; deterministic for the same input."""
    pairs = sum(patterns.values())
    if patterns and pairs < settings.min_pairs:
        raise TooFewPairs(
            f"only {pairs} candidate pairs to estimate weights from, fewer than em.min_pairs "
            f"({settings.min_pairs}): too few to trust an estimate"
        )
    if not patterns:
        # No pairs at all is the extreme of too few (a clean backlog, or one merged clean):
        # the same error, so that a caller keeping its weights on too few keeps them here too.
        raise TooFewPairs(
            "no candidate pairs to estimate weights from: blocking found no two records "
            "sharing a key (add data, or blocking keys that records share)"
        )
    sizes = [len(lv) for lv in labels]
    observed: list[set[int]] = [set() for _ in names]
    for pattern in patterns:
        for c, level in enumerate(pattern):
            if level != MISSING:
                observed[c].add(level)
    ignored = []
    for c, name in enumerate(names):
        if len(observed[c]) < 2:
            seen = ", ".join(labels[c][i] for i in sorted(observed[c])) or "missing"
            if settings.on_constant == "error":
                raise EstimationError(
                    f"comparison {name!r} has the same level ({seen}) in every candidate pair, "
                    "so its weights cannot be estimated: remove it, check its fields, or set "
                    "em.on_constant: ignore",
                    name,
                )
            ignored.append(c)
    active = [c for c in range(len(names)) if c not in ignored]

    # Sorted: float sums depend on order, and the same counts must give the same weights.
    rows = sorted(patterns.items())
    counts = [float(n) for _, n in rows]
    total = sum(counts)
    columns = [[p[c] for p, _ in rows] for c in range(len(names))]
    m = [initial_m(k) for k in sizes]
    u = [list(row) for row in u_start]
    prior = settings.prior if settings.prior is not None else _initial_prior(patterns)

    iterations = 0
    converged = False
    while iterations < settings.max_iterations:
        iterations += 1
        # E-step: the probability that each pattern is a match. Index -1 (missing) reads
        # the 1.0 appended to each row, leaving the comparison out of the product.
        a = [prior] * len(rows)
        b = [1 - prior] * len(rows)
        for c in active:
            mc = [*m[c], 1.0]
            uc = [*u[c], 1.0]
            col = columns[c]
            a = [x * mc[lv] for x, lv in zip(a, col, strict=True)]
            b = [x * uc[lv] for x, lv in zip(b, col, strict=True)]
        match = [n * x / (x + y) for n, x, y in zip(counts, a, b, strict=True)]
        other = [n - g for n, g in zip(counts, match, strict=True)]
        # M-step.
        change = 0.0
        if settings.prior is None:
            new_prior = min(1 - 1e-9, max(1e-9, sum(match) / total))
            change = abs(new_prior - prior)
            prior = new_prior
        for c in active:
            sm = [0.0] * sizes[c]
            su = [0.0] * sizes[c]
            for lv, g, h in zip(columns[c], match, other, strict=True):
                if lv != MISSING:
                    sm[lv] += g
                    su[lv] += h
            new_m = _smooth(sm)
            change = max(change, *(abs(x - y) for x, y in zip(new_m, m[c], strict=True)))
            m[c] = new_m
            if settings.train_u:
                new_u = _smooth(su)
                change = max(change, *(abs(x - y) for x, y in zip(new_u, u[c], strict=True)))
                u[c] = new_u
        if change < settings.tolerance:
            converged = True
            break

    params = Parameters(
        prior=prior,
        comparisons={
            name: ComparisonParameters(
                levels=list(labels[c]),
                m=m[c],
                u=u[c],
                unobserved=[i for i in range(sizes[c]) if i not in observed[c]],
                ignored=c in ignored,
            )
            for c, name in enumerate(names)
        },
    )
    return EMResult(params, iterations, converged, tuple(names[c] for c in ignored))


def refine_with_labels(
    params: Parameters,
    labelled: Iterable[tuple[Pattern, bool]],
    strength: float,
) -> tuple[Parameters, int]:
    """Blend EM's m and u with counts from labelled pairs; EM counts as ``strength`` pairs."""
    names = list(params.comparisons)
    sizes = [len(params.comparisons[n].levels) for n in names]
    cm = [[0.0] * k for k in sizes]
    cu = [[0.0] * k for k in sizes]
    used = 0
    for pattern, is_match in labelled:
        used += 1
        target = cm if is_match else cu
        for c, level in enumerate(pattern):
            if level != MISSING:
                target[c][level] += 1
    if not used:
        return params, 0
    out = {}
    for c, name in enumerate(names):
        old = params.comparisons[name]

        def blend(em: list[float], counts: list[float]) -> list[float]:
            total = sum(counts) + strength
            if total == 0:
                return em
            return [(n + strength * p) / total for p, n in zip(em, counts, strict=True)]

        seen = {i for i in range(sizes[c]) if cm[c][i] or cu[c][i]}
        out[name] = old.model_copy(
            update={
                "m": blend(old.m, cm[c]),
                "u": blend(old.u, cu[c]),
                "unobserved": [i for i in old.unobserved if i not in seen],
            }
        )
    return params.model_copy(update={"comparisons": out}), used
