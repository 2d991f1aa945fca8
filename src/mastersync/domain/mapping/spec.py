"""The declarative mapping language, as checked configuration models."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from typing_extensions import TypeAliasType

from mastersync.domain.problems import ConfigError


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class NumberSpec(_Spec):
    """Parse text into a number: by locale (``de_DE``) or by explicit separators."""

    locale: str | None = None
    decimal: str | None = Field(default=None, max_length=1)
    group: str | None = Field(default=None, max_length=1)

    @model_validator(mode="after")
    def _unambiguous(self) -> NumberSpec:
        # Either would parse silently wrong: with one character for both, "1,5" reads as 15;
        # with a locale too, the separators were ignored.
        if self.decimal is not None and self.decimal == self.group:
            raise ValueError(f"'decimal' and 'group' are both {self.decimal!r}: they must differ")
        if self.decimal is None and self.group == ".":
            # The decimal separator defaults to "."; "1.5" read as 15.
            raise ValueError("'group' is '.', which is the default 'decimal': give 'decimal' too")
        if self.locale and (self.decimal is not None or self.group is not None):
            raise ValueError("give a 'locale' or the separators ('decimal', 'group'), not both")
        return self


def _strptime_format(fmt: str | None) -> str | None:
    """A strptime format, refused here when it has a directive strptime does not know
    (`check` said ok, and ingest rejected every record with "'Q' is a bad directive")."""
    if fmt is None:
        return fmt
    sample = dt.datetime(2001, 2, 3, 4, 5, 6).strftime(fmt)
    try:
        dt.datetime.strptime(sample, fmt)
    except ValueError as exc:
        text = str(exc)
        if "directive" in text or "stray %" in text:
            # The loader adds the value given: the reason is enough here.
            raise ValueError(f"not a strptime format: {text.split(' in format')[0]}") from None
    return fmt


def _time_zone(name: str) -> str:
    """An IANA time zone name, refused here so that the error names its key."""
    from mastersync.domain.versions import zone  # versions imports this module

    try:
        zone(name)
    except ConfigError:
        # The loader adds the value given.
        raise ValueError("unknown time zone: give an IANA name such as Europe/Berlin") from None
    return name


class DateSpec(_Spec):
    """Parse text into a date or timestamp: strptime format, babel locale, or ISO 8601."""

    format: str | None = None
    locale: str | None = None
    # Zone of naive times (IANA name), for ``datetime``: a source's local clock.
    timezone: str = "UTC"

    _format = field_validator("format")(_strptime_format)
    _zone = field_validator("timezone")(_time_zone)


class UnitSpec(_Spec):
    """Convert between units: a fixed source unit or one read from another source field."""

    to: str
    from_: str | None = Field(default=None, alias="from")
    from_path: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> UnitSpec:
        if (self.from_ is None) == (self.from_path is None):
            raise ValueError("unit needs exactly one of 'from' (a unit) or 'from_path' (a field)")
        return self


class RefSpec(_Spec):
    """Resolve a reference to another domain's record into its master id."""

    domain: str
    # Which system's keys the value is in; default: the system being mapped.
    system: str | None = None
    # Resolve by a natural key of the referenced domain (e.g. gtin) instead of a source key.
    by: str | None = None


class ValueOp(_Spec):
    """How one target value is produced: a source, then conversions in a fixed order."""

    from_: str | None = Field(default=None, alias="from")
    const: Any = None
    concat: list[str | ValueOp] | None = None
    each: str | None = None
    fields: dict[str, ValueSpec] | None = None
    sep: str = " "
    trim: bool = True
    map: dict[str, Any] | None = None
    map_other: Literal["error", "keep", "null"] = "error"
    number: NumberSpec | bool | None = None
    date: DateSpec | bool | None = None
    datetime: DateSpec | bool | None = None
    unit: UnitSpec | None = None
    round: int | None = Field(default=None, ge=0, le=12)
    case: Literal["upper", "lower", "title"] | None = None
    default: Any = None
    optional: bool = False
    ref: RefSpec | None = None
    # A condition on the record (JMESPath); when it does not hold the value is null.
    when: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _yaml_keys(cls, data: Any) -> Any:
        # YAML's `const: null` is meaningful; remember whether const was given at all.
        if isinstance(data, dict) and "const" in data:
            data = {**data, "has_const": True}
        return data

    has_const: bool = Field(default=False, exclude=True)

    @model_validator(mode="after")
    def _one_source(self) -> ValueOp:
        given = [
            n
            for n, v in (("from", self.from_), ("concat", self.concat), ("each", self.each))
            if v is not None
        ]
        if self.has_const:
            given.append("const")
        if self.fields is not None and self.each is None:
            given.append("fields")
        if len(given) != 1:
            raise ValueError(
                "a value needs exactly one source of 'from', 'const', 'concat', 'fields' "
                "(an object) or 'each' with 'fields' (a list of objects)"
                + (f"; got {', '.join(given)}" if given else "")
            )
        if self.each is not None and self.fields is None:
            raise ValueError("'each' (a source list) needs 'fields' (its element mapping)")
        return self


# A plain string is a source path. A list builds a list: a string entry is a path to a
# scalar, a mapping entry an object template (whose "when" decides whether it exists).
ValueSpec = TypeAliasType("ValueSpec", "str | ValueOp | list[str | dict[str, ValueSpec]]")


class VersionKind(StrEnum):
    """How a source says which of two changes is newer."""

    SEQUENCE = "sequence"
    COUNTER = "counter"
    TIMESTAMP = "timestamp"
    # No version in the source: the hub's arrival order decides.
    ARRIVAL = "arrival"


class VersionSpec(_Spec):
    """Where a record's source version is and what kind it is."""

    from_: str | None = Field(default=None, alias="from")
    kind: VersionKind = VersionKind.SEQUENCE
    format: str | None = None
    # Zone of naive timestamps (IANA name); sources that send UTC offsets need none.
    timezone: str = "UTC"

    _format = field_validator("format")(_strptime_format)
    _zone = field_validator("timezone")(_time_zone)

    @model_validator(mode="after")
    def _needs_path(self) -> VersionSpec:
        if self.kind is not VersionKind.ARRIVAL and self.from_ is None:
            raise ValueError(f"version kind {self.kind.value!r} needs 'from' (the source field)")
        return self


class MappingSpec(_Spec):
    """One system's records of one domain -> canonical fields."""

    key: ValueSpec
    version: VersionSpec = Field(default_factory=lambda: VersionSpec(kind=VersionKind.ARRIVAL))
    # When the source last changed the record, for "most recent" survivorship.
    timestamp: ValueSpec | None = None
    fields: dict[str, ValueSpec]
    # Strict: a source field no mapping reads is an error (catches renamed columns).
    strict: bool = False
    ignore: list[str] = Field(default_factory=list)


ValueOp.model_rebuild()
MappingSpec.model_rebuild()
