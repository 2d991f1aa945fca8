"""Build interchanges, groups and sets from X12 segments, checking every envelope on the way."""

from __future__ import annotations

from dataclasses import replace

from mastersync.connectors.edi.errors import EdiError, Rule, Severity
from mastersync.connectors.edi.model import Segment
from mastersync.connectors.edi.x12.model import (
    FunctionalGroup,
    Interchange,
    TransactionSet,
    X12Document,
)
from mastersync.connectors.edi.x12.records import extract_records

# rule, message, element index, offset, offending value
Finding = tuple[Rule, str, int | None, int, str]


def same_control(a: str, b: str) -> bool:
    """Control numbers match as text, or as numbers when both are digits (N0 fields)."""
    return a == b or (a.isdigit() and b.isdigit() and int(a) == int(b))


class EnvelopeBuilder:
    """Segment handlers for GS/ST/SE/GE/IEA; errors go to the innermost open level."""

    def __init__(self, extract: bool) -> None:
        self.extract = extract
        self.doc = X12Document()
        self.file_position = 0
        self.ic: Interchange | None = None
        self.group: FunctionalGroup | None = None
        self.ts: TransactionSet | None = None
        self._pending: list[Finding] = []

    def _error(
        self,
        rule: Rule,
        message: str,
        seg: Segment | None,
        *,
        element: int | None = None,
        component: int | None = None,
        severity: Severity = "error",
        value: str = "",
        offset: int | None = None,
        ts: TransactionSet | None = None,
    ) -> EdiError:
        ic, group = self.ic, self.group
        ts = ts or self.ts
        return EdiError(
            rule,
            message,
            severity,
            interchange_control=ic.control_number if ic else "",
            group_control=group.control_number if group else "",
            set_control=ts.control_number if ts else "",
            set_id=ts.id if ts else "",
            segment_id=seg.id if seg else "",
            segment_position=seg.position if seg else None,
            file_position=seg.file_position if seg else None,
            element_index=element,
            component_index=component,
            offset=offset if offset is not None else (seg.offset if seg else None),
            value=value,
        )

    def _report(self, error: EdiError) -> None:
        """File an error at the innermost open level: set, else group, else interchange."""
        if self.ts is not None:
            self.ts.errors.append(error)
        elif self.group is not None:
            self.group.errors.append(error)
        elif self.ic is not None:
            self.ic.errors.append(error)
        else:
            self.doc.errors.append(error)

    def _flush(self, seg: Segment) -> None:
        for rule, message, element, offset, value in self._pending:
            err = self._error(rule, message, seg, element=element, offset=offset, value=value)
            self._report(err)
        self._pending = []

    @staticmethod
    def _add(ts: TransactionSet, seg: Segment) -> None:
        seg.position = len(ts.segments) + 1
        ts.segments.append(seg)

    def _gs(self, seg: Segment) -> None:
        self._close_set(seg)
        self._close_group(seg)
        assert self.ic is not None
        self.group = FunctionalGroup(
            functional_id=seg.get(1),
            application_sender=seg.get(2),
            application_receiver=seg.get(3),
            date=seg.get(4),
            time=seg.get(5),
            control_number=seg.get(6),
            agency=seg.get(7),
            version=seg.get(8),
            header=seg,
        )
        self.ic.groups.append(self.group)
        self._flush(seg)
        if not self.group.control_number:
            self._report(
                self._error("missing_element", "GS06 group control number is empty", seg, element=6)
            )

    def _st(self, seg: Segment) -> None:
        assert self.ic is not None
        if self.group is None:
            self._report(self._error("missing_segment", "ST without a GS functional group", seg))
            self.group = FunctionalGroup("", "", "", "", "", "", "", "", header=None)
            self.ic.groups.append(self.group)
        self._close_set(seg)
        seen = {ts.control_number for ts in self.group.sets}
        ts = TransactionSet(seg.get(1), seg.get(2), seg)
        self.group.sets.append(ts)
        self.ts = ts
        self._add(ts, seg)
        self._flush(seg)
        if not ts.id:
            ts.errors.append(self._error("missing_element", "ST01 set id is empty", seg, element=1))
        if not ts.control_number:
            ts.errors.append(
                self._error("missing_element", "ST02 control number is empty", seg, element=2)
            )
        elif ts.control_number in seen:
            ts.errors.append(
                self._error(
                    "duplicate_control_number",
                    f"ST02 {ts.control_number} is already used in this group",
                    seg,
                    element=2,
                    value=ts.control_number,
                )
            )

    def _se(self, seg: Segment) -> None:
        ts = self.ts
        if ts is None:
            self._report(self._error("unexpected_segment", "SE without an open ST", seg))
            return
        self._add(ts, seg)
        ts.trailer = seg
        self._flush(seg)
        count, control = seg.get(1), seg.get(2)
        if not count.isdigit():
            ts.errors.append(
                self._error(
                    "segment_count", f"SE01 {count!r} is not a number", seg, element=1, value=count
                )
            )
        elif int(count) != len(ts.segments):
            ts.errors.append(
                self._error(
                    "segment_count",
                    f"SE01 says {count} segments, the set has {len(ts.segments)} "
                    "(ST and SE included)",
                    seg,
                    element=1,
                    value=count,
                )
            )
        if control != ts.control_number:
            ts.errors.append(
                self._error(
                    "control_number_mismatch",
                    f"SE02 {control!r} does not match ST02 {ts.control_number!r}",
                    seg,
                    element=2,
                    value=control,
                )
            )
        self._finish_set(ts)

    def _ge(self, seg: Segment) -> None:
        self._close_set(seg)
        self._flush(seg)
        group = self.group
        if group is None:
            self._report(self._error("unexpected_segment", "GE without an open GS", seg))
            return
        group.trailer = seg
        count, control = seg.get(1), seg.get(2)
        if not count.isdigit() or int(count) != len(group.sets):
            group.errors.append(
                self._error(
                    "set_count",
                    f"GE01 says {count!r} sets, the group has {len(group.sets)}",
                    seg,
                    element=1,
                    value=count,
                )
            )
        if not same_control(control, group.control_number):
            group.errors.append(
                self._error(
                    "control_number_mismatch",
                    f"GE02 {control!r} does not match GS06 {group.control_number!r}",
                    seg,
                    element=2,
                    value=control,
                )
            )
        self.group = None

    def _end_interchange(
        self, seg: Segment | None, *, ended_at: int | None = None, by_isa: bool = False
    ) -> None:
        """Close an interchange at its IEA, or (seg None) at text offset ``ended_at``, where
        the input ends or (``by_isa``) a new ISA begins."""
        self._close_set(seg)
        self._close_group(seg)
        ic = self.ic
        assert ic is not None
        if seg is None:
            # Located where the IEA was due: the next segment's place in the file.
            due = self.file_position + 1
            what = f"ISA at segment {due} of the file" if by_isa else "end of input"
            err = self._error(
                "missing_segment",
                f"interchange {ic.control_number} has no IEA (ended by {what})",
                None,
            )
            ic.errors.append(
                replace(
                    err,
                    segment_id="IEA",
                    file_position=due,
                    offset=ended_at,
                )
            )
            self.ic = None
            return
        ic.trailer = seg
        count, control = seg.get(1), seg.get(2)
        groups = sum(1 for g in ic.groups if g.header is not None)
        if not count.isdigit() or int(count) != groups:
            ic.errors.append(
                self._error(
                    "group_count",
                    f"IEA01 says {count!r} groups, the interchange has {groups}",
                    seg,
                    element=1,
                    value=count,
                )
            )
        if not same_control(control, ic.control_number):
            ic.errors.append(
                self._error(
                    "control_number_mismatch",
                    f"IEA02 {control!r} does not match ISA13 {ic.control_number!r}",
                    seg,
                    element=2,
                    value=control,
                )
            )

    def _close_set(self, by: Segment | None) -> None:
        ts = self.ts
        if ts is None:
            return
        what = f"{by.id} at segment {by.file_position} of the file" if by else "end of input"
        ts.errors.append(
            EdiError(
                "missing_segment",
                f"set {ts.id} {ts.control_number} has no SE (ended by {what})",
                interchange_control=self.ic.control_number if self.ic else "",
                group_control=self.group.control_number if self.group else "",
                set_control=ts.control_number,
                set_id=ts.id,
                segment_id="SE",
                segment_position=len(ts.segments) + 1,
                file_position=by.file_position if by else None,
                offset=by.offset if by else None,
            )
        )
        self._finish_set(ts)

    def _close_group(self, by: Segment | None) -> None:
        group = self.group
        if group is None:
            return
        if group.header is not None:
            what = f"{by.id} at segment {by.file_position} of the file" if by else "end of input"
            err = self._error(
                "missing_segment", f"group {group.control_number} has no GE (ended by {what})", by
            )
            group.errors.append(replace(err, segment_id="GE"))
        self.group = None

    def _finish_set(self, ts: TransactionSet) -> None:
        self.ts = None
        if self.extract:
            # Rejected sets are extracted too, for inspection; X12Document.records skips them.
            assert self.ic is not None
            assert self.group is not None
            extract_records(self.ic, self.group, ts)
