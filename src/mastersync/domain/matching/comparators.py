"""Comparators: how two normalised values become a discrete Fellegi-Sunter level.

Level 0 is always the strongest agreement and the last level the weakest ("different").
``MISSING`` (-1) means one side has no value: it carries no evidence and weighs 0.
When a side has several values (``addresses.city``) the best level over all pairs counts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from difflib import get_close_matches
from functools import lru_cache

from rapidfuzz import fuzz
from rapidfuzz.distance import OSA, JaroWinkler

from mastersync.domain.matching.normalise import parse_date
from mastersync.domain.problems import ConfigError

MISSING = -1
MISSING_LABEL = "missing"

Values = tuple[str, ...]
PairLevel = Callable[[str, str], int]
LevelFn = Callable[[Values, Values], int]


@dataclass(frozen=True, slots=True)
class Comparator:
    """A compiled comparator: level labels (best first) and the function choosing one."""

    kind: str
    labels: tuple[str, ...]
    level: LevelFn


def _best_of(pair: PairLevel, worst: int) -> LevelFn:
    def level(a: Values, b: Values) -> int:
        if not a or not b:
            return MISSING
        if len(a) == 1 and len(b) == 1:  # the common case: no loops
            return pair(a[0], b[0])
        best = worst
        for x in a:
            for y in b:
                found = pair(x, y)
                if found < best:
                    if found == 0:
                        return 0
                    best = found
        return best

    return level


def _exact(thresholds: Sequence[float], relative: bool) -> tuple[tuple[str, ...], PairLevel]:
    return ("exact", "different"), lambda x, y: 0 if x == y else 1


def _similarity(
    name: str, score: Callable[[str, str, float], float], thresholds: Sequence[float]
) -> tuple[tuple[str, ...], PairLevel]:
    cuts = tuple(thresholds)
    lowest = cuts[-1]
    worst = len(cuts) + 1

    def pair(x: str, y: str) -> int:
        if x == y:
            return 0
        # score_cutoff lets rapidfuzz stop early on clearly different strings.
        s = score(x, y, lowest)
        for i, cut in enumerate(cuts):
            if s >= cut:
                return i + 1
        return worst

    labels = ("exact", *(f"{name}>={c:g}" for c in cuts), "different")
    return labels, pair


def _jaro_winkler(thresholds: Sequence[float], relative: bool) -> tuple[tuple[str, ...], PairLevel]:
    return _similarity(
        "jaro_winkler",
        lambda x, y, cut: JaroWinkler.similarity(x, y, score_cutoff=cut),
        thresholds,
    )


def _token_set(thresholds: Sequence[float], relative: bool) -> tuple[tuple[str, ...], PairLevel]:
    return _similarity(
        "token_set",
        lambda x, y, cut: fuzz.token_set_ratio(x, y, score_cutoff=cut * 100) / 100,
        thresholds,
    )


def _edit_distance(
    thresholds: Sequence[float], relative: bool
) -> tuple[tuple[str, ...], PairLevel]:
    cuts = tuple(int(t) for t in thresholds)
    largest = cuts[-1]
    worst = len(cuts) + 1

    def pair(x: str, y: str) -> int:
        if x == y:
            return 0
        # Optimal string alignment: a swap of two neighbours ("1243") is one edit.
        d = OSA.distance(x, y, score_cutoff=largest)
        for i, cut in enumerate(cuts):
            if d <= cut:
                return i + 1
        return worst

    return ("exact", *(f"distance<={c}" for c in cuts), "different"), pair


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _numeric(thresholds: Sequence[float], relative: bool) -> tuple[tuple[str, ...], PairLevel]:
    cuts = tuple(thresholds)
    worst = len(cuts) + 1

    def pair(x: str, y: str) -> int:
        if x == y:
            return 0
        a, b = _number(x), _number(y)
        if a is None or b is None:
            return worst
        if a == b:
            return 0
        gap = abs(a - b)
        if relative:
            gap /= max(abs(a), abs(b))
        for i, cut in enumerate(cuts):
            if gap <= cut:
                return i + 1
        return worst

    unit = "%" if relative else ""
    scale = 100 if relative else 1
    return ("equal", *(f"within {c * scale:g}{unit}" for c in cuts), "different"), pair


@lru_cache(maxsize=65536)
def _day_number(iso: str) -> int | None:
    parsed = parse_date(iso)
    return parsed.toordinal() if parsed else None


def _date(thresholds: Sequence[float], relative: bool) -> tuple[tuple[str, ...], PairLevel]:
    cuts = tuple(int(t) for t in thresholds)
    worst = len(cuts) + 3

    def pair(x: str, y: str) -> int:
        # Values are YYYY-MM-DD (the comparison adds the ``date`` normaliser itself).
        if x == y:
            return 0
        if x[:4] == y[:4] and x[5:7] == y[8:10] and x[8:10] == y[5:7]:
            return 1  # day and month swapped: the classic US/European mix-up
        if OSA.distance(x, y, score_cutoff=1) <= 1:
            return 2  # one mistyped or swapped digit
        a, b = _day_number(x), _day_number(y)
        if a is not None and b is not None:
            gap = abs(a - b)
            for i, cut in enumerate(cuts):
                if gap <= cut:
                    return i + 3
        return worst

    labels = ("exact", "day/month swapped", "one typo", *(f"within {c} days" for c in cuts))
    return (*labels, "different"), pair


# name -> (builder, default thresholds, threshold kind)
_KINDS: dict[
    str,
    tuple[
        Callable[[Sequence[float], bool], tuple[tuple[str, ...], PairLevel]],
        tuple[float, ...],
        str,
    ],
] = {
    "exact": (_exact, (), "none"),
    # The same as exact: a missing side is always its own 0-weight level. Named for GTINs,
    # where "both present and different" is the strong evidence.
    "exact_or_missing": (_exact, (), "none"),
    "jaro_winkler": (_jaro_winkler, (0.92, 0.8), "similarity"),
    "token_set": (_token_set, (0.9, 0.7), "similarity"),
    "edit_distance": (_edit_distance, (1, 2), "distance"),
    "numeric": (_numeric, (0.01,), "gap"),
    "date": (_date, (31, 366), "distance"),
}
COMPARATORS = tuple(_KINDS)


def _check_thresholds(
    kind: str, shape: str, cuts: Sequence[float], loc: tuple[str | int, ...]
) -> None:
    if shape == "none":
        if cuts:
            raise ConfigError(f"comparator {kind!r} takes no thresholds", loc)
        return
    if not cuts:
        raise ConfigError(f"comparator {kind!r} needs at least one threshold", loc)
    if shape == "similarity":
        if any(not 0 < c <= 1 for c in cuts) or list(cuts) != sorted(set(cuts), reverse=True):
            raise ConfigError(
                f"{kind} thresholds are similarities in (0, 1], strictly decreasing "
                f"(e.g. [0.95, 0.88]); got {list(cuts)}",
                loc,
            )
        return
    if any(c < 0 for c in cuts) or list(cuts) != sorted(set(cuts)):
        raise ConfigError(
            f"{kind} thresholds must be non-negative and strictly increasing; got {list(cuts)}",
            loc,
        )
    if shape == "distance" and any(c != int(c) for c in cuts):
        raise ConfigError(f"{kind} thresholds are whole numbers; got {list(cuts)}", loc)


def build_comparator(
    kind: str,
    thresholds: Sequence[float] | None,
    relative: bool = False,
    loc: tuple[str | int, ...] = (),
) -> Comparator:
    """Compile a comparator by name; wrong names or thresholds are config errors."""
    entry = _KINDS.get(kind)
    if entry is None:
        close = get_close_matches(kind, COMPARATORS, n=1, cutoff=0.5)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ConfigError(
            f"unknown comparator {kind!r}{hint} (known: {', '.join(COMPARATORS)})",
            (*loc, "comparator"),
        )
    builder, default, shape = entry
    cuts = tuple(default if thresholds is None else thresholds)
    _check_thresholds(kind, shape, cuts, (*loc, "thresholds"))
    if relative and kind != "numeric":
        raise ConfigError("'relative' applies to the numeric comparator only", (*loc, "relative"))
    labels, pair = builder(cuts, relative)
    return Comparator(kind, labels, _best_of(pair, len(labels) - 1))
