"""Writing EDIFACT: escaped segments, and the UNA/UNB/UNH..UNT/UNZ envelope around them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from mastersync.connectors.edi.edifact.charset import disallowed
from mastersync.connectors.edi.edifact.model import DEFAULT_DELIMITERS, EdifactDelimiters
from mastersync.connectors.edi.errors import EdiWriteError
from mastersync.connectors.edi.values import OnInvalid

# An element is a value or a composite (its components); a segment is (tag, elements).
ElementValue = str | tuple[str, ...]
SegmentSpec = tuple[str, Sequence[ElementValue]]


@dataclass(frozen=True, slots=True)
class EdifactEnvelope:
    """Who sends to whom, references, syntax level and service characters of an interchange."""

    sender_id: str
    recipient_id: str
    control_reference: str  # UNB/UNZ 0020
    sender_qualifier: str = ""
    recipient_qualifier: str = ""
    message_reference: int = 1  # UNH 0062 of the first message; further messages count up
    syntax_id: str = "UNOC"
    syntax_version: str = "3"
    created: datetime | None = None  # UNB date/time and DTM 137; now (UTC) when None
    delimiters: EdifactDelimiters = DEFAULT_DELIMITERS
    write_una: bool = True
    application_reference: str = ""
    test: bool = False
    on_invalid: OnInvalid = "refuse"  # characters outside the syntax level


class Writer:
    """Escapes and checks values for one envelope's delimiters and syntax level."""

    def __init__(self, env: EdifactEnvelope) -> None:
        d = env.delimiters
        v4 = env.syntax_version.isdigit() and int(env.syntax_version) >= 4
        if v4 and not env.write_una and d.repetition == " ":
            # Without a UNA a reader takes syntax 4's default repetition separator, "*": a
            # value's "*" must be released (unescaped, "SIZE 2*4 BOARD" read back "SIZE 2").
            d = replace(d, repetition="*")
        used = [d.component, d.element, d.segment]
        used += [c for c in (d.release, d.repetition) if c != " "]
        if len(set(used)) != len(used) or any(len(c) != 1 or c.isalnum() for c in used):
            raise EdiWriteError(f"service characters {d.una[3:]!r} clash or are letters/digits")
        if d.decimal not in ".,":
            raise EdiWriteError(f"decimal mark {d.decimal!r} is neither '.' nor ','")
        self.env, self.d = env, d
        self.service = "".join(used)
        self.pattern = disallowed(env.syntax_id)

    def escape(self, value: str, *, record_index: int | None = None, field: str = "") -> str:
        """Release-escape service characters; refuse (or blank) characters the level lacks."""
        d, out = self.d, []
        for char in value:
            if self.pattern is not None and char not in self.service and self.pattern.match(char):
                if self.env.on_invalid == "refuse":
                    raise EdiWriteError(
                        f"{char!r} is not in the {self.env.syntax_id} character set",
                        record_index=record_index,
                        field=field,
                    )
                char = " "
            if char in self.service:
                if d.release == " ":
                    raise EdiWriteError(
                        f"{char!r} is a service character and there is no release character",
                        record_index=record_index,
                        field=field,
                    )
                out.append(d.release)
            out.append(char)
        return "".join(out)

    def number(self, value: str) -> str:
        """A dot-decimal number written with the envelope's decimal mark."""
        return value.replace(".", self.d.decimal)

    def segment(self, seg: SegmentSpec, record_index: int | None = None) -> str:
        """One segment with its terminator; trailing empty elements and components dropped."""
        tag, elements = seg
        parts = []
        for index, element in enumerate(elements, start=1):
            comps = [element] if isinstance(element, str) else list(element)
            name = f"{tag}{index:02d}"
            escaped = [self.escape(c, record_index=record_index, field=name) for c in comps]
            while len(escaped) > 1 and not escaped[-1]:
                escaped.pop()
            parts.append(self.d.component.join(escaped))
        while parts and not parts[-1]:
            parts.pop()
        return self.d.element.join([tag, *parts]) + self.d.segment + self.d.suffix


def render_interchange(
    env: EdifactEnvelope, messages: Sequence[tuple[str, list[SegmentSpec]]]
) -> str:
    """A whole interchange of (message identifier, body) pairs; counts are computed."""
    w = Writer(env)
    when = env.created or datetime.now(UTC)
    v4 = env.syntax_version.isdigit() and int(env.syntax_version) >= 4
    date = when.strftime("%Y%m%d" if v4 else "%y%m%d")
    out = [env.delimiters.una + env.delimiters.suffix] if env.write_una else []
    unb: list[ElementValue] = [
        (env.syntax_id, env.syntax_version),
        (env.sender_id, env.sender_qualifier),
        (env.recipient_id, env.recipient_qualifier),
        (date, when.strftime("%H%M")),
        env.control_reference,
    ]
    if env.application_reference or env.test:
        unb += ["", env.application_reference, "", "", "", "1" if env.test else ""]
    out.append(w.segment(("UNB", unb)))
    reference = env.message_reference
    for identifier, body in messages:
        ref = str(reference)
        out.append(w.segment(("UNH", [ref, tuple(identifier.split(":"))])))
        out.extend(w.segment(s) for s in body)
        out.append(w.segment(("UNT", [str(len(body) + 2), ref])))
        reference += 1
    out.append(w.segment(("UNZ", [str(len(messages)), env.control_reference])))
    return "".join(out)
