"""Comparators: similarity becomes a discrete level, best first, missing apart."""

from __future__ import annotations

import pytest

from mastersync.domain.matching.comparators import MISSING, build_comparator
from mastersync.domain.problems import ConfigError


def level(kind: str, a: tuple[str, ...], b: tuple[str, ...], *thresholds: float) -> int:
    comparator = build_comparator(kind, list(thresholds) if thresholds else None)
    return comparator.level(a, b)


def test_labels_name_every_level() -> None:
    assert build_comparator("exact", None).labels == ("exact", "different")
    assert build_comparator("jaro_winkler", [0.95, 0.88]).labels == (
        "exact",
        "jaro_winkler>=0.95",
        "jaro_winkler>=0.88",
        "different",
    )
    assert build_comparator("edit_distance", None).labels == (
        "exact",
        "distance<=1",
        "distance<=2",
        "different",
    )
    assert build_comparator("numeric", [0.05], relative=True).labels == (
        "equal",
        "within 5%",
        "different",
    )
    assert build_comparator("date", [30]).labels == (
        "exact",
        "day/month swapped",
        "one typo",
        "within 30 days",
        "different",
    )


def test_missing_is_its_own_level() -> None:
    for kind in ("exact", "jaro_winkler", "token_set", "edit_distance", "numeric", "date"):
        assert level(kind, (), ("x",)) == MISSING
        assert level(kind, ("x",), ()) == MISSING


def test_jaro_winkler_levels() -> None:
    assert level("jaro_winkler", ("martha",), ("martha",), 0.95, 0.88) == 0
    assert level("jaro_winkler", ("martha",), ("marhta",), 0.95, 0.88) == 1  # 0.961
    assert level("jaro_winkler", ("dixon",), ("dicksonx",), 0.95, 0.8) == 2  # 0.813
    assert level("jaro_winkler", ("martha",), ("zelda",), 0.95, 0.88) == 3


def test_token_set_ignores_order_and_extra_words() -> None:
    assert level("token_set", ("acme trading",), ("trading acme",), 0.9) == 1
    assert level("token_set", ("acme",), ("acme trading",), 0.9) == 1
    assert level("token_set", ("acme trading",), ("zenith foods",), 0.9) == 2


def test_edit_distance_counts_a_swap_as_one() -> None:
    assert level("edit_distance", ("1234567",), ("1243567",)) == 1
    assert level("edit_distance", ("1234567",), ("1299567",)) == 2
    assert level("edit_distance", ("1234567",), ("7654321",)) == 3


def test_numeric_absolute_and_relative() -> None:
    assert level("numeric", ("10",), ("10.0",), 0.5, 2) == 0
    assert level("numeric", ("10",), ("10.4",), 0.5, 2) == 1
    assert level("numeric", ("10",), ("11.5",), 0.5, 2) == 2
    assert level("numeric", ("10",), ("20",), 0.5, 2) == 3
    assert level("numeric", ("10",), ("abc",), 0.5) == 2
    relative = build_comparator("numeric", [0.05], relative=True)
    assert relative.level(("100",), ("104",)) == 1
    assert relative.level(("100",), ("110",)) == 2


def test_date_levels() -> None:
    assert level("date", ("1980-03-04",), ("1980-03-04",), 31, 366) == 0
    assert level("date", ("1980-03-04",), ("1980-04-03",), 31, 366) == 1  # swapped
    assert level("date", ("1980-03-04",), ("1980-03-07",), 31, 366) == 2  # one digit
    assert level("date", ("1980-03-04",), ("1980-03-27",), 31, 366) == 3  # 23 days
    assert level("date", ("1980-03-04",), ("1980-11-30",), 31, 366) == 4  # 271 days
    assert level("date", ("1980-03-04",), ("1991-07-30",), 31, 366) == 5
    # Not a real date on one side: only the textual levels can apply.
    assert level("date", ("1980-13-04",), ("1980-12-04",), 31, 366) == 2
    assert level("date", ("1980-13-04",), ("1990-12-28",), 31, 366) == 5


def test_several_values_take_the_best_pair() -> None:
    cities = build_comparator("jaro_winkler", [0.9])
    assert cities.level(("paris", "lyon"), ("lyon",)) == 0
    assert cities.level(("paris", "lyon"), ("lyons", "nice")) == 1
    assert cities.level(("paris",), ("nice", "rome")) == 2


@pytest.mark.parametrize(
    ("kind", "thresholds", "message"),
    [
        ("jaro", None, "unknown comparator 'jaro'; did you mean 'jaro_winkler'?"),
        ("exact", [1], "comparator 'exact' takes no thresholds"),
        ("jaro_winkler", [0.8, 0.9], "jaro_winkler thresholds are similarities in (0, 1]"),
        ("jaro_winkler", [1.5], "jaro_winkler thresholds are similarities in (0, 1]"),
        ("edit_distance", [2, 1], "edit_distance thresholds must be non-negative"),
        ("edit_distance", [1.5], "edit_distance thresholds are whole numbers"),
        ("numeric", [], "comparator 'numeric' needs at least one threshold"),
    ],
)
def test_comparator_mistakes(kind: str, thresholds: list[float] | None, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        build_comparator(kind, thresholds, loc=("comparisons", 2))
    assert caught.value.message.startswith(message)
    assert caught.value.loc[:2] == ("comparisons", 2)


def test_relative_only_for_numbers() -> None:
    with pytest.raises(ConfigError, match="'relative' applies to the numeric comparator only"):
        build_comparator("exact", None, relative=True)
