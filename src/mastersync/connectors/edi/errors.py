"""Structured errors for EDI reading and writing: where it happened and which rule was broken."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Severity = Literal["error", "warning"]

# The rules a reader reports. An "error" inside a transaction set or message rejects it; a
# "warning" is noted (and acknowledged as "accepted with errors") but the data is still used.
Rule = Literal[
    "segment_count",  # SE01 / UNT 0074 differs from the segments counted
    "set_count",  # GE01 / UNE 0060 / UNZ 0036 differs from the sets or messages counted
    "group_count",  # IEA01 / UNZ 0036 differs from the groups counted
    "control_number_mismatch",  # header and trailer control numbers / references differ
    "duplicate_control_number",  # two sets in a group (messages in an interchange) share one
    "missing_segment",  # a trailer (SE, GE, IEA, UNT, UNE, UNZ) or a required segment is absent
    "missing_element",  # a required element is empty
    "unexpected_segment",  # a segment where the envelope structure does not allow it
    "unexpected_data",  # text outside any interchange
    "invalid_segment_id",  # a segment tag that is not 2-3 upper-case letters or digits
    "invalid_qualifier",  # a code that is not one the standard allows there
    "invalid_number",  # a numeric field that is not a number
    "invalid_delimiters",  # delimiters that clash or cannot be used
    "invalid_envelope",  # an ISA, UNA or UNB that cannot be read as such
    "bad_character",  # a character outside the syntax level's repertoire (or a control char)
    "unsupported_syntax",  # an EDIFACT syntax identifier this reader has no repertoire for
    "unterminated_segment",  # the input ends inside a segment
    "no_interchange",  # the input holds no interchange at all
]


@dataclass(frozen=True, slots=True)
class EdiError:
    """One problem in an EDI file, located by envelope ids and 1-based positions."""

    rule: Rule
    message: str
    severity: Severity = "error"
    interchange_control: str = ""
    group_control: str = ""
    set_control: str = ""  # X12 ST02, EDIFACT UNH message reference
    set_id: str = ""  # X12 ST01 ("832"), EDIFACT message type ("PRICAT")
    segment_id: str = ""
    segment_position: int | None = None  # within the set/message, its header being 1
    file_position: int | None = None  # the segment's ordinal in the whole input
    element_index: int | None = None  # 1-based, as in "SE01"
    component_index: int | None = None  # 1-based
    offset: int | None = None  # 0-based character offset in the decoded input
    value: str = ""  # the offending data, echoed in acknowledgements

    def __str__(self) -> str:
        where = []
        if self.interchange_control:
            where.append(f"interchange {self.interchange_control}")
        if self.group_control:
            where.append(f"group {self.group_control}")
        if self.set_control or self.set_id:
            where.append(f"set {self.set_id} {self.set_control}".rstrip())
        if self.segment_id:
            seg = self.segment_id
            if self.element_index is not None:
                seg += f"{self.element_index:02d}"
                if self.component_index is not None:
                    seg += f"-{self.component_index}"
            where.append(seg)
        if self.segment_position is not None:
            where.append(f"segment {self.segment_position} of set")
        if self.file_position is not None:
            where.append(f"segment {self.file_position} of file")
        return f"{self.severity} {self.rule}: {self.message} ({', '.join(where)})"


class EdiWriteError(ValueError):
    """Input that a writer refuses to serialise, naming the record and field at fault."""

    def __init__(self, message: str, *, record_index: int | None = None, field: str = "") -> None:
        self.record_index = record_index
        self.field = field
        where = []
        if record_index is not None:
            where.append(f"record {record_index}")
        if field:
            where.append(f"field {field!r}")
        super().__init__(f"{message} ({', '.join(where)})" if where else message)
