"""Read EDIFACT text into interchanges, groups and messages, validating envelopes as it goes."""

from __future__ import annotations

from dataclasses import replace

from mastersync.connectors.edi.edifact.charset import KNOWN, codec_for, disallowed
from mastersync.connectors.edi.edifact.model import (
    UNOB_DELIMITERS,
    EdifactDocument,
    EdifactInterchange,
)
from mastersync.connectors.edi.edifact.scanner import (
    SEGMENT_TAG,
    WHITESPACE,
    UnaError,
    locate,
    next_segment,
    read_una,
    split_segment,
)
from mastersync.connectors.edi.edifact.structure import EnvelopeBuilder, Finding
from mastersync.connectors.edi.errors import EdiError, Severity
from mastersync.connectors.edi.model import Segment
from mastersync.connectors.edi.text import BOM, decode_edi_bytes


def parse_edifact(
    text: str, *, extract: bool = True, strict_charset: bool = True
) -> EdifactDocument:
    """Parse EDIFACT text; errors are collected, never raised.

    With `strict_charset` off, characters outside the syntax level are warnings, not errors.
    """
    return _Reader(text, extract, strict_charset).run()


def parse_edifact_bytes(
    data: bytes, *, extract: bool = True, strict_charset: bool = True
) -> EdifactDocument:
    """Parse EDIFACT bytes: UTF-8 if they decode as such, else the codec UNB names, else latin-1."""
    head = data[:400].decode("latin-1")
    at = head.find("UNB")
    codec = codec_for(head[at + 4 : at + 8]) if at >= 0 else None
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode(codec, errors="replace") if codec else decode_edi_bytes(data)
    return parse_edifact(text, extract=extract, strict_charset=strict_charset)


class _Reader(EnvelopeBuilder):
    """Finds UNA and segments in the text and feeds them to the builder."""

    def __init__(self, text: str, extract: bool, strict_charset: bool) -> None:
        super().__init__(extract)
        self.text = text
        self.charset_severity: Severity = "error" if strict_charset else "warning"

    def run(self) -> EdifactDocument:
        """Read the whole text."""
        text, n = self.text, len(self.text)
        pos = 1 if text.startswith(BOM) else 0
        while True:
            while pos < n and text[pos] in WHITESPACE:
                pos += 1
            if pos >= n:
                break
            if text.startswith("UNA", pos):
                if self.ic is not None:
                    self._unz(None, ended_at=pos, by="UNA")
                try:
                    self.d, self.una = read_una(text, pos), True
                except UnaError as exc:
                    self.doc.errors.append(EdiError("invalid_delimiters", str(exc), offset=pos))
                pos += 9
                continue
            if self.ic is None and not self.una and text.startswith("UNB\x1d", pos):
                self.d = UNOB_DELIMITERS
            raw, after, terminated = next_segment(text, pos, self.d)
            self.file_position += 1
            tag, elements = split_segment(raw, self.d, self.repetitions)
            seg = Segment(tag, elements, self.file_position, pos)
            self._segment(seg, raw, terminated)
            pos = after
        if self.ic is not None:
            self._unz(None, ended_at=n)
        if not self.doc.interchanges and not self.doc.errors:
            self.doc.errors.append(EdiError("no_interchange", "the input holds no UNB segment"))
        return self.doc

    def _segment(self, seg: Segment, raw: str, terminated: bool) -> None:
        if seg.id == "UNB":
            self._unb(seg)  # sets the syntax level the checks below need
        self._pending = self._syntax(seg, raw, terminated)
        handler = {
            "UNG": self._ung,
            "UNH": self._unh,
            "UNT": self._unt,
            "UNE": self._une,
            "UNZ": self._unz,
        }.get(seg.id)
        if seg.id == "UNB":
            pass
        elif self.ic is None:
            self._report(self._error("unexpected_segment", f"{seg.id} outside an interchange", seg))
        elif handler is not None:
            handler(seg)
        elif self.msg is not None:
            self._add(self.msg, seg)
        else:
            self._report(self._error("unexpected_segment", f"{seg.id} outside a message", seg))
        self._flush(seg)

    def _syntax(self, seg: Segment, raw: str, terminated: bool) -> list[Finding]:
        found: list[Finding] = []
        if not terminated:
            text = f"input ends inside {seg.id} (no {self.d.segment!r})"
            found.append(("unterminated_segment", text, None, None, seg.offset, "", "warning"))
        if not SEGMENT_TAG.match(seg.id):
            text = f"segment tag {seg.id[:10]!r} is not three upper-case letters"
            found.append(("invalid_segment_id", text, None, None, seg.offset, seg.id[:10], "error"))
        syntax = self.ic.syntax_id if self.ic else ""
        pattern = disallowed(syntax)
        if pattern is None:
            return found
        d = self.d
        service = {d.component, d.element, d.segment, d.release, d.repetition}
        for match in pattern.finditer(raw):
            char = match.group()
            if char in service:
                continue
            element, at = locate(raw, match.start(), d)
            # A component position only means something inside a composite.
            simple = element == 0 or len(seg.element(element).components) == 1
            component = None if simple else at
            text = f"{char!r} is not in the {syntax} character set"
            found.append(
                (
                    "bad_character",
                    text,
                    element or None,
                    component,
                    seg.offset + match.start(),
                    char,
                    self.charset_severity,
                )
            )
            break  # one per segment is enough to locate and reject it
        return found

    def _unb(self, seg: Segment) -> None:
        if self.ic is not None:
            self._unz(None, ended_at=seg.offset, by=seg)  # the previous one had no UNZ
            self.una = False
        syntax_id, version = seg.get(1, 1), seg.get(1, 2)
        d = self.d
        if not self.una and version.isdigit() and int(version) >= 4 and d.repetition == " ":
            d = replace(d, repetition="*")
        self.d = d
        self.repetitions = version.isdigit() and int(version) >= 4 and d.repetition != " "
        ic = EdifactInterchange(
            delimiters=d,
            una=self.una,
            syntax_id=syntax_id,
            syntax_version=version,
            sender_id=seg.get(2, 1),
            sender_qualifier=seg.get(2, 2),
            recipient_id=seg.get(3, 1),
            recipient_qualifier=seg.get(3, 2),
            date=seg.get(4, 1),
            time=seg.get(4, 2),
            control_reference=seg.get(5),
            application_reference=seg.get(7),
            test_indicator=seg.get(11),
            header=seg,
        )
        self.doc.interchanges.append(ic)
        self.ic, self.group, self.msg = ic, None, None
        if syntax_id not in KNOWN:
            ic.errors.append(
                self._error(
                    "unsupported_syntax",
                    f"syntax identifier {syntax_id!r} is unknown; characters are not checked",
                    seg,
                    element=1,
                    component=1,
                    severity="warning",
                    value=syntax_id,
                )
            )
        if not ic.control_reference:
            ic.errors.append(
                self._error(
                    "missing_element", "UNB 0020 control reference is empty", seg, element=5
                )
            )
