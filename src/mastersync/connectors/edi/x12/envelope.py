"""Writing X12: segments with delimiters, and the ISA/GS/ST..SE/GE/IEA envelope around them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from mastersync.connectors.edi.errors import EdiWriteError
from mastersync.connectors.edi.values import OnInvalid, clean
from mastersync.connectors.edi.x12.model import X12Delimiters
from mastersync.connectors.edi.x12.scanner import REPETITION_FROM_VERSION

# An element is a value or a composite (its components); a segment is (id, elements).
ElementValue = str | tuple[str, ...]
SegmentSpec = tuple[str, Sequence[ElementValue]]


@dataclass(frozen=True, slots=True)
class X12Envelope:
    """Who sends to whom, the control numbers and the delimiters of an interchange to write."""

    sender_id: str
    receiver_id: str
    interchange_control: int
    group_control: int
    set_control: int = 1  # ST02 of the first set; further sets count up
    sender_qualifier: str = "ZZ"
    receiver_qualifier: str = "ZZ"
    app_sender: str = ""  # GS02; the sender id when empty
    app_receiver: str = ""  # GS03; the receiver id when empty
    version: str = "00401"  # ISA12
    group_version: str = "004010"  # GS08
    usage_indicator: str = "P"
    ack_requested: str = "0"
    created: datetime | None = None  # ISA09/10 and GS04/05; now (UTC) when None
    delimiters: X12Delimiters = field(default_factory=X12Delimiters)
    on_invalid: OnInvalid = "refuse"  # what to do with a delimiter character in data


@dataclass(slots=True)
class GroupSpec:
    """A functional group to write: its ids and its sets (each a list of body segments)."""

    functional_id: str
    app_sender: str
    app_receiver: str
    version: str
    sets: list[tuple[str, list[SegmentSpec]]] = field(default_factory=list)


def active_delimiters(env: X12Envelope) -> X12Delimiters:
    """The envelope's delimiters, without a repetition separator before version 00402."""
    d = env.delimiters
    chars = [d.element, d.component, d.segment]
    if _has_repetition(env.version):
        chars.append(d.repetition)
    else:
        d = X12Delimiters(d.element, d.component, "", d.segment, d.suffix)
    if any(len(c) != 1 or c.isalnum() or c == " " for c in chars) or len(set(chars)) != len(chars):
        raise EdiWriteError(
            f"delimiters {chars!r} must be distinct single non-alphanumeric characters"
        )
    if d.suffix.strip():
        raise EdiWriteError(f"suffix {d.suffix!r} may hold only whitespace")
    return d


def _has_repetition(version: str) -> bool:
    return version.isdigit() and int(version) >= REPETITION_FROM_VERSION


def render_segment(
    seg: SegmentSpec, d: X12Delimiters, on_invalid: OnInvalid, record_index: int | None = None
) -> str:
    """One segment with its terminator; trailing empty elements are dropped."""
    seg_id, elements = seg
    forbidden = d.element + d.component + d.segment + d.repetition
    parts = []
    for index, element in enumerate(elements, start=1):
        comps = (element,) if isinstance(element, str) else element
        name = f"{seg_id}{index:02d}"
        cleaned = [
            clean(c, forbidden, on_invalid, record_index=record_index, field=name) for c in comps
        ]
        while len(cleaned) > 1 and not cleaned[-1]:
            cleaned.pop()
        parts.append(d.component.join(cleaned))
    while parts and not parts[-1]:
        parts.pop()
    return d.element.join([seg_id, *parts]) + d.segment + d.suffix


def _fixed(value: str, width: int, name: str) -> str:
    if len(value) > width:
        raise EdiWriteError(f"{name} {value!r} is longer than {width} characters")
    return value.ljust(width)


def render_interchange(env: X12Envelope, groups: Sequence[GroupSpec]) -> str:
    """A whole interchange: counts and control numbers are computed, never taken from input."""
    d = active_delimiters(env)
    when = env.created or datetime.now(UTC)
    if not 0 <= env.interchange_control <= 999_999_999:
        raise EdiWriteError(f"interchange control {env.interchange_control} is not 0..999999999")
    fields = [
        "00",
        " " * 10,
        "00",
        " " * 10,
        _fixed(env.sender_qualifier, 2, "sender qualifier"),
        _fixed(env.sender_id, 15, "sender id"),
        _fixed(env.receiver_qualifier, 2, "receiver qualifier"),
        _fixed(env.receiver_id, 15, "receiver id"),
        when.strftime("%y%m%d"),
        when.strftime("%H%M"),
        d.repetition or "U",
        env.version,
        f"{env.interchange_control:09d}",
        env.ack_requested,
        env.usage_indicator,
    ]
    forbidden = d.element + d.component + d.segment + d.repetition
    for index, value in enumerate(fields):
        if index != 10:  # ISA11 may be the repetition separator itself
            name = f"ISA{index + 1:02d}"
            fields[index] = clean(value, forbidden, env.on_invalid, record_index=None, field=name)
    # ISA16 is the component separator itself, written raw.
    out = [d.element.join(["ISA", *fields, d.component]) + d.segment + d.suffix]
    set_control = env.set_control
    for offset, group in enumerate(groups):
        group_control = env.group_control + offset
        gs = (
            "GS",
            [
                group.functional_id,
                group.app_sender,
                group.app_receiver,
                when.strftime("%Y%m%d"),
                when.strftime("%H%M"),
                str(group_control),
                "X",
                group.version,
            ],
        )
        out.append(render_segment(gs, d, env.on_invalid))
        for set_id, body in group.sets:
            control = f"{set_control:04d}"
            out.append(render_segment(("ST", [set_id, control]), d, env.on_invalid))
            out.extend(render_segment(s, d, env.on_invalid) for s in body)
            out.append(render_segment(("SE", [str(len(body) + 2), control]), d, "refuse"))
            set_control += 1
        out.append(render_segment(("GE", [str(len(group.sets)), str(group_control)]), d, "refuse"))
    out.append(
        render_segment(("IEA", [str(len(groups)), f"{env.interchange_control:09d}"]), d, "refuse")
    )
    return "".join(out)
