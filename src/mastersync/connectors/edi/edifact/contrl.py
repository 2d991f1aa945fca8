"""CONTRL syntax and service report for a received interchange: UCI, UCF, UCM, UCS, UCD."""

from __future__ import annotations

from datetime import datetime

from mastersync.connectors.edi.edifact.charset import KNOWN
from mastersync.connectors.edi.edifact.envelope import (
    EdifactEnvelope,
    ElementValue,
    SegmentSpec,
    render_interchange,
)
from mastersync.connectors.edi.edifact.model import (
    DEFAULT_DELIMITERS,
    EdifactDelimiters,
    EdifactGroup,
    EdifactInterchange,
    Message,
)
from mastersync.connectors.edi.errors import EdiError, EdiWriteError, Rule

# A CONTRL is never answered by a CONTRL: two systems that did would answer each other forever.
CONTRL = "CONTRL"
ACCEPTED, REJECTED = "7", "4"  # 0083: acknowledged (lower levels too unless rejected) / rejected
# 0085 syntax error codes for each rule.
ERROR_CODES: dict[Rule, str] = {
    "unsupported_syntax": "2",
    "invalid_qualifier": "12",
    "invalid_number": "12",
    "missing_segment": "13",
    "missing_element": "13",
    "unexpected_segment": "15",
    "invalid_segment_id": "15",
    "unterminated_segment": "18",
    "bad_character": "21",
    "invalid_delimiters": "22",
    "invalid_envelope": "18",
    "duplicate_control_number": "26",
    "control_number_mismatch": "28",
    "segment_count": "29",
    "set_count": "29",
    "group_count": "29",
}


def _code(e: EdiError) -> str:
    return ERROR_CODES.get(e.rule, "18")


def _pointer(e: EdiError) -> tuple[str, ...]:
    return (str(e.element_index or ""), str(e.component_index or ""))


def _first_error(errors: list[EdiError]) -> list[ElementValue]:
    """0085, 0013 and S011 of the first error-severity finding, if any."""
    for e in errors:
        if e.severity == "error":
            return [_code(e), e.segment_id, _pointer(e)]
    return []


def _message(msg: Message) -> list[SegmentSpec]:
    ident = (msg.type, msg.version, msg.release, msg.agency, msg.association)
    if msg.accepted:
        return [("UCM", [msg.reference, ident, ACCEPTED])]
    envelope = [e for e in msg.errors if e.severity == "error" and e.segment_id in ("UNH", "UNT")]
    segs: list[SegmentSpec] = [("UCM", [msg.reference, ident, REJECTED, *_first_error(envelope)])]
    for e in msg.errors:
        if e.severity != "error" or e.segment_id in ("UNH", "UNT") or e.segment_position is None:
            continue
        if e.element_index is None:
            segs.append(("UCS", [str(e.segment_position), _code(e)]))
        else:
            segs.append(("UCS", [str(e.segment_position)]))
            segs.append(("UCD", [_code(e), _pointer(e)]))
    return segs


def is_contrl_group(group: EdifactGroup) -> bool:
    """True for a group of CONTRL messages: its UNG names CONTRL, or it holds nothing else."""
    if group.group_id == CONTRL:
        return True
    return bool(group.messages) and all(m.type == CONTRL for m in group.messages)


def needs_contrl(interchange: EdifactInterchange) -> bool:
    """False when the interchange carries CONTRL messages and nothing else to report on."""
    messages = list(interchange.all_messages)
    return not messages or any(m.type != CONTRL for m in messages)


def _group(group: EdifactGroup) -> list[SegmentSpec]:
    errors = [e for e in group.errors if e.severity == "error"]
    ucf: list[ElementValue] = [
        group.reference,
        (group.sender_id, group.sender_qualifier),
        (group.recipient_id, group.recipient_qualifier),
        ACCEPTED,
        *_first_error(errors),
    ]
    segs: list[SegmentSpec] = [("UCF", ucf)]
    for msg in group.messages:
        if msg.type != CONTRL:  # misfiled in a business group: still no answer
            segs += _message(msg)
    return segs


def build_contrl(
    interchange: EdifactInterchange,
    *,
    control_reference: str,
    message_reference: int = 1,
    created: datetime | None = None,
    delimiters: EdifactDelimiters = DEFAULT_DELIMITERS,
    message_version: str = "D:3:UN",
) -> str:
    """A CONTRL interchange reporting on every message (and group) of `interchange`.

    UCI acknowledges the interchange (7) and names its first error, if any (a UNZ count or
    reference); UCM says 7 or 4 per message, with UCS/UCD pointing at the segments and
    elements in error of rejected messages. Sender and recipient are swapped. CONTRL
    messages, and groups of them, are left out; EdiWriteError for an interchange of nothing
    but CONTRL messages (see `needs_contrl`).
    """
    if not needs_contrl(interchange):
        raise EdiWriteError(
            f"interchange {interchange.control_reference!r} holds only CONTRL messages, "
            "which are not answered"
        )
    syntax = interchange.syntax_id if interchange.syntax_id in KNOWN else "UNOC"
    env = EdifactEnvelope(
        sender_id=interchange.recipient_id,
        sender_qualifier=interchange.recipient_qualifier,
        recipient_id=interchange.sender_id,
        recipient_qualifier=interchange.sender_qualifier,
        control_reference=control_reference,
        message_reference=message_reference,
        syntax_id=syntax,
        syntax_version=interchange.syntax_version or "3",
        created=created,
        delimiters=delimiters,
        on_invalid="replace",
    )
    uci: list[ElementValue] = [
        interchange.control_reference,
        (interchange.sender_id, interchange.sender_qualifier),
        (interchange.recipient_id, interchange.recipient_qualifier),
        ACCEPTED,
        *_first_error(interchange.errors),
    ]
    body: list[SegmentSpec] = [("UCI", uci)]
    for msg in interchange.messages:
        if msg.type != CONTRL:
            body += _message(msg)
    for group in interchange.groups:
        if not is_contrl_group(group):
            body += _group(group)
    return render_interchange(env, [(f"CONTRL:{message_version}", body)])
