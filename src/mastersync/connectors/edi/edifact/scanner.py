"""Low-level EDIFACT lexing: UNA, segments and elements with the release character honoured."""

from __future__ import annotations

import re
from functools import cache

from mastersync.connectors.edi.edifact.model import EdifactDelimiters
from mastersync.connectors.edi.model import Element

WHITESPACE = " \t\r\n"
SEGMENT_TAG = re.compile(r"[A-Z]{3}\Z")
NUMBER = re.compile(r"[+-]?(\d+([.,]\d*)?|[.,]\d+)\Z")


class UnaError(Exception):
    """A UNA whose service characters cannot be used."""


def read_una(text: str, pos: int) -> EdifactDelimiters:
    """The six service characters following "UNA" at `pos`."""
    chars = text[pos + 3 : pos + 9]
    if len(chars) < 6:
        raise UnaError("UNA is shorter than its six service characters")
    comp, elem, dec, rel, rep, term = (chars[i] for i in range(6))
    used = [comp, elem, term] + ([rel] if rel != " " else []) + ([rep] if rep != " " else [])
    if len(set(used)) != len(used) or any(c.isalnum() for c in used):
        raise UnaError(f"UNA service characters {chars!r} clash or are letters/digits")
    if dec not in ".,":
        raise UnaError(f"UNA decimal mark {dec!r} is neither '.' nor ','")
    return EdifactDelimiters(comp, elem, dec, rel, rep, term)


@cache
def _segment_pattern(release: str, terminator: str) -> re.Pattern[str]:
    t = re.escape(terminator)
    if release == " ":
        return re.compile(f"[^{t}]*")
    r = re.escape(release)
    return re.compile(f"(?:[^{r}{t}]|{r}.)*", re.DOTALL)


def next_segment(text: str, pos: int, d: EdifactDelimiters) -> tuple[str, int, bool]:
    """(raw segment, index after its terminator, terminated) for the segment starting at `pos`."""
    end = _segment_pattern(d.release, d.segment).match(text, pos)
    stop = end.end() if end else pos
    if stop < len(text) and text[stop] == d.segment:
        return text[pos:stop], stop + 1, True
    return text[pos:], len(text), False  # no terminator, or a release char at the very end


def split_escaped(raw: str, sep: str, release: str) -> list[str]:
    """Split on `sep` where it is not escaped; escapes stay in the parts."""
    if release == " " or release not in raw:
        return raw.split(sep)
    parts, start, i, n = [], 0, 0, len(raw)
    while i < n:
        c = raw[i]
        if c == release:
            i += 2
            continue
        if c == sep:
            parts.append(raw[start:i])
            start = i + 1
        i += 1
    parts.append(raw[start:])
    return parts


def unescape(value: str, release: str) -> str:
    """Drop each release character, keeping the character it escapes."""
    if release == " " or release not in value:
        return value
    out, i, n = [], 0, len(value)
    while i < n:
        if value[i] == release:
            i += 1
            if i >= n:
                break
        out.append(value[i])
        i += 1
    return "".join(out)


def split_segment(
    raw: str, d: EdifactDelimiters, repetitions: bool
) -> tuple[str, tuple[Element, ...]]:
    """A raw segment's tag and elements; repetitions are split only from syntax version 4."""
    rel = d.release
    parts = split_escaped(raw, d.element, rel)
    tag = unescape(split_escaped(parts[0], d.component, rel)[0], rel)
    elements = []
    for part in parts[1:]:
        reps = split_escaped(part, d.repetition, rel) if repetitions else [part]
        elements.append(
            Element(
                tuple(
                    tuple(unescape(c, rel) for c in split_escaped(rep, d.component, rel))
                    for rep in reps
                )
            )
        )
    return tag, tuple(elements)


def locate(raw: str, at: int, d: EdifactDelimiters) -> tuple[int, int]:
    """The 1-based (element, component) holding raw[at]; element 0 is the tag."""
    element, component, i = 0, 1, 0
    while i < at:
        c = raw[i]
        if c == d.release and d.release != " ":
            i += 2
            continue
        if c == d.element:
            element, component = element + 1, 1
        elif c == d.component:
            component += 1
        i += 1
    return element, component


def normalise_number(value: str) -> str | None:
    """A number with either decimal mark, as text with a dot; None when it is not a number."""
    if not NUMBER.match(value):
        return None
    return value.replace(",", ".")
