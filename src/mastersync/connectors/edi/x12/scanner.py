"""Low-level X12 lexing: delimiters from an ISA segment, then segments and their elements."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from mastersync.connectors.edi.errors import Rule, Severity
from mastersync.connectors.edi.model import Element
from mastersync.connectors.edi.x12.model import X12Delimiters

WHITESPACE = " \t\r\n"
SEGMENT_ID = re.compile(r"[A-Z0-9]{2,3}\Z")
# Control characters are never X12 data; CR and LF are handled separately (wrapped lines).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_VERSION = re.compile(r"00[2-8]\d\d\Z")
# ISA11 became the repetition separator in version 00402.
# ISA15: production, test, information.
USAGE_INDICATORS = frozenset({"P", "T", "I"})
REPETITION_FROM_VERSION = 402


class IsaError(Exception):
    """An ISA segment that cannot give delimiters: the interchange cannot be read."""


@dataclass(frozen=True, slots=True)
class Problem:
    """A finding about the ISA that does not stop reading (element index 1-based)."""

    rule: Rule
    message: str
    element: int
    severity: Severity = "warning"


@dataclass(slots=True)
class IsaHeader:
    """The sixteen ISA fields, the delimiters they define and where the segment ends."""

    fields: list[str]
    delimiters: X12Delimiters
    end: int  # index just past the segment terminator
    problems: list[Problem] = field(default_factory=list)


def is_version(version: str) -> bool:
    """True for an ISA12 interchange version X12 defines (00200 to 00899)."""
    return _VERSION.match(version) is not None


def skip_whitespace(text: str, pos: int) -> int:
    """The first index at or after `pos` that is not a space, tab, CR or LF."""
    n = len(text)
    while pos < n and text[pos] in WHITESPACE:
        pos += 1
    return pos


def _usable(char: str) -> bool:
    return len(char) == 1 and not char.isalnum() and char != " "


def read_isa(text: str, start: int) -> IsaHeader:
    """Read the ISA at `start`: fields are counted by separator, so padding errors still parse.

    CR and LF inside it are left out, as inside any segment: a file wrapped at a fixed width
    (80 columns, say) breaks the ISA too, and its fields took the line breaks in (a sender id
    of '102096559\r\nTEST')."""
    n = len(text)
    i, tag = start, ""
    while len(tag) < 3 and i < n:
        if text[i] not in "\r\n":
            tag += text[i]
        i += 1
    while i < n and text[i] in "\r\n":
        i += 1
    sep = text[i : i + 1]
    if tag != "ISA" or not _usable(sep):
        raise IsaError(f"ISA is followed by {sep!r}, which cannot be an element separator")
    i += 1
    fields: list[str] = []
    current: list[str] = []
    while len(fields) < 15:
        if i >= n:
            raise IsaError(f"ISA ends before element ISA{len(fields) + 1:02d}")
        char = text[i]
        i += 1
        if char == sep:
            fields.append("".join(current))
            current = []
        elif char not in "\r\n":
            current.append(char)
    while i < n and text[i] in "\r\n":
        i += 1
    pos = i
    component = text[pos : pos + 1]
    after = pos + 1  # where the terminator is
    terminator = text[after : after + 1]
    if terminator in ("\r", "\n"):
        # A line end here is the terminator, unless a wrap fell just before it: then the
        # next character past the line breaks is a delimiter, not a segment's first letter.
        nxt = after
        while nxt < n and text[nxt] in "\r\n":
            nxt += 1
        follows = text[nxt : nxt + 1]
        if follows and not follows.isalnum() and not follows.isspace() and follows != sep:
            after, terminator = nxt, follows
    if not terminator:
        raise IsaError("ISA ends before its component separator (ISA16) and terminator")
    fields.append(component)
    # Its width as written, line breaks left out (they are no part of it).
    width = after + 1 - start - sum(1 for c in text[start : after + 1] if c in "\r\n")
    if terminator in "\r\n":
        width += 1  # a line end that ends the segment is its terminator
    pos = after - 1
    problems: list[Problem] = []
    version = fields[11]
    repetition = ""
    if version.isdigit() and int(version) >= REPETITION_FROM_VERSION:
        if _usable(fields[10]) and fields[10] not in (sep, component, terminator):
            repetition = fields[10]
        else:
            problems.append(
                Problem(
                    "invalid_delimiters",
                    f"ISA11 {fields[10]!r} cannot be the repetition separator of version "
                    f"{version}; repetitions are not split",
                    11,
                )
            )
    elif fields[10] != "U":
        problems.append(
            Problem(
                "invalid_qualifier",
                f"ISA11 is {fields[10]!r}; version {version} expects the standards id 'U'",
                11,
            )
        )
    if not _usable(component) or component in "\r\n" or component == sep:
        raise IsaError(f"ISA16 {component!r} cannot be the component separator")
    if terminator.isalnum() or terminator in (sep, component, " "):
        raise IsaError(f"{terminator!r} after ISA16 cannot be the segment terminator")
    if width != 106:
        problems.append(Problem("invalid_envelope", f"ISA is {width} characters, not 106", 16))
    if not is_version(version):
        problems.append(
            Problem(
                "invalid_qualifier", f"ISA12 {version!r} is not an X12 version (00200-00899)", 12
            )
        )
    if fields[14] not in USAGE_INDICATORS:
        problems.append(
            Problem("invalid_qualifier", f"ISA15 usage indicator {fields[14]!r} not P/T/I", 15)
        )
    delimiters = X12Delimiters(sep, component, repetition, terminator)
    return IsaHeader(fields, delimiters, pos + 2, problems)


def iter_segments(
    text: str, pos: int, delimiters: X12Delimiters
) -> Iterator[tuple[str, int, int, bool]]:
    """Yield (raw segment, start offset, offset after its terminator, terminated) from `pos`."""
    term = delimiters.segment
    n = len(text)
    while True:
        pos = skip_whitespace(text, pos)
        if pos >= n:
            return
        end = text.find(term, pos)
        if end < 0:
            yield text[pos:], pos, n, False
            return
        yield text[pos:end], pos, end + 1, True
        pos = end + 1


def is_isa(raw: str) -> bool:
    """True when a raw segment is an ISA (its fourth character is the element separator),
    line breaks left out (a wrapped file may break its tag)."""
    head = unwrapped(raw[:8])
    return head.startswith("ISA") and len(head) > 3 and not head[3].isalnum()


def unwrapped(text: str) -> str:
    """``text`` without CR and LF."""
    return text.replace("\r", "").replace("\n", "")


def split_segment(raw: str, d: X12Delimiters) -> tuple[str, tuple[Element, ...]]:
    """Split a raw segment into its id and elements (components and repetitions)."""
    if d.segment not in "\r\n":
        # Some systems wrap long lines at a fixed width; CR/LF is never X12 data.
        raw = raw.replace("\r", "").replace("\n", "")
    parts = raw.split(d.element)
    elements = []
    for part in parts[1:]:
        reps = part.split(d.repetition) if d.repetition else [part]
        elements.append(Element(tuple(tuple(rep.split(d.component)) for rep in reps)))
    return parts[0], tuple(elements)


def find_bad_characters(raw: str, d: X12Delimiters) -> list[tuple[int, int, str]]:
    """(offset in raw, 1-based element index, character) for each control character."""
    found = []
    for match in _CONTROL.finditer(raw):
        char = match.group()
        if char in (d.element, d.component, d.repetition, d.segment):
            continue
        found.append((match.start(), raw.count(d.element, 0, match.start()), char))
    return found
