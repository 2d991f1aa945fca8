"""EM: recovers known parameters, is deterministic, and refuses what cannot be estimated."""

from __future__ import annotations

import itertools
import math
from collections import Counter

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from mastersync.domain.matching import EMConfig, EstimationError, Parameters, TooFewPairs
from mastersync.domain.matching.estimation import (
    ComparisonParameters,
    initial_m,
    level_frequencies,
    refine_with_labels,
    run_em,
)

NAMES = ["a", "b", "c", "d"]
LABELS = [("agree", "disagree")] * 4
M = [0.95, 0.9, 0.85, 0.8]
U = [0.05, 0.1, 0.2, 0.3]
PRIOR = 0.2


def mixture(total: int = 100_000) -> Counter[tuple[int, ...]]:
    """Exact expected pattern counts of a Fellegi-Sunter model (no sampling noise)."""
    counts: Counter[tuple[int, ...]] = Counter()
    for pattern in itertools.product((0, 1), repeat=4):
        match = PRIOR * math.prod(m if lv == 0 else 1 - m for m, lv in zip(M, pattern, strict=True))
        other = (1 - PRIOR) * math.prod(
            u if lv == 0 else 1 - u for u, lv in zip(U, pattern, strict=True)
        )
        counts[pattern] = round(total * (match + other))
    return counts


def test_em_recovers_known_parameters() -> None:
    result = run_em(mixture(), NAMES, LABELS, [[0.5, 0.5]] * 4, EMConfig(tolerance=1e-7))
    params = result.parameters
    assert result.converged
    assert params.prior == pytest.approx(PRIOR, abs=0.01)
    for name, m, u in zip(NAMES, M, U, strict=True):
        assert params.comparisons[name].m[0] == pytest.approx(m, abs=0.01)
        assert params.comparisons[name].u[0] == pytest.approx(u, abs=0.01)
    weights = params.comparisons["a"].weights()
    assert weights[0] == pytest.approx(math.log2(0.95 / 0.05), abs=0.1)
    assert weights[1] == pytest.approx(math.log2(0.05 / 0.95), abs=0.2)


def test_fixed_u_and_prior() -> None:
    settings_ = EMConfig(train_u=False, prior=0.2)
    start = [[u, 1 - u] for u in U]
    params = run_em(mixture(), NAMES, LABELS, start, settings_).parameters
    assert params.prior == 0.2
    assert params.comparisons["d"].u[0] == pytest.approx(0.3, abs=1e-4)
    assert params.comparisons["d"].m[0] == pytest.approx(0.8, abs=0.01)


def test_missing_levels_are_left_out() -> None:
    counts = mixture()
    # The same pairs again with comparison "d" missing: estimates stay where they were.
    for pattern, n in list(counts.items()):
        counts[(*pattern[:3], -1)] += n
    params = run_em(counts, NAMES, LABELS, [[0.5, 0.5]] * 4, EMConfig(tolerance=1e-7)).parameters
    assert params.comparisons["a"].m[0] == pytest.approx(0.95, abs=0.01)
    assert params.comparisons["d"].u[0] == pytest.approx(0.3, abs=0.01)


@settings(max_examples=25, deadline=None)
@given(
    st.dictionaries(st.tuples(*[st.sampled_from([-1, 0, 1])] * 4), st.integers(1, 500), min_size=6)
)
def test_em_is_deterministic(counts: dict[tuple[int, ...], int]) -> None:
    patterns = Counter(counts)
    # A constant comparison is an error, tested below.
    assume(all(len({p[c] for p in patterns if p[c] != -1}) >= 2 for c in range(4)))
    first = run_em(
        patterns, NAMES, LABELS, level_frequencies(patterns, [2] * 4), EMConfig(min_pairs=1)
    )
    again = run_em(
        Counter(dict(reversed(list(patterns.items())))),
        NAMES,
        LABELS,
        level_frequencies(patterns, [2] * 4),
        EMConfig(min_pairs=1),
    )
    assert first.parameters == again.parameters
    assert 0 < first.parameters.prior < 1


def test_no_candidate_pairs() -> None:
    with pytest.raises(EstimationError, match="no candidate pairs to estimate weights from"):
        run_em(Counter(), NAMES, LABELS, [[0.5, 0.5]] * 4, EMConfig())


def test_a_constant_comparison_is_named() -> None:
    counts = Counter({(0, 0, 0, 1): 10, (1, 1, 0, 1): 30, (0, 1, 1, 1): 5})
    with pytest.raises(EstimationError) as caught:
        run_em(counts, NAMES, LABELS, [[0.5, 0.5]] * 4, EMConfig(min_pairs=1))
    assert caught.value.comparison == "d"
    assert caught.value.loc == ("comparisons", "d")
    assert "comparison 'd' has the same level (disagree) in every candidate pair" in str(
        caught.value
    )
    ignored = run_em(
        counts, NAMES, LABELS, [[0.5, 0.5]] * 4, EMConfig(on_constant="ignore", min_pairs=1)
    )
    assert ignored.ignored == ("d",)
    assert ignored.parameters.comparisons["d"].weights() == [0.0, 0.0]


def test_unobserved_levels_weigh_nothing() -> None:
    labels = [("exact", "close", "different"), *LABELS[1:]]
    counts = Counter({(0, 0, 0, 0): 50, (2, 1, 1, 1): 500, (2, 0, 1, 1): 40, (0, 1, 0, 0): 9})
    params = run_em(
        counts, NAMES, labels, [[0.2, 0.3, 0.5]] + [[0.5, 0.5]] * 3, EMConfig(min_pairs=1)
    )
    a = params.parameters.comparisons["a"]
    assert a.unobserved == [1]
    assert a.weights()[1] == 0.0
    assert a.weights()[0] > 0 > a.weights()[2]


def test_labels_pull_estimates_towards_counts() -> None:
    params = Parameters(
        prior=0.1,
        comparisons={
            "a": ComparisonParameters(levels=["agree", "disagree"], m=[0.6, 0.4], u=[0.4, 0.6])
        },
    )
    labelled = [((0,), True)] * 50 + [((1,), False)] * 50
    refined, used = refine_with_labels(params, labelled, strength=50)
    assert used == 100
    assert refined.comparisons["a"].m == pytest.approx([0.8, 0.2])
    assert refined.comparisons["a"].u == pytest.approx([0.2, 0.8])
    unchanged, none = refine_with_labels(params, [], strength=50)
    assert none == 0
    assert unchanged is params


def test_initial_m_sums_to_one() -> None:
    assert initial_m(2) == pytest.approx([0.9, 0.1])
    assert sum(initial_m(5)) == pytest.approx(1.0)
    assert initial_m(4)[0] > initial_m(4)[1] > initial_m(4)[3]


def test_parameters_round_trip() -> None:
    params = run_em(mixture(), NAMES, LABELS, [[0.5, 0.5]] * 4, EMConfig()).parameters
    again = Parameters.model_validate_json(params.model_dump_json())
    assert again == params
    assert again.prior_weight == pytest.approx(math.log2(params.prior / (1 - params.prior)))


def test_too_few_pairs_are_refused() -> None:
    counts = Counter({(0, 0, 0, 0): 3, (1, 1, 1, 1): 40})
    with pytest.raises(TooFewPairs, match=r"only 43 candidate pairs .* em.min_pairs \(100\)"):
        run_em(counts, NAMES, LABELS, [[0.5, 0.5]] * 4, EMConfig())
