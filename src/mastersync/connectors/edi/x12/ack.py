"""997 Functional Acknowledgment for a received interchange: AK1/AK2/AK3/AK4/AK5/AK9."""

from __future__ import annotations

from datetime import datetime

from mastersync.connectors.edi.errors import EdiError, EdiWriteError, Rule
from mastersync.connectors.edi.x12.envelope import (
    GroupSpec,
    SegmentSpec,
    X12Envelope,
    render_interchange,
)
from mastersync.connectors.edi.x12.model import (
    FunctionalGroup,
    Interchange,
    TransactionSet,
    X12Delimiters,
)
from mastersync.connectors.edi.x12.scanner import USAGE_INDICATORS, is_version

# Functional acknowledgements travel in FA groups as 997 or 999 sets. Neither is ever
# acknowledged (a note of both sets): two systems that answered them would answer each
# other's answers forever.
ACKNOWLEDGEMENT_GROUP = "FA"
ACKNOWLEDGEMENT_SETS = frozenset({"997", "999"})
# ISA12 of a 997 answering an interchange whose own ISA12 is no X12 version.
DEFAULT_VERSION = "00401"
# ISA15 of a 997 answering an interchange whose own ISA15 is no usage indicator.
DEFAULT_USAGE = "P"

# AK502..AK506 (element 718): errors that concern the set as a whole.
SET_CODES: dict[Rule, str] = {
    "segment_count": "4",
    "duplicate_control_number": "23",
}
# AK304 (element 720): what is wrong with a segment.
SEGMENT_CODES: dict[Rule, str] = {
    "invalid_segment_id": "1",
    "unexpected_segment": "2",
    "missing_segment": "3",
}
# AK403 (element 723): what is wrong with an element; the segment then gets AK304 "8".
ELEMENT_CODES: dict[Rule, str] = {
    "missing_element": "1",
    "bad_character": "6",
    "invalid_number": "6",
    "invalid_qualifier": "7",
}
# AK905..AK909 (element 716): errors in the functional group's envelope.
GROUP_CODES: dict[Rule, str] = {
    "missing_segment": "3",
    "control_number_mismatch": "4",
    "set_count": "5",
}


def _set_codes(ts: TransactionSet) -> list[str]:
    codes: list[str] = []
    for e in ts.errors:
        if e.segment_id == "SE" and e.rule == "missing_segment":
            code = "2"
        elif e.segment_id == "SE" and e.rule == "control_number_mismatch":
            code = "3"
        elif e.segment_id == "ST" and e.rule == "missing_element":
            code = "6" if e.element_index == 1 else "7"
        elif e.rule in SET_CODES:
            code = SET_CODES[e.rule]
        else:
            code = "5"
        if code not in codes:
            codes.append(code)
    return codes[:5]


def _is_segment_error(e: EdiError) -> bool:
    if e.segment_position is None or e.rule in SET_CODES:
        return False
    return not (
        e.segment_id in ("ST", "SE")
        and e.rule in ("missing_segment", "control_number_mismatch", "missing_element")
    )


def _copy(value: str, d: X12Delimiters) -> str:
    """AK404 echoes bad data: delimiter characters in it become spaces."""
    forbidden = d.element + d.component + d.segment + d.repetition
    return "".join(" " if c in forbidden or ord(c) < 32 else c for c in value)[:99]


def _set_segments(ts: TransactionSet, d: X12Delimiters) -> list[SegmentSpec]:
    segs: list[SegmentSpec] = [("AK2", [ts.id, ts.control_number])]
    by_segment: dict[tuple[int, str], list[EdiError]] = {}
    for e in ts.errors:
        if _is_segment_error(e):
            by_segment.setdefault((e.segment_position or 0, e.segment_id), []).append(e)
    for (position, seg_id), errors in sorted(by_segment.items()):
        segment_rules = [e for e in errors if e.rule in SEGMENT_CODES]
        code = SEGMENT_CODES[segment_rules[0].rule] if segment_rules else "8"
        segs.append(("AK3", [seg_id, str(position), "", code]))
        for e in errors:
            if e.rule in ELEMENT_CODES and e.element_index is not None:
                pos: str | tuple[str, ...] = str(e.element_index)
                if e.component_index is not None:
                    pos = (str(e.element_index), str(e.component_index))
                segs.append(("AK4", [pos, "", ELEMENT_CODES[e.rule], _copy(e.value, d)]))
    segs.append(("AK5", [ts.status, *(_set_codes(ts) if ts.status != "A" else [])]))
    return segs


def _group_body(group: FunctionalGroup, d: X12Delimiters) -> list[SegmentSpec]:
    ak1 = [group.functional_id, group.control_number]
    if group.version.isdigit() and int(group.version[:6]) >= 5010:
        ak1.append(group.version)
    body: list[SegmentSpec] = [("AK1", ak1)]
    for ts in group.sets:
        if ts.id not in ACKNOWLEDGEMENT_SETS:  # misfiled in a business group: still no answer
            body.extend(_set_segments(ts, d))
    received = len(group.sets)
    accepted = sum(1 for ts in group.sets if ts.accepted)
    codes = []
    for e in group.errors:
        code = GROUP_CODES.get(e.rule)
        if code and code not in codes:
            codes.append(code)
    if received and not accepted:
        status = "R"
    elif accepted < received:
        status = "P"
    elif codes or any(ts.status == "E" for ts in group.sets):
        status = "E"
    else:
        status = "A"
    declared = group.trailer.get(1) if group.trailer is not None else ""
    included = declared if declared.isdigit() else str(received)
    body.append(("AK9", [status, included, str(received), str(accepted), *codes[:5]]))
    return body


def is_acknowledgement(group: FunctionalGroup) -> bool:
    """True for a group of functional acknowledgements: GS01 FA, or only 997/999 sets."""
    if group.functional_id == ACKNOWLEDGEMENT_GROUP:
        return True
    return bool(group.sets) and all(ts.id in ACKNOWLEDGEMENT_SETS for ts in group.sets)


def acknowledged_groups(interchange: Interchange) -> list[FunctionalGroup]:
    """The groups a 997 answers: those with a GS that are no acknowledgements themselves."""
    return [g for g in interchange.groups if g.header is not None and not is_acknowledgement(g)]


def build_997(
    interchange: Interchange,
    *,
    interchange_control: int,
    group_control: int,
    set_control: int = 1,
    created: datetime | None = None,
    delimiters: X12Delimiters | None = None,
    usage_indicator: str | None = None,
) -> str:
    """A 997 interchange acknowledging every functional group of `interchange`.

    Sender and receiver are swapped; each received group gets its own FA group holding one
    997, with group and set control numbers counting up from the ones given. Sets that came
    without a GS cannot be acknowledged by a 997 and are left out, and so are acknowledgements
    (FA groups, 997 and 999 sets). ISA12 is the received one when it is an X12 version, else
    00401; ISA15 the received one when it is P, T or I, else P. EdiWriteError when no group
    is left to acknowledge (see `acknowledged_groups`).
    """
    answered = acknowledged_groups(interchange)
    if not answered:
        raise EdiWriteError(
            f"interchange {interchange.control_number!r} holds no functional group a 997 "
            "answers (none, or only acknowledgements)"
        )
    d = delimiters or X12Delimiters()
    # The reader's own rule: a 997 must not repeat a version the reader flags (00040, say).
    version = interchange.version if is_version(interchange.version) else DEFAULT_VERSION
    env = X12Envelope(
        sender_id=interchange.receiver_id,
        receiver_id=interchange.sender_id,
        sender_qualifier=interchange.receiver_qualifier,
        receiver_qualifier=interchange.sender_qualifier,
        interchange_control=interchange_control,
        group_control=group_control,
        set_control=set_control,
        version=version,
        # As with ISA12: a 997 must not repeat a usage indicator the reader flags.
        usage_indicator=usage_indicator
        or (
            interchange.usage_indicator
            if interchange.usage_indicator in USAGE_INDICATORS
            else DEFAULT_USAGE
        ),
        created=created,
        delimiters=d,
        on_invalid="replace",
    )
    groups = []
    for group in answered:
        spec = GroupSpec(
            ACKNOWLEDGEMENT_GROUP,
            group.application_receiver,
            group.application_sender,
            group.version or "004010",
        )
        spec.sets.append(("997", _group_body(group, d)))
        groups.append(spec)
    return render_interchange(env, groups)
