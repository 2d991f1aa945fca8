"""A checked, compiled matching configuration: field readers, normalisers, comparators, keys."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from mastersync.domain.matching.comparators import Comparator, Values, build_comparator
from mastersync.domain.matching.config import MatchConfig
from mastersync.domain.matching.normalise import Normaliser, compile_normalisers
from mastersync.domain.problems import ConfigError

Record = Mapping[str, Any]
# One record made ready to compare: the normalised values of each comparison, in order.
Prepared = tuple[Values, ...]
Reader = Callable[[Record], list[str]]

# Records with many values on a key (ten addresses) could multiply into many keys.
_MAX_KEYS_PER_DEFINITION = 16


def _scalar(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | Decimal):
        return str(value)
    if hasattr(value, "isoformat"):  # date, datetime
        return str(value.isoformat())
    return None


def _collect(value: Any, keys: tuple[str, ...], out: list[str]) -> None:
    if value is None:
        return
    if isinstance(value, list | tuple):
        for item in value:
            _collect(item, keys, out)
        return
    if keys:
        if isinstance(value, Mapping):
            _collect(value.get(keys[0]), keys[1:], out)
        return
    text = _scalar(value)
    if text is not None:
        out.append(text)


def compile_reader(path: str, loc: tuple[str | int, ...] = ()) -> Reader:
    """A reader for a dotted path, descending into lists ("addresses.city" -> every city)."""
    keys = tuple(path.split("."))
    if not path or any(not k for k in keys):
        raise ConfigError(f"invalid field path {path!r}", loc)
    if len(keys) == 1:
        key = keys[0]

        def flat(record: Record) -> list[str]:
            value = record.get(key)
            if isinstance(value, str):  # the hot case
                return [value]
            out: list[str] = []
            _collect(value, (), out)
            return out

        return flat

    if len(keys) == 2:
        outer_key, inner_key = keys

        def pair(record: Record) -> list[str]:
            # "addresses.city": a list of objects, one level down (hot, so no recursion).
            outer = record.get(outer_key)
            if outer is None:
                return []
            out: list[str] = []
            for item in outer if isinstance(outer, list | tuple) else (outer,):
                if isinstance(item, Mapping):
                    value = item.get(inner_key)
                    if isinstance(value, str):
                        out.append(value)
                    elif value is not None:
                        _collect(value, (), out)
            return out

        return pair

    def nested(record: Record) -> list[str]:
        out: list[str] = []
        _collect(record.get(keys[0]), keys[1:], out)
        return out

    return nested


@dataclass(frozen=True, slots=True)
class CompiledComparison:
    """One comparison ready to run."""

    name: str
    readers: tuple[Reader, ...]
    normalise: Normaliser
    comparator: Comparator

    def values(self, record: Record, region: str | None) -> Values:
        """The record's distinct normalised values for this comparison."""
        out: list[str] = []
        for read in self.readers:
            for raw in read(record):
                value = self.normalise(raw, region)
                if value and value not in out:
                    out.append(value)
        return tuple(out)


@dataclass(frozen=True, slots=True)
class KeySource:
    """Where a key part's values come from: fields and normalisers (shared between keys)."""

    readers: tuple[Reader, ...]
    normalise: Normaliser

    def values(self, record: Record, region: str | None) -> list[str]:
        """The record's distinct normalised values."""
        found: list[str] = []
        for read in self.readers:
            for raw in read(record):
                value = self.normalise(raw, region)
                if value and value not in found:
                    found.append(value)
        return found


@dataclass(frozen=True, slots=True)
class CompiledKey:
    """One blocking key definition: its parts as positions in ``CompiledConfig.sources``."""

    name: str
    tag: str
    sources: tuple[int, ...]


@dataclass(frozen=True)
class CompiledConfig:
    """The configuration checked and compiled once, shared by matcher, index and EM."""

    config: MatchConfig
    comparisons: tuple[CompiledComparison, ...]
    keys: tuple[CompiledKey, ...]
    sources: tuple[KeySource, ...]
    country: Reader | None

    @property
    def names(self) -> tuple[str, ...]:
        """Comparison names in order."""
        return tuple(c.name for c in self.comparisons)

    def region(self, record: Record) -> str | None:
        """The record's country, the default region of its phone numbers."""
        if self.country is None:
            return None
        found = self.country(record)
        return found[0] if found else None

    def prepare(self, record: Record) -> Prepared:
        """Normalised values of every comparison."""
        region = self.region(record)
        return tuple(c.values(record, region) for c in self.comparisons)

    def block_keys(self, record: Record) -> list[str]:
        """Every blocking key value of the record, tagged with its key's name ("email:a@b.c")."""
        region = self.region(record)
        # Several keys often share a part (soundex of the name): compute each source once.
        found: list[list[str] | None] = [None] * len(self.sources)
        out: list[str] = []
        for key in self.keys:
            per_part = []
            for s in key.sources:
                values = found[s]
                if values is None:
                    values = found[s] = self.sources[s].values(record, region)
                if not values:
                    break
                per_part.append(values)
            else:
                if len(per_part) == 1:
                    out.extend([key.tag + v for v in per_part[0][:_MAX_KEYS_PER_DEFINITION]])
                else:
                    combos = itertools.islice(
                        itertools.product(*per_part), _MAX_KEYS_PER_DEFINITION
                    )
                    out.extend([key.tag + "\x1f".join(c) for c in combos])
        return out


def _unique(names: list[str], what: str, loc: tuple[str | int, ...]) -> None:
    seen: set[str] = set()
    for i, name in enumerate(names):
        if name in seen:
            raise ConfigError(f"{what} name {name!r} is used twice", (*loc, i, "name"))
        seen.add(name)


def compile_config(config: MatchConfig) -> CompiledConfig:
    """Check names and rules and compile; every mistake is a ConfigError with its key path."""
    _unique([c.name for c in config.comparisons], "comparison", ("comparisons",))
    _unique([k.name for k in config.blocking], "blocking key", ("blocking",))
    t = config.thresholds
    if t.scale == "probability" and not (0 < t.review < 1 and 0 < t.link < 1):
        raise ConfigError(
            f"probability thresholds lie strictly between 0 and 1 (link {t.link}, "
            f"review {t.review})",
            ("thresholds",),
        )
    if t.review > t.link:
        raise ConfigError(
            f"the review threshold ({t.review}) is above the auto-link threshold ({t.link}): "
            "review must be at or below link",
            ("thresholds", "review"),
        )
    comparisons = []
    for i, c in enumerate(config.comparisons):
        loc: tuple[str | int, ...] = ("comparisons", i)
        comparator = build_comparator(c.comparator, c.thresholds, c.relative, loc)
        names = list(c.normalisers)
        if comparator.kind == "date" and "date" not in names:
            names.append("date")  # the date comparator reads YYYY-MM-DD
        normalise = compile_normalisers(names, (*loc, "normalisers"))
        readers = tuple(compile_reader(f, (*loc, "fields", j)) for j, f in enumerate(c.fields))
        comparisons.append(CompiledComparison(c.name, readers, normalise, comparator))
    keys = []
    sources: dict[tuple[tuple[str, ...], tuple[str, ...]], int] = {}
    compiled_sources: list[KeySource] = []
    for i, k in enumerate(config.blocking):
        positions = []
        for j, p in enumerate(k.parts):
            loc = ("blocking", i, "parts", j)
            paths = (p.field,) if isinstance(p.field, str) else tuple(p.field)
            if not paths:
                raise ConfigError("a key part needs at least one field", (*loc, "field"))
            spec = (paths, tuple(p.normalisers))
            if spec not in sources:
                readers = tuple(compile_reader(f, (*loc, "field")) for f in paths)
                normalise = compile_normalisers(p.normalisers, (*loc, "normalisers"))
                sources[spec] = len(compiled_sources)
                compiled_sources.append(KeySource(readers, normalise))
            positions.append(sources[spec])
        # Tagged by name, not position: keys persisted in the store keep their meaning when the
        # configuration lists its keys in another order.
        keys.append(CompiledKey(k.name, f"{k.name}:", tuple(positions)))
    country = (
        compile_reader(config.country_field, ("country_field",)) if config.country_field else None
    )
    return CompiledConfig(config, tuple(comparisons), tuple(keys), tuple(compiled_sources), country)
