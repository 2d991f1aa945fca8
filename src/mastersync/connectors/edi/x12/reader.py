"""Read X12 text into interchanges, groups and sets, validating envelopes as it goes."""

from __future__ import annotations

from mastersync.connectors.edi.errors import EdiError
from mastersync.connectors.edi.model import Element, Segment
from mastersync.connectors.edi.text import BOM, decode_edi_bytes
from mastersync.connectors.edi.x12.model import Interchange, X12Document
from mastersync.connectors.edi.x12.scanner import (
    SEGMENT_ID,
    IsaError,
    find_bad_characters,
    is_isa,
    iter_segments,
    read_isa,
    skip_whitespace,
    split_segment,
    unwrapped,
)
from mastersync.connectors.edi.x12.structure import EnvelopeBuilder, Finding


def parse_x12(text: str, *, extract: bool = True) -> X12Document:
    """Parse X12 text (any number of interchanges); errors are collected, never raised."""
    return _Reader(text, extract).run()


def parse_x12_bytes(data: bytes, *, extract: bool = True) -> X12Document:
    """Parse X12 bytes: UTF-8 with or without BOM, falling back to latin-1."""
    return parse_x12(decode_edi_bytes(data), extract=extract)


class _Reader(EnvelopeBuilder):
    """Finds interchanges in the text and feeds their segments to the builder."""

    def __init__(self, text: str, extract: bool) -> None:
        super().__init__(extract)
        self.text = text

    def run(self) -> X12Document:
        """Read the whole text."""
        text = self.text
        pos = 1 if text.startswith(BOM) else 0
        while True:
            pos = skip_whitespace(text, pos)
            if pos >= len(text):
                break
            if unwrapped(text[pos : pos + 8]).startswith("ISA"):  # a wrapped file may break it
                pos = self._interchange(pos)
                continue
            nxt = text.find("ISA", pos + 1)
            end = len(text) if nxt < 0 else nxt
            self.doc.errors.append(
                EdiError(
                    "unexpected_data",
                    f"{text[pos:end][:40]!r} is outside any interchange",
                    offset=pos,
                )
            )
            pos = end
        if not self.doc.interchanges and not self.doc.errors:
            self.doc.errors.append(EdiError("no_interchange", "the input holds no ISA segment"))
        return self.doc

    def _interchange(self, start: int) -> int:
        text = self.text
        try:
            isa = read_isa(text, start)
        except IsaError as exc:
            self.doc.errors.append(EdiError("invalid_envelope", str(exc), offset=start))
            nxt = text.find("ISA", start + 3)
            return len(text) if nxt < 0 else nxt
        self.file_position += 1
        f = isa.fields
        header = Segment("ISA", tuple(Element(((v,),)) for v in f), self.file_position, start, None)
        ic = Interchange(
            delimiters=isa.delimiters,
            sender_qualifier=f[4],
            sender_id=f[5].strip(),
            receiver_qualifier=f[6],
            receiver_id=f[7].strip(),
            date=f[8],
            time=f[9],
            standards_id="" if isa.delimiters.repetition else f[10],
            version=f[11],
            control_number=f[12],
            ack_requested=f[13],
            usage_indicator=f[14],
            header=header,
        )
        self.doc.interchanges.append(ic)
        self.ic, self.group, self.ts = ic, None, None
        for p in isa.problems:
            self._report(
                self._error(p.rule, p.message, header, element=p.element, severity=p.severity)
            )
        d = isa.delimiters
        for raw, seg_start, after, terminated in iter_segments(text, isa.end, d):
            if is_isa(raw):
                self._end_interchange(None, ended_at=seg_start, by_isa=True)
                return seg_start
            self.file_position += 1
            seg_id, elements = split_segment(raw, d)
            seg = Segment(seg_id, elements, self.file_position, seg_start)
            if not terminated:
                self._report(
                    self._error(
                        "unterminated_segment",
                        f"input ends inside {seg_id} (no {d.segment!r})",
                        seg,
                        severity="warning",
                    )
                )
            self._segment(seg, raw)
            if seg_id == "IEA":
                self.ic = None
                return after
        self._end_interchange(None, ended_at=len(text))
        return len(text)

    def _segment(self, seg: Segment, raw: str) -> None:
        # Syntax findings are filed by the handler once the segment's own set/group is open.
        self._pending = self._syntax_errors(seg, raw)
        handler = {
            "GS": self._gs,
            "ST": self._st,
            "SE": self._se,
            "GE": self._ge,
            "IEA": self._end_interchange,
        }.get(seg.id)
        if handler is not None:
            handler(seg)
        elif self.ts is not None:
            self._add(self.ts, seg)
        else:
            self._report(self._error("unexpected_segment", f"{seg.id} outside a set", seg))
        self._flush(seg)

    def _syntax_errors(self, seg: Segment, raw: str) -> list[Finding]:
        found: list[Finding] = []
        if not SEGMENT_ID.match(seg.id):
            msg = f"segment id {seg.id[:10]!r} is not 2-3 upper-case letters or digits"
            found.append(("invalid_segment_id", msg, None, seg.offset, seg.id[:10]))
        assert self.ic is not None
        for at, element, char in find_bad_characters(raw, self.ic.delimiters):
            msg = f"control character {char!r} in data"
            found.append(("bad_character", msg, element or None, seg.offset + at, char))
        return found
