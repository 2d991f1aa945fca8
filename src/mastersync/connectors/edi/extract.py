"""The context a record extractor works in, shared by X12 sets and EDIFACT messages."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from mastersync.connectors.edi.errors import EdiError, Rule, Severity
from mastersync.connectors.edi.model import Record, Segment

_X12_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)\Z")


def x12_number(value: str) -> str | None:
    """An X12 R/N value as given, or None when it is not a number."""
    return value if _X12_NUMBER.match(value) else None


@dataclass(frozen=True, slots=True)
class Ids:
    """The envelope ids every finding of a set or message carries."""

    interchange_control: str
    group_control: str
    set_control: str
    set_id: str

    @classmethod
    def of(cls, base: Record) -> Ids:
        """The ids out of a record's envelope fields."""
        return cls(
            base["interchange_control"], base["group_control"], base["set_control"], base["set_id"]
        )


@dataclass(slots=True)
class Context:
    """One set or message being turned into records: its segments, ids and error list."""

    segments: list[Segment]  # header and (when present) trailer included
    has_trailer: bool
    errors: list[EdiError]
    records: list[Record]
    ids: Ids
    base: Record  # fields copied into every record
    normalise: Callable[[str], str | None] = x12_number
    header_position: tuple[int, int] = field(default=(0, 0))  # (file_position, offset)

    @property
    def body(self) -> list[Segment]:
        """The segments between header and trailer."""
        return self.segments[1:-1] if self.has_trailer else self.segments[1:]

    def record(self, record_type: str, seg: Segment) -> Record:
        """A new record of `record_type`, located at `seg`."""
        rec = {"record_type": record_type, **self.base}
        rec["position"] = str(seg.position)
        rec["file_position"] = str(seg.file_position)
        return rec

    def error(
        self,
        rule: Rule,
        message: str,
        seg: Segment,
        *,
        element: int | None = None,
        component: int | None = None,
        severity: Severity = "warning",
        value: str = "",
    ) -> None:
        """File a finding against the set or message (a warning unless said otherwise)."""
        self.errors.append(
            EdiError(
                rule,
                message,
                severity,
                segment_id=seg.id,
                segment_position=seg.position,
                file_position=seg.file_position,
                element_index=element,
                component_index=component,
                offset=seg.offset,
                value=value,
                interchange_control=self.ids.interchange_control,
                group_control=self.ids.group_control,
                set_control=self.ids.set_control,
                set_id=self.ids.set_id,
            )
        )

    def require(self, seg_id: str, position: int = 2) -> None:
        """Reject the set or message when its body has no `seg_id` segment."""
        if any(s.id == seg_id for s in self.body):
            return
        file_position, offset = self.header_position
        self.errors.append(
            EdiError(
                "missing_segment",
                f"{self.ids.set_id} needs a {seg_id} segment",
                segment_id=seg_id,
                segment_position=position,
                file_position=file_position,
                offset=offset,
                interchange_control=self.ids.interchange_control,
                group_control=self.ids.group_control,
                set_control=self.ids.set_control,
                set_id=self.ids.set_id,
            )
        )

    def number(self, rec: Record, key: str, seg: Segment, index: int, component: int = 1) -> None:
        """Copy a numeric value into `rec[key]` (normalised), noting values that are not numbers."""
        value = seg.get(index, component)
        if not value:
            return
        normal = self.normalise(value)
        if normal is None:
            where = f"{seg.id}{index:02d}" + (f"-{component}" if component > 1 else "")
            self.error(
                "invalid_number",
                f"{where} {value!r} is not a number",
                seg,
                element=index,
                component=component if component > 1 else None,
                value=value,
            )
            normal = value
        rec[key] = normal


def put(rec: Record, key: str, value: str) -> None:
    """Set a field only when the value is non-empty (records carry no empty strings)."""
    if value:
        rec[key] = value


def fill(rec: Record, defaults: Record) -> None:
    """Add every field of `defaults` that `rec` does not have yet."""
    for key, value in defaults.items():
        rec.setdefault(key, value)


def settle_description(rec: Record) -> None:
    """Give every record a `description` when any coded description text exists."""
    if "description" not in rec:
        for key, value in rec.items():
            if key.startswith("description_") and not key.endswith("_code"):
                rec["description"] = value
                return
