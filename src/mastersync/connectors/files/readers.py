"""Read CSV and JSON Lines files into records; a bad line becomes a failure, not a stop."""

from __future__ import annotations

import codecs
import csv
import json
import math
import re
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from mastersync.ports.connector import ReadFailure, SourceRecord

# A single record larger than this is refused: connected systems are untrusted input.
MAX_RECORD_BYTES = 1 << 20
# The csv module refuses a field over 131,072 characters by default: far below the record
# limit, so a long description failed its record. (Process-wide; only ever raised here.)
csv.field_size_limit(max(csv.field_size_limit(), MAX_RECORD_BYTES))
# A run of digits that may be an integer beyond 64 bits.
_LONG_DIGITS = re.compile(rb"\d{20}")
# What a wide encoding's file is decoded in at a time.
_CHUNK = 1 << 16
# Undecodable bytes of a wide encoding decode to a lone surrogate, which no strict decoding
# yields otherwise: the line holding one is a failure, and decoding goes on after it.
_UNDECODABLE = "\udcff"
_MARK_ERRORS = "mastersync.mark_undecodable"


def _mark_undecodable(exc: UnicodeError) -> tuple[str, int]:
    if not isinstance(exc, UnicodeDecodeError):
        raise exc
    return _UNDECODABLE, exc.end


codecs.register_error(_MARK_ERRORS, _mark_undecodable)


@dataclass
class _Lines:
    """Decoded lines of a binary file, counting physical lines; undecodable lines are held.

    The lines of the row being read are kept: a row whose quote never closed (it took every
    line after it, to the end of the file) gives back all but its first, which are read
    again as rows of their own.
    """

    handle: BinaryIO
    encoding: str
    name: str
    line_no: int = 0
    bytes_read: int = 0

    def __post_init__(self) -> None:
        self.failures: list[ReadFailure] = []
        # (physical line number, text) of each line of the current row.
        self.row: list[tuple[int, str]] = []
        self._again: deque[tuple[int, str]] = deque()
        self._source = self._read()

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        line = self._again.popleft() if self._again else next(self._source)
        self.row.append(line)
        return line[1]

    @property
    def row_start(self) -> int:
        """The physical line the current row started on."""
        return self.row[0][0] if self.row else self.line_no

    def numbers(self) -> list[int]:
        """The physical line numbers of the current row (asked for when it failed only)."""
        return [n for n, _ in self.row]

    def first(self) -> str:
        """The current row's first line, without its line end."""
        return (self.row[0][1] if self.row else "").rstrip("\r\n")

    def give_back(self) -> str:
        """Read the current row's lines after its first again; returns its first line."""
        self._again.extendleft(reversed(self.row[1:]))
        return self.first()

    def _read(self) -> Iterator[tuple[int, str]]:
        if not _splits_on_newline_byte(self.encoding):
            yield from self._decoded_lines()
            return
        for raw in self.handle:
            self.line_no += 1
            self.bytes_read += len(raw)
            if self.line_no == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            if len(raw) > MAX_RECORD_BYTES:
                self.failures.append(
                    ReadFailure(
                        f"{self.name}:{self.line_no}",
                        "too_large",
                        f"line is {len(raw)} bytes, over the {MAX_RECORD_BYTES}-byte limit",
                        _shown(raw[:200], self.encoding),
                    )
                )
                continue
            try:
                text = raw.decode(self.encoding)
            except UnicodeDecodeError as exc:
                self.failures.append(
                    ReadFailure(
                        f"{self.name}:{self.line_no}",
                        "encoding",
                        f"byte 0x{raw[exc.start]:02X} at position {exc.start + 1} of the line "
                        f"is not valid {self.encoding}",
                        _shown(raw, self.encoding),
                    )
                )
                continue
            yield self.line_no, text

    def _decoded_lines(self) -> Iterator[tuple[int, str]]:
        """Lines of an encoding whose line end is not the byte 0x0A (UTF-16 and UTF-32, as
        Excel's "Unicode text" export writes, or EBCDIC): decoded first, then split; a line
        with bytes the encoding cannot decode is a failure, as in ``__iter__``."""
        decoder = codecs.getincrementaldecoder(self.encoding)(errors=_MARK_ERRORS)
        pending = ""
        final = False
        while not final:
            chunk = self.handle.read(_CHUNK)
            final = not chunk
            self.bytes_read += len(chunk)
            *lines, pending = (pending + decoder.decode(chunk, final=final)).split("\n")
            ends = ["\n"] * len(lines)
            if final and pending:
                lines.append(pending)
                ends.append("")
            for line, end in zip(lines, ends, strict=True):
                self.line_no += 1
                text = (line + end).removeprefix("\ufeff") if self.line_no == 1 else line + end
                if _UNDECODABLE in text:
                    self.failures.append(
                        ReadFailure(
                            f"{self.name}:{self.line_no}",
                            "encoding",
                            f"line has bytes that are not valid {self.encoding}",
                            text.replace(_UNDECODABLE, "\ufffd"),
                        )
                    )
                    continue
                if len(text) > MAX_RECORD_BYTES // 4 and len(text.encode(self.encoding)) > (
                    MAX_RECORD_BYTES
                ):
                    self.failures.append(
                        ReadFailure(
                            f"{self.name}:{self.line_no}",
                            "too_large",
                            f"line is over the {MAX_RECORD_BYTES}-byte limit",
                            text[:200],
                        )
                    )
                    continue
                yield self.line_no, text


def _shown(raw: bytes, encoding: str) -> str:
    """A failed line's bytes as text for its inbox entry: what does not decode escaped
    (``\\xe9``), so the original bytes can be read off it (U+FFFD lost them, and a bytes
    repr came out as "b'...'")."""
    return raw.decode(encoding, errors="backslashreplace").rstrip("\r\n")


def _splits_on_newline_byte(encoding: str) -> bool:
    """Whether the byte 0x0A is a line end in this encoding (ASCII-compatible ones)."""
    try:
        return b"a\n".decode(encoding) == "a\n"
    except UnicodeDecodeError:
        return False


def count_records(path: Path) -> int | None:
    """Physical lines minus a header (a cheap total for progress bars; an upper bound where
    a quoted field spans lines), or a workbook's rows below its header (None where the
    workbook does not say: a progress bar without a total pulses)."""
    if path.suffix.lower() == ".xlsx":
        # Its lines were counted as bytes of a zip archive (9,831 for 60,000 rows).
        from openpyxl import load_workbook

        try:
            book = load_workbook(path, read_only=True)
            # None for a sheet written without its <dimension> (some generators leave it
            # out): counting its rows would read it all.
            rows = book.worksheets[0].max_row
            book.close()
        except Exception:  # not a workbook: reading it says so
            return 0
        return None if rows is None else max(rows - 1, 0)
    with path.open("rb") as handle:
        lines = sum(1 for _ in handle)
    return max(lines - (1 if path.suffix.lower() in (".csv", ".tsv", ".txt") else 0), 0)


def read_csv(
    path: Path, *, delimiter: str = ",", encoding: str = "utf-8"
) -> Iterator[SourceRecord | ReadFailure]:
    """Rows of a CSV file with a header row, as records keyed by column name."""
    name = path.name
    with path.open("rb") as handle:
        lines = _Lines(handle, encoding, name)
        reader = csv.reader(lines, delimiter=delimiter, strict=True)
        header: list[str] | None = None
        while True:
            lines.row.clear()
            try:
                row: list[str] | None = next(reader)
                error = None
            except StopIteration:
                row, error = None, None
            except csv.Error as exc:
                row, error = [], str(exc)
            start = lines.row_start
            yield from lines.failures
            lines.failures.clear()
            if row is None:
                break
            if error is not None and header is None:
                # No header, no rows: the file fails as a whole (giving the header's lines
                # back would make the first data row the header).
                yield ReadFailure(
                    f"{name}:{start}", "csv_header", f"{error} in the header row", lines.first()
                )
                return
            if error is not None and "field larger than field limit" in error:
                yield _too_large(lines, delimiter)
                continue
            if error is not None:
                numbers = lines.numbers()
                if len(numbers) > 1 and "end of data" in error:
                    # A quote never closed took every line after it, to the end of the file:
                    # they are read again, rows of their own (they were neither records nor
                    # failures).
                    raw = lines.give_back()
                    again = (
                        f"line {numbers[1]} is read again as a row of its own"
                        if len(numbers) == 2
                        else f"lines {numbers[1]}-{numbers[-1]} are read again as rows of their own"
                    )
                    error += f" (a quote in the row on line {start} never closed; {again})"
                elif len(numbers) > 1:
                    # A quote that "closed" in the middle of a later field: a stray quote
                    # (the lines between are rows) or a multi-line field with a bad end (they
                    # are its text). Read again, a field's text made records that could
                    # overwrite real ones; so the failure holds every line, and says so (it
                    # kept the first only, and the rows between were lost without a word).
                    raw = "\n".join(text.rstrip("\r\n") for _, text in lines.row)
                    error += (
                        f" (in a row over lines {numbers[0]}-{numbers[-1]}: a quoted field "
                        f"closed inside a field on line {numbers[-1]}; lines "
                        f"{numbers[1]}-{numbers[-1]} were not read as records and are in this "
                        "entry: fix the quote and ingest the file again)"
                    )
                else:
                    raw = lines.first()
                yield ReadFailure(f"{name}:{start}", "csv_syntax", error, raw)
                continue
            if header is None and _blank(row):
                # Blank lines before the header (read_header skips them too): the header
                # was [] and every row failed "expected 0 fields".
                continue
            if header is None:
                header = [h.strip() for h in row]
                dupes = sorted({h for h in header if header.count(h) > 1})
                if dupes:
                    yield ReadFailure(
                        f"{name}:{start}",
                        "csv_header",
                        f"duplicate column names: {', '.join(dupes)}",
                        row,
                    )
                    return
                continue
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                message = f"expected {len(header)} fields, got {len(row)}"
                numbers = lines.numbers()
                if len(numbers) > 1:
                    # A stray quote may have taken the lines after it into one field, or a
                    # quoted field may span lines as it should: which, only a person can
                    # tell, so the lines are named, not read again (that made records).
                    message += (
                        f" in a row over lines {numbers[0]}-{numbers[-1]} (a quote opened on "
                        f"line {start} and closed on a later one?)"
                    )
                yield ReadFailure(f"{name}:{start}", "csv_columns", message, delimiter.join(row))
                continue
            yield SourceRecord(dict(zip(header, row, strict=True)), f"{name}:{start}")


def _too_large(lines: _Lines, delimiter: str) -> ReadFailure:
    """The failure of a row with a field over the limit, its lines skipped to the row's end.

    The csv module stops inside the field: its later lines would be read as rows, and a
    line of a long description became a record. Whether the field closes (a long text) or
    not (a stray quote), only a person can tell; its lines are named, not read.
    """
    start, last = lines.numbers()[0], lines.numbers()[-1]
    first = lines.first()
    quoted = False
    for _, text in lines.row:
        quoted = _open_quote(text, quoted, delimiter)
    while quoted:
        try:
            text = next(lines)
        except StopIteration:
            break
        last, _ = lines.row.pop()  # not kept: the field may run to the end of a large file
        quoted = _open_quote(text, quoted, delimiter)
    message = f"a field is over the {MAX_RECORD_BYTES}-character limit "
    if quoted:
        # Lines to the end of a large file are not held to be read again (as they are for
        # a quote that never closed within the limit): the failure says so.
        message += (
            f"(a quote in the row on line {start} never closed; lines {start}-{last}, to the "
            "end of the file, were not read as records: fix the quote and ingest the file "
            "again)"
        )
    else:
        message += f"in a row over lines {start}-{last}; they were not read as records"
    return ReadFailure(f"{lines.name}:{start}", "too_large", message, first[:200])


def _open_quote(text: str, quoted: bool, delimiter: str) -> bool:
    """Whether a quoted field is open at the end of a row's line (``quoted``: at its start),
    read as the csv module reads it (a doubled quote inside one is a quote)."""
    state = "quoted" if quoted else "start"
    for char in text:
        if state == "quoted":
            state = "quote" if char == '"' else "quoted"
        elif state == "quote":
            # After a quote in a quoted field: a second one is text, anything else ends it.
            state = "quoted" if char == '"' else "start" if char == delimiter else "plain"
        elif char == delimiter:
            state = "start"
        elif state == "start" and char == '"':
            state = "quoted"
        else:
            state = "plain"
    return state == "quoted"


def read_header(path: Path, *, delimiter: str = ",", encoding: str = "utf-8") -> list[str]:
    """The column names of a CSV file (UnicodeDecodeError if the header is not in
    ``encoding``)."""
    # Undecodable bytes marked as the readers mark them, then looked for in the header
    # only: text files are decoded 8 KB at a time, so a strict read failed on a bad byte in
    # any of the first rows, and refused the whole file for what the reader takes as one
    # bad line.
    with path.open(encoding=encoding, errors=_MARK_ERRORS, newline="") as handle:
        # The first line that is not blank, as read_csv takes it ([]: the file has none).
        row = next((r for r in csv.reader(handle, delimiter=delimiter) if not _blank(r)), [])
    line = delimiter.join(row)
    bad = line.find(_UNDECODABLE)
    if bad >= 0:
        # Where in the line, in bytes: an encoder of utf-8-sig or utf-16 starts with a BOM.
        bom = len("".encode(encoding))
        prefix = line[:bad].encode(encoding)[bom:]
        raise UnicodeDecodeError(
            encoding, prefix, len(prefix), len(prefix) + 1, "not in the file's encoding"
        )
    return [h.strip().lstrip("\ufeff") for h in row]


def _blank(row: list[str]) -> bool:
    """A row with nothing in it (a blank line, a byte order mark alone)."""
    return not any(cell.strip().lstrip("\ufeff") for cell in row)


def read_jsonl(path: Path) -> Iterator[SourceRecord | ReadFailure]:
    """One JSON object per line."""
    name = path.name
    with path.open("rb") as handle:
        for line_no, raw in enumerate(handle, start=1):
            if line_no == 1 and raw.startswith(codecs.BOM_UTF8):
                raw = raw[len(codecs.BOM_UTF8) :]  # Windows tools write one; JSON forbids it
            if not raw.strip():
                continue
            locator = f"{name}:{line_no}"
            if len(raw) > MAX_RECORD_BYTES:
                yield ReadFailure(
                    locator, "too_large", f"line is {len(raw)} bytes", _shown(raw[:200], "utf-8")
                )
                continue
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                # JSON is UTF-8: said as the CSV reader says it (orjson's own words were
                # "str is not valid UTF-8: surrogates not allowed").
                yield ReadFailure(
                    locator,
                    "encoding",
                    f"byte 0x{raw[exc.start]:02X} at position {exc.start + 1} of the line is "
                    "not valid utf-8 (JSON Lines files are UTF-8)",
                    _shown(raw, "utf-8"),
                )
                continue
            try:
                value: Any = _loads(raw, text, line_no)
            except ValueError as exc:
                yield ReadFailure(locator, "json_syntax", str(exc), _shown(raw, "utf-8"))
                continue
            if not isinstance(value, dict):
                yield ReadFailure(
                    locator,
                    "json_object",
                    f"expected a JSON object, got {type(value).__name__}",
                    value,
                )
                continue
            yield SourceRecord(value, locator)


def _loads(raw: bytes, text: str, line_no: int) -> Any:
    """One JSON Lines line (``raw``, decoded as ``text``) parsed; ValueError with the
    standard library's message, at the file's line, if it is not JSON."""
    # orjson reads an integer beyond 64 bits as a float, rounding it (an id of 20+ digits
    # loses its last ones): the standard library keeps it exact.
    if not _LONG_DIGITS.search(raw):
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            # orjson also refuses JSON the standard allows, a lone surrogate escape
            # ("\ud800": "no low surrogate in string"), which the pipeline makes U+FFFD:
            # the standard library reads the line, and says what a line that is not JSON
            # lacks.
            pass
    try:
        return json.loads(text, parse_constant=_no_constant, parse_float=_finite)
    except json.JSONDecodeError as exc:
        # Its position said at the file's line: each line is a text of its own, "line 1".
        raise ValueError(f"{exc.msg}: line {line_no} column {exc.colno} (char {exc.pos})") from None
    except _NotJson as exc:
        raise ValueError(f"{exc}: line {line_no}") from None
    except RecursionError:
        # orjson refuses nesting over 1,024 levels; the standard library's parser would
        # take the stack down instead.
        raise ValueError(f"nested too deep: line {line_no}") from None


class _NotJson(Exception):
    """What the standard library's parser takes and JSON does not allow."""


def _finite(text: str) -> float:
    """A JSON number as a float, refusing one beyond a double (1e400), as orjson did: the
    standard library makes it infinity, which the record's retry payload stored as null."""
    value = float(text)
    if math.isinf(value):
        raise _NotJson(f"number {text} is infinity when parsed as double")
    return value


def _no_constant(name: str) -> Any:
    """Refuse NaN and the infinities, which the standard library's parser takes (orjson
    refused them, as JSON does)."""
    raise _NotJson(f"{name} is not a JSON value")


def read_xlsx(path: Path) -> Iterator[SourceRecord | ReadFailure]:
    """Rows of an Excel workbook's first sheet, the first row being the header."""
    from openpyxl import load_workbook  # imported here: most estates read no workbooks

    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types for a file that is no workbook
        yield ReadFailure(path.name, "xlsx", f"cannot open the workbook: {exc}", "")
        return
    sheet = book.worksheets[0]
    header: list[str] | None = None
    for number, cells in enumerate(sheet.iter_rows(), start=1):
        row = [_cell_value(c) for c in cells]
        if header is None:
            header = ["" if h is None else str(h).strip() for h in row]
            # A repeated name kept the last column's value and dropped the other's without
            # a word: refused, as a CSV file's are.
            dupes = sorted({h for h in header if h and header.count(h) > 1})
            if dupes:
                yield ReadFailure(
                    f"{path.name}!{sheet.title}:{number}",
                    "xlsx_header",
                    f"duplicate column names: {', '.join(dupes)}",
                    header,
                )
                book.close()
                return
            continue
        if all(v is None or str(v).strip() == "" for v in row):
            continue
        values = {h: v for h, v in zip(header, row, strict=False) if h}
        yield SourceRecord(values, f"{path.name}!{sheet.title}:{number}")
    book.close()


def _cell_value(cell: Any) -> Any:
    """A cell's value; a whole number shown zero-padded (format 00000: a postcode such as
    01067, stored as the number 1067) as the digits shown."""
    value = getattr(cell, "value", None)
    if type(value) is int and value >= 0:
        shown = getattr(cell, "number_format", "") or ""
        if shown and set(shown) == {"0"} and len(shown) > len(str(value)):
            return f"{value:0{len(shown)}d}"
    return value


# The suffixes read_file reads (in any case).
SUFFIXES = (".csv", ".tsv", ".txt", ".jsonl", ".ndjson", ".xlsx")


def unsupported(path: Path) -> str | None:
    """Why ``read_file`` cannot read a file of this name (None: it can)."""
    suffix = path.suffix.lower()
    if suffix in SUFFIXES:
        return None
    what = repr(suffix) if suffix else "(no suffix)"
    return f"unsupported file type {what} (use {', '.join(SUFFIXES[:-1])} or {SUFFIXES[-1]})"


def read_file(path: Path, **options: Any) -> Iterator[SourceRecord | ReadFailure]:
    """Records of a .csv/.tsv/.txt, .jsonl/.ndjson or .xlsx file, by its suffix."""
    problem = unsupported(path)
    if problem:
        raise ValueError(f"{path.name}: {problem}")
    suffix = path.suffix.lower()
    if suffix in (".csv", ".txt"):
        return read_csv(path, **options)
    if suffix == ".tsv":
        return read_csv(path, delimiter="\t", **options)
    if suffix in (".jsonl", ".ndjson"):
        return read_jsonl(path)
    return read_xlsx(path)
