"""Build interchanges, groups and messages from EDIFACT segments, checking every envelope."""

from __future__ import annotations

from dataclasses import replace

from mastersync.connectors.edi.edifact.model import (
    DEFAULT_DELIMITERS,
    EdifactDocument,
    EdifactGroup,
    EdifactInterchange,
    Message,
)
from mastersync.connectors.edi.edifact.records import extract_records
from mastersync.connectors.edi.errors import EdiError, Rule, Severity
from mastersync.connectors.edi.model import Segment

# rule, message, element index, component index, offset, offending value, severity
Finding = tuple[Rule, str, int | None, int | None, int, str, Severity]


class EnvelopeBuilder:
    """Segment handlers for UNG/UNH/UNT/UNE/UNZ; errors go to the innermost open level."""

    def __init__(self, extract: bool) -> None:
        self.extract = extract
        self.doc = EdifactDocument()
        self.d = DEFAULT_DELIMITERS
        self.una = False
        self.repetitions = False
        self.file_position = 0
        self.ic: EdifactInterchange | None = None
        self.group: EdifactGroup | None = None
        self.msg: Message | None = None
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
        msg: Message | None = None,
    ) -> EdiError:
        msg = msg or self.msg
        return EdiError(
            rule,
            message,
            severity,
            interchange_control=self.ic.control_reference if self.ic else "",
            group_control=self.group.reference if self.group else "",
            set_control=msg.reference if msg else "",
            set_id=msg.type if msg else "",
            segment_id=seg.id if seg else "",
            segment_position=seg.position if seg else None,
            file_position=seg.file_position if seg else None,
            element_index=element,
            component_index=component,
            offset=offset if offset is not None else (seg.offset if seg else None),
            value=value,
        )

    def _report(self, error: EdiError) -> None:
        if self.msg is not None:
            self.msg.errors.append(error)
        elif self.group is not None:
            self.group.errors.append(error)
        elif self.ic is not None:
            self.ic.errors.append(error)
        else:
            self.doc.errors.append(error)

    def _flush(self, seg: Segment) -> None:
        for rule, text, element, component, offset, value, severity in self._pending:
            self._report(
                self._error(
                    rule,
                    text,
                    seg,
                    element=element,
                    component=component,
                    offset=offset,
                    value=value,
                    severity=severity,
                )
            )
        self._pending = []

    @staticmethod
    def _add(msg: Message, seg: Segment) -> None:
        seg.position = len(msg.segments) + 1
        msg.segments.append(seg)

    def _ung(self, seg: Segment) -> None:
        assert self.ic is not None
        self._close_message(seg)
        self._close_group(seg)
        if self.ic.messages:
            self._report(self._error("unexpected_segment", "UNG after ungrouped messages", seg))
        self.group = EdifactGroup(
            group_id=seg.get(1),
            sender_id=seg.get(2, 1),
            sender_qualifier=seg.get(2, 2),
            recipient_id=seg.get(3, 1),
            recipient_qualifier=seg.get(3, 2),
            date=seg.get(4, 1),
            time=seg.get(4, 2),
            reference=seg.get(5),
            header=seg,
        )
        self.ic.groups.append(self.group)

    def _unh(self, seg: Segment) -> None:
        assert self.ic is not None
        self._close_message(seg)
        if self.group is None and self.ic.groups:
            self._report(self._error("unexpected_segment", "UNH outside a group after UNE", seg))
        e = seg.element(2)
        msg = Message(
            reference=seg.get(1),
            type=e.component(1),
            version=e.component(2),
            release=e.component(3),
            agency=e.component(4),
            association=e.component(5),
            header=seg,
        )
        seen = {m.reference for m in self.ic.all_messages}
        (self.group.messages if self.group else self.ic.messages).append(msg)
        self.msg = msg
        self._add(msg, seg)
        if not msg.reference:
            msg.errors.append(self._error("missing_element", "UNH 0062 is empty", seg, element=1))
        elif msg.reference in seen:
            msg.errors.append(
                self._error(
                    "duplicate_control_number",
                    f"message reference {msg.reference} is already used in this interchange",
                    seg,
                    element=1,
                    value=msg.reference,
                )
            )
        if not msg.type:
            msg.errors.append(
                self._error(
                    "missing_element", "UNH 0065 message type is empty", seg, element=2, component=1
                )
            )

    def _unt(self, seg: Segment) -> None:
        msg = self.msg
        if msg is None:
            self._report(self._error("unexpected_segment", "UNT without an open UNH", seg))
            return
        self._add(msg, seg)
        msg.trailer = seg
        self._flush(seg)
        count, ref = seg.get(1), seg.get(2)
        if not count.isdigit() or int(count) != len(msg.segments):
            msg.errors.append(
                self._error(
                    "segment_count",
                    f"UNT 0074 says {count!r} segments, the message has {len(msg.segments)} "
                    "(UNH and UNT included)",
                    seg,
                    element=1,
                    value=count,
                )
            )
        if ref != msg.reference:
            msg.errors.append(
                self._error(
                    "control_number_mismatch",
                    f"UNT 0062 {ref!r} does not match UNH 0062 {msg.reference!r}",
                    seg,
                    element=2,
                    value=ref,
                )
            )
        self._finish_message(msg)

    def _une(self, seg: Segment) -> None:
        self._close_message(seg)
        group = self.group
        if group is None:
            self._report(self._error("unexpected_segment", "UNE without an open UNG", seg))
            return
        self._flush(seg)
        group.trailer = seg
        count, ref = seg.get(1), seg.get(2)
        if not count.isdigit() or int(count) != len(group.messages):
            group.errors.append(
                self._error(
                    "set_count",
                    f"UNE 0060 says {count!r} messages, the group has {len(group.messages)}",
                    seg,
                    element=1,
                    value=count,
                )
            )
        if ref != group.reference:
            group.errors.append(
                self._error(
                    "control_number_mismatch",
                    f"UNE 0048 {ref!r} does not match UNG 0048 {group.reference!r}",
                    seg,
                    element=2,
                    value=ref,
                )
            )
        self.group = None

    def _unz(
        self, seg: Segment | None, *, ended_at: int | None = None, by: Segment | str = ""
    ) -> None:
        """Close the interchange at its UNZ, or (seg None) at text offset ``ended_at``, where
        the input ends or ``by`` (a new UNB segment, or "UNA") begins."""
        self._close_message(seg)
        self._close_group(seg)
        ic = self.ic
        assert ic is not None
        if seg is not None:
            self._flush(seg)
        if seg is None:
            # Located where the UNZ was due: the place of the segment that came instead.
            if isinstance(by, Segment):
                due, what = by.file_position, f"UNB at segment {by.file_position} of the file"
            else:
                due, what = self.file_position + 1, "a UNA" if by else "end of input"
            err = self._error(
                "missing_segment",
                f"interchange {ic.control_reference} has no UNZ (ended by {what})",
                None,
            )
            ic.errors.append(replace(err, segment_id="UNZ", file_position=due, offset=ended_at))
        else:
            ic.trailer = seg
            count, ref = seg.get(1), seg.get(2)
            rule: Rule = "group_count" if ic.groups else "set_count"
            counted = len(ic.groups) if ic.groups else len(ic.messages)
            what = "groups" if ic.groups else "messages"
            if not count.isdigit() or int(count) != counted:
                ic.errors.append(
                    self._error(
                        rule,
                        f"UNZ 0036 says {count!r}, the interchange has {counted} {what}",
                        seg,
                        element=1,
                        value=count,
                    )
                )
            if ref != ic.control_reference:
                ic.errors.append(
                    self._error(
                        "control_number_mismatch",
                        f"UNZ 0020 {ref!r} does not match UNB 0020 {ic.control_reference!r}",
                        seg,
                        element=2,
                        value=ref,
                    )
                )
        self.ic = None
        if seg is not None:
            # After a UNZ the next interchange starts from the defaults unless it has a UNA.
            self.d, self.una, self.repetitions = DEFAULT_DELIMITERS, False, False

    def _close_message(self, by: Segment | None) -> None:
        msg = self.msg
        if msg is None:
            return
        what = f"{by.id} at segment {by.file_position} of the file" if by else "end of input"
        msg.errors.append(
            EdiError(
                "missing_segment",
                f"message {msg.reference} has no UNT (ended by {what})",
                interchange_control=self.ic.control_reference if self.ic else "",
                group_control=self.group.reference if self.group else "",
                set_control=msg.reference,
                set_id=msg.type,
                segment_id="UNT",
                segment_position=len(msg.segments) + 1,
                file_position=by.file_position if by else None,
                offset=by.offset if by else None,
            )
        )
        self._finish_message(msg)

    def _close_group(self, by: Segment | None) -> None:
        group = self.group
        if group is None:
            return
        what = f"{by.id} at segment {by.file_position} of the file" if by else "end of input"
        err = self._error(
            "missing_segment", f"group {group.reference} has no UNE (ended by {what})", by
        )
        group.errors.append(replace(err, segment_id="UNE"))
        self.group = None

    def _finish_message(self, msg: Message) -> None:
        self.msg = None
        if self.extract:
            assert self.ic is not None
            extract_records(self.ic, self.group, msg)
