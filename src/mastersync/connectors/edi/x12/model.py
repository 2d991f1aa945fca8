"""The X12 document model: interchanges of functional groups of transaction sets."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

from mastersync.connectors.edi.errors import EdiError
from mastersync.connectors.edi.model import Record, Segment

Status = Literal["A", "E", "R"]


@dataclass(frozen=True, slots=True)
class X12Delimiters:
    """The four X12 delimiters; `suffix` is written after each terminator and ignored on input."""

    element: str = "*"
    component: str = ":"
    repetition: str = "^"  # "" when the version has none (ISA12 before 00402)
    segment: str = "~"
    suffix: str = "\n"


def _status(errors: list[EdiError]) -> Status:
    if any(e.severity == "error" for e in errors):
        return "R"
    return "E" if errors else "A"


@dataclass(slots=True)
class TransactionSet:
    """One ST..SE transaction set, its segments (ST and SE included), errors and records."""

    id: str  # ST01
    control_number: str  # ST02
    header: Segment
    segments: list[Segment] = field(default_factory=list)
    trailer: Segment | None = None
    errors: list[EdiError] = field(default_factory=list)
    records: list[Record] = field(default_factory=list)

    @property
    def status(self) -> Status:
        """A accepted, E accepted with errors (warnings only), R rejected."""
        return _status(self.errors)

    @property
    def accepted(self) -> bool:
        """True unless the set is rejected."""
        return self.status != "R"


@dataclass(slots=True)
class FunctionalGroup:
    """One GS..GE functional group."""

    functional_id: str  # GS01, e.g. "SC" for 832
    application_sender: str  # GS02
    application_receiver: str  # GS03
    date: str  # GS04
    time: str  # GS05
    control_number: str  # GS06
    agency: str  # GS07
    version: str  # GS08, e.g. "004010"
    header: Segment | None  # None when sets arrived without a GS
    trailer: Segment | None = None
    sets: list[TransactionSet] = field(default_factory=list)
    errors: list[EdiError] = field(default_factory=list)


@dataclass(slots=True)
class Interchange:
    """One ISA..IEA interchange with the delimiters read from its own ISA."""

    delimiters: X12Delimiters
    sender_qualifier: str  # ISA05
    sender_id: str  # ISA06, padding removed
    receiver_qualifier: str  # ISA07
    receiver_id: str  # ISA08, padding removed
    date: str  # ISA09 YYMMDD
    time: str  # ISA10 HHMM
    standards_id: str  # ISA11 before 00402 ("U"); "" when ISA11 is the repetition separator
    version: str  # ISA12, e.g. "00401"
    control_number: str  # ISA13
    ack_requested: str  # ISA14
    usage_indicator: str  # ISA15: P production, T test, I information
    header: Segment
    trailer: Segment | None = None
    groups: list[FunctionalGroup] = field(default_factory=list)
    errors: list[EdiError] = field(default_factory=list)

    @property
    def sets(self) -> Iterator[TransactionSet]:
        """Every transaction set of every group, in order."""
        for group in self.groups:
            yield from group.sets


@dataclass(slots=True)
class X12Document:
    """Everything read from one X12 input: interchanges plus errors found outside them."""

    interchanges: list[Interchange] = field(default_factory=list)
    errors: list[EdiError] = field(default_factory=list)

    @property
    def sets(self) -> Iterator[TransactionSet]:
        """Every transaction set of every interchange, in order."""
        for interchange in self.interchanges:
            yield from interchange.sets

    @property
    def all_errors(self) -> list[EdiError]:
        """File, interchange, group and set errors, in input order."""
        out = list(self.errors)
        for ic in self.interchanges:
            out.extend(ic.errors)
            for group in ic.groups:
                out.extend(group.errors)
                for ts in group.sets:
                    out.extend(ts.errors)
        return sorted(out, key=lambda e: e.file_position or 0)

    def records(
        self, record_type: str | None = None, *, include_rejected: bool = False
    ) -> list[Record]:
        """Native records of the accepted sets (all sets if asked), optionally of one type."""
        return [
            r
            for ts in self.sets
            if ts.accepted or include_rejected
            for r in ts.records
            if record_type is None or r["record_type"] == record_type
        ]
