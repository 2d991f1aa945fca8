"""Problems: what went wrong with one record, named by field and rule."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum


class ProblemKind(StrEnum):
    """The classes of failure that land in the exceptions inbox."""

    PARSE_ERROR = "parse_error"
    MAPPING_ERROR = "mapping_error"
    VALIDATION_ERROR = "validation_error"
    OWNERSHIP_VIOLATION = "ownership_violation"
    STALE_UPDATE = "stale_update"
    UNKNOWN_REFERENCE = "unknown_reference"
    AMBIGUOUS_MATCH = "ambiguous_match"
    DEAD_LETTER = "dead_letter"
    # Reconciliation found a system disagreeing with the hub (a record gone from its source).
    DRIFT = "drift"


@dataclass(frozen=True, slots=True)
class Problem:
    """One broken rule: which field, which rule, and a sentence a person can act on."""

    kind: ProblemKind
    field: str | None
    rule: str
    message: str
    # Errors reject the record; warnings are recorded and the record goes on.
    severity: str = "error"

    @property
    def is_error(self) -> bool:
        """True when the problem rejects the record."""
        return self.severity == "error"

    def signature(self, system: str, domain: str) -> str:
        """A stable id grouping problems of the same class (not the same record)."""
        basis = "|".join((self.kind.value, system, domain, self.field or "", self.rule))
        return hashlib.sha1(basis.encode(), usedforsecurity=False).hexdigest()[:12]


def shown(value: object) -> str:
    """A value as a message quotes it: text in quotes, numbers and booleans as JSON writes
    them ("-5", "true"), not as Python's repr ("Decimal('-5')", "True")."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return str(value)
    if value is None:
        return "null"
    return repr(value)


class ConfigError(Exception):
    """A landscape or mapping that cannot work; ``loc`` is the key path inside its document."""

    def __init__(self, message: str, loc: tuple[str | int, ...] = (), source: str | None = None):
        super().__init__(message)
        self.message = message
        self.loc = loc
        self.source = source

    def __str__(self) -> str:
        where = ".".join(str(p) for p in self.loc)
        prefix = f"{self.source}: " if self.source else ""
        return f"{prefix}{where}: {self.message}" if where else f"{prefix}{self.message}"


class ConfigErrors(ConfigError):
    """Several config errors found in one pass (each independent part checked)."""

    def __init__(self, errors: list[ConfigError]):
        super().__init__(errors[0].message, errors[0].loc, errors[0].source)
        self.errors = errors
