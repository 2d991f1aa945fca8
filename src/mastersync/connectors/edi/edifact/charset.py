"""EDIFACT syntax levels (UNOA, UNOB, UNOC...) and the characters each allows."""

from __future__ import annotations

import re
from functools import cache

# Level A: upper-case letters, digits, space and these punctuation marks.
_LEVEL_A = "A-Z0-9 .,\\-()/='+:?!\"%&*;<>"
# ISO 8859 parts behind the syntax identifiers that name one.
_ISO_8859 = {
    "UNOC": "latin-1",
    "UNOD": "iso8859_2",
    "UNOE": "iso8859_5",
    "UNOF": "iso8859_7",
    "UNOG": "iso8859_3",
    "UNOH": "iso8859_4",
    "UNOI": "iso8859_6",
    "UNOJ": "iso8859_8",
    "UNOK": "iso8859_9",
}
_UNICODE = ("UNOW", "UNOY")
KNOWN = ("UNOA", "UNOB", *_ISO_8859, *_UNICODE)


def codec_for(syntax_id: str) -> str | None:
    """The codec for bytes of a syntax level (UTF-8 for UNOW/UNOY), None for A/B or unknown."""
    if syntax_id in _UNICODE:
        return "utf-8"
    return _ISO_8859.get(syntax_id)


@cache
def disallowed(syntax_id: str) -> re.Pattern[str] | None:
    """A pattern matching characters outside the level's repertoire, None when unknown."""
    if syntax_id == "UNOA":
        return re.compile(f"[^{_LEVEL_A}]")
    if syntax_id == "UNOB":
        return re.compile(f"[^{_LEVEL_A}a-z\x1c\x1d\x1f]")
    if syntax_id in _UNICODE:
        return re.compile("[\x00-\x1f\x7f-\x9f]")
    codec = _ISO_8859.get(syntax_id)
    if codec is None:
        return None
    graphic = bytes([*range(0x20, 0x7F), *range(0xA0, 0x100)])
    allowed = graphic.decode(codec, errors="ignore")
    return re.compile("[^" + "".join(re.escape(c) for c in allowed) + "]")
