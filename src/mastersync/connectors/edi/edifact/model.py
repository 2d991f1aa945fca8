"""The EDIFACT document model: interchanges of (optionally grouped) messages."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

from mastersync.connectors.edi.errors import EdiError
from mastersync.connectors.edi.model import Record, Segment

Status = Literal["A", "E", "R"]


@dataclass(frozen=True, slots=True)
class EdifactDelimiters:
    """Service characters as in UNA; `suffix` is written after each terminator, ignored on input."""

    component: str = ":"
    element: str = "+"
    decimal: str = "."
    release: str = "?"  # " " means no release character
    repetition: str = " "  # UNA position 5: reserved (" ") before syntax version 4
    segment: str = "'"
    suffix: str = "\n"

    @property
    def una(self) -> str:
        """The UNA service string advice for these characters."""
        return (
            "UNA"
            + self.component
            + self.element
            + self.decimal
            + self.release
            + self.repetition
            + self.segment
        )


DEFAULT_DELIMITERS = EdifactDelimiters()
# Without UNA, syntax level B uses the information separators as service characters.
UNOB_DELIMITERS = EdifactDelimiters("\x1f", "\x1d", ".", " ", " ", "\x1c", "")


def _status(errors: list[EdiError]) -> Status:
    if any(e.severity == "error" for e in errors):
        return "R"
    return "E" if errors else "A"


@dataclass(slots=True)
class Message:
    """One UNH..UNT message, its segments (UNH and UNT included), errors and records."""

    reference: str  # UNH 0062
    type: str  # S009 0065, e.g. "PRICAT"
    version: str  # S009 0052, e.g. "D"
    release: str  # S009 0054, e.g. "96A"
    agency: str  # S009 0051, e.g. "UN"
    association: str  # S009 0057, e.g. "EAN005"
    header: Segment
    segments: list[Segment] = field(default_factory=list)
    trailer: Segment | None = None
    errors: list[EdiError] = field(default_factory=list)
    records: list[Record] = field(default_factory=list)

    @property
    def identifier(self) -> str:
        """The message identifier as written: type:version:release:agency[:association]."""
        parts = [self.type, self.version, self.release, self.agency, self.association]
        return ":".join(parts).rstrip(":")

    @property
    def status(self) -> Status:
        """A accepted, E accepted with errors (warnings only), R rejected."""
        return _status(self.errors)

    @property
    def accepted(self) -> bool:
        """True unless the message is rejected."""
        return self.status != "R"


@dataclass(slots=True)
class EdifactGroup:
    """One UNG..UNE functional group."""

    group_id: str  # UNG 0038, e.g. "ORDERS"
    sender_id: str
    sender_qualifier: str
    recipient_id: str
    recipient_qualifier: str
    date: str
    time: str
    reference: str  # UNG 0048
    header: Segment
    trailer: Segment | None = None
    messages: list[Message] = field(default_factory=list)
    errors: list[EdiError] = field(default_factory=list)


@dataclass(slots=True)
class EdifactInterchange:
    """One UNB..UNZ interchange with the service characters that applied to it."""

    delimiters: EdifactDelimiters
    una: bool  # whether a UNA preceded the UNB
    syntax_id: str  # S001 0001, e.g. "UNOC"
    syntax_version: str  # S001 0002, e.g. "3"
    sender_id: str
    sender_qualifier: str
    recipient_id: str
    recipient_qualifier: str
    date: str
    time: str
    control_reference: str  # UNB 0020
    application_reference: str  # UNB 0026
    test_indicator: str  # UNB 0035
    header: Segment
    trailer: Segment | None = None
    groups: list[EdifactGroup] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)  # those outside any group
    errors: list[EdiError] = field(default_factory=list)

    @property
    def all_messages(self) -> Iterator[Message]:
        """Ungrouped messages, then those of each group."""
        yield from self.messages
        for group in self.groups:
            yield from group.messages


@dataclass(slots=True)
class EdifactDocument:
    """Everything read from one EDIFACT input."""

    interchanges: list[EdifactInterchange] = field(default_factory=list)
    errors: list[EdiError] = field(default_factory=list)

    @property
    def messages(self) -> Iterator[Message]:
        """Every message of every interchange."""
        for ic in self.interchanges:
            yield from ic.all_messages

    @property
    def all_errors(self) -> list[EdiError]:
        """File, interchange, group and message errors, in input order."""
        out = list(self.errors)
        for ic in self.interchanges:
            out.extend(ic.errors)
            for group in ic.groups:
                out.extend(group.errors)
            for msg in ic.all_messages:
                out.extend(msg.errors)
        return sorted(out, key=lambda e: e.file_position or 0)

    def records(
        self, record_type: str | None = None, *, include_rejected: bool = False
    ) -> list[Record]:
        """Native records of the accepted messages (all if asked), optionally of one type."""
        return [
            r
            for msg in self.messages
            if msg.accepted or include_rejected
            for r in msg.records
            if record_type is None or r["record_type"] == record_type
        ]
