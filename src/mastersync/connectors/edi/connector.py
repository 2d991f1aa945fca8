"""The EDI connector: a drop folder of X12 and EDIFACT files in, acknowledged with 997 or
CONTRL, and EDI files out for subscriptions (832, 846, PRICAT, INVRPT)."""

from __future__ import annotations

import csv
import datetime as dt
import fcntl
import fnmatch
import json
import logging
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from mastersync.connectors.edi.edifact.contrl import build_contrl, needs_contrl
from mastersync.connectors.edi.edifact.envelope import EdifactEnvelope
from mastersync.connectors.edi.edifact.model import EdifactDocument
from mastersync.connectors.edi.edifact.reader import parse_edifact_bytes
from mastersync.connectors.edi.edifact.writer import write_invrpt, write_pricat
from mastersync.connectors.edi.errors import EdiError, EdiWriteError
from mastersync.connectors.edi.spec import EdiExport, EdiSettings
from mastersync.connectors.edi.x12.ack import acknowledged_groups, build_997
from mastersync.connectors.edi.x12.envelope import X12Envelope
from mastersync.connectors.edi.x12.model import X12Document
from mastersync.connectors.edi.x12.reader import parse_x12_bytes
from mastersync.connectors.edi.x12.writer import write_832, write_846
from mastersync.connectors.files.dropfolder import DropFolder, fingerprint, move_into
from mastersync.connectors.files.rounds import FileRounds
from mastersync.connectors.files.settings import DropFolderSettings
from mastersync.connectors.registry import ConnectorContext
from mastersync.domain.subscriptions import Operation
from mastersync.ports.connector import CheckResult, ReadFailure, SourceRecord
from mastersync.ports.outbound import (
    DeliveryAck,
    DeliveryFailed,
    DeliveryRequest,
    TerminalFailure,
    TransientFailure,
)

log = logging.getLogger("mastersync.edi")

# Writer fields that hold dates (CCYYMMDD); canonical values arrive as ISO dates or times.
_DATE_FIELDS = frozenset({"as_of", "effective_date"})
_X12_ENVELOPE_MAX = 15


def detect(data: bytes) -> str | None:
    """'x12', 'edifact' or None, from the first characters (BOM and whitespace skipped)."""
    head = data.lstrip(b"\xef\xbb\xbf").lstrip()[:3].upper()
    if head == b"ISA":
        return "x12"
    if head in (b"UNA", b"UNB"):
        return "edifact"
    return None


class ControlNumbers:
    """Interchange and group control numbers, counted up in a small file across processes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def next(self, kind: str, count: int = 1) -> int:
        """The next number of a kind (1, 2, ...; after 999999999, 1 again), or the first of
        ``count`` consecutive ones (a 997 numbers one group per group it acknowledges)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock, self.path.with_suffix(".lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # other hub processes write the same partner
            try:
                counts = json.loads(self.path.read_text()) if self.path.exists() else {}
            except ValueError:
                counts = {}
            number = int(counts.get(kind, 0)) % 999_999_999 + 1
            if number + count - 1 > 999_999_999:
                number = 1  # the run would wrap: it starts again from 1 instead
            counts[kind] = number + count - 1
            partial = self.path.with_name(self.path.name + ".part")
            partial.write_text(json.dumps(counts))
            os.replace(partial, self.path)
            return number


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".part")  # partners never see half a file
    partial.write_text(text, encoding="utf-8", newline="")
    os.replace(partial, path)


class EdiFile:
    """One claimed file: parsed once, acknowledged when first read, ingested as one claim per
    record stream, archived (with its rejects) when the last of them is done."""

    def __init__(
        self,
        path: Path,
        domains: Sequence[str],
        acknowledge: Callable[[EdiFile], None] | None = None,
    ) -> None:
        self.path = path
        self._acknowledge = acknowledge
        self._acknowledged = False
        self.name = path.name
        self.fingerprint = fingerprint(path)
        data = path.read_bytes()
        self.standard = detect(data)
        self.document: X12Document | EdifactDocument | None = None
        if self.standard == "x12":
            self.document = parse_x12_bytes(data)
        elif self.standard == "edifact":
            self.document = parse_edifact_bytes(data)
        self.domains = [d for d in domains if self._records(d)] or list(domains[:1])
        self.pending = len(self.domains)
        self.rejects: list[tuple[str, str, str, str]] = []

    def _records(self, domain: str) -> list[dict[str, str]]:
        if self.document is None:
            return []
        return [dict(r) for r in self.document.records(domain)]

    def failures(self) -> list[ReadFailure]:
        """What could not be read: an unknown format, or each error of a rejected part."""
        if self.document is None:
            return [
                ReadFailure(
                    f"{self.name}:1",
                    "edi.format",
                    "neither X12 (ISA) nor EDIFACT (UNA/UNB) at the start of the file",
                    None,
                )
            ]
        return [
            ReadFailure(_where(self.name, e), f"edi.{e.rule}", str(e), e.value or None)
            for e in self.document.all_errors
            if e.severity == "error"
        ]

    def acknowledge(self) -> None:
        """Answer the file's interchanges (997 or CONTRL), once."""
        if self._acknowledge is not None and not self._acknowledged:
            self._acknowledge(self)
            self._acknowledged = True  # only once written: a failed write is tried again

    def claims(self) -> list[EdiClaim]:
        """One claim per record stream; read failures travel with the first."""
        return [EdiClaim(self, d, first=i == 0) for i, d in enumerate(self.domains)]

    def settle(self, rejects: Sequence[tuple[str, str, str, str]] | None) -> None:
        """One stream done (None: set aside as a duplicate); archive after the last."""
        if rejects is not None:
            self.rejects.extend(rejects)
        self.pending -= 1
        if self.pending > 0 or not self.path.exists():
            return
        self.path.with_name(f".{self.name}.acked").unlink(missing_ok=True)
        if rejects is None and not self.rejects:
            move_into(self.path, self.path.parent.parent / "duplicates")
            return
        day = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d")
        target = move_into(self.path, self.path.parent.parent / "archive" / day)
        if self.rejects:
            with target.with_name(target.name + ".rejects.csv").open(
                "w", encoding="utf-8", newline=""
            ) as handle:
                writer = csv.writer(handle)
                writer.writerow(["where", "field", "rule", "message"])
                writer.writerows(self.rejects)


def _where(name: str, error: EdiError) -> str:
    parts = [f"{name}:segment {error.file_position}" if error.file_position else name]
    if error.interchange_control:
        parts.append(f"interchange {error.interchange_control}")
    if error.group_control:
        parts.append(f"group {error.group_control}")
    if error.set_control:
        parts.append(f"{error.set_id or 'set'} {error.set_control}")
    return " ".join(parts)


class EdiClaim:
    """The records of one stream (item, price or inventory) of one EDI file."""

    def __init__(self, file: EdiFile, domain: str, *, first: bool) -> None:
        self.file = file
        self.domain = domain
        self.name = file.name
        self.first = first

    @property
    def fingerprint(self) -> str:
        """The file's content hash, per stream: each stream is ingested once."""
        return f"{self.file.fingerprint}:{self.domain}"

    def records(self) -> Iterator[SourceRecord | ReadFailure]:
        """The stream's records of the accepted sets (and the file's read failures)."""
        # Acknowledged here, before ingest, not when claimed: the poller reads only content
        # it has not ingested, so a file dropped again (a duplicate) is not answered twice.
        self.file.acknowledge()
        return self._read()

    def _read(self) -> Iterator[SourceRecord | ReadFailure]:
        if self.first:
            yield from self.file.failures()
        for record in self.file._records(self.domain):
            where = (
                f"{self.name}:segment {record.get('file_position', '?')} "
                f"{record.get('set_id', '')} {record.get('set_control', '')}"
            ).strip()
            yield SourceRecord(record, locator=where)

    def header_problem(
        self, system: str, missing_columns: Callable[[Sequence[str]], list[str]]
    ) -> str | None:
        """None: an EDI file has no header row (its envelopes are checked as it is read)."""
        return None

    def done(self, rejects: Sequence[tuple[str, str, str, str]]) -> None:
        """Archive the file once every stream of it is done."""
        self.file.settle(rejects)

    def duplicate(self) -> None:
        """This stream of this content was ingested before."""
        self.file.settle(None)


class EdiConnector(FileRounds):
    """A trading partner's EDI: files in (acknowledged), EDI files out."""

    def __init__(self, settings: EdiSettings, context: ConnectorContext) -> None:
        self.settings = settings
        self.context = context
        self.system = context.system
        self.folder = context.path(settings.folder or f"inbox/{context.system}")
        self.acks = context.path(settings.acks) if settings.acks else self.folder / "acks"
        self.drop = DropFolder(
            context.system,
            self.folder,
            {},
            DropFolderSettings(folder=str(self.folder), settle=settings.settle),
            settings.settle,
        )
        self.numbers = ControlNumbers(self.folder / ".control-numbers.json")

    # -- in -----------------------------------------------------------------------------

    def _matches(self, name: str) -> str | None:
        if name.startswith(".") or not fnmatch.fnmatch(name, self.settings.files):
            return None
        return "edi"

    def claim(self) -> list[EdiClaim]:
        """Claim settled files, one claim per record stream (acknowledged when first read)."""
        claims: list[EdiClaim] = []
        for _, path in self.drop.take(self._matches):
            claims.extend(EdiFile(path, self.settings.domains, self._acknowledge).claims())
        return claims

    def resume(self) -> list[EdiClaim]:
        """Files a crashed poller left half done; acknowledged when read if they were not yet."""
        claims: list[EdiClaim] = []
        for _, path in self.drop.left_over(self._matches):
            claims.extend(EdiFile(path, self.settings.domains, self._acknowledge).claims())
        return claims

    def _acknowledge(self, edi: EdiFile) -> None:
        """997 or CONTRL per interchange, written before ingest: they report on syntax.

        Acknowledgements (997, 999, CONTRL) get none, and take no control number."""
        marker = edi.path.with_name(f".{edi.name}.acked")
        if not self.settings.acknowledge or edi.document is None or marker.exists():
            return
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
        if isinstance(edi.document, X12Document):
            for ic in edi.document.interchanges:
                answered = acknowledged_groups(ic)
                if not answered:
                    continue  # only acknowledgements (or no group at all): nothing to answer
                try:
                    # First without numbers: a 997 the partner's own ISA makes unwritable
                    # (a sender id longer than ISA06's 15 characters) takes none, and stops
                    # neither this file nor the folder (it stopped every later file).
                    build_997(ic, interchange_control=1, group_control=1)
                except EdiWriteError as exc:
                    log.error(
                        "%s: no 997 for interchange %s (sender %s): %s",
                        edi.name,
                        ic.control_number,
                        ic.sender_id,
                        exc,
                    )
                    continue
                number = self.numbers.next("interchange")
                # One group number per group acknowledged, none shared with another 997.
                text = build_997(
                    ic,
                    interchange_control=number,
                    group_control=self.numbers.next("group", len(answered)),
                )
                _write_atomically(self.acks / f"997-{stamp}-{number:09d}.x12", text)
        else:
            for eic in edi.document.interchanges:
                if not needs_contrl(eic):
                    continue  # only CONTRL messages: a CONTRL is never answered
                number = self.numbers.next("interchange")
                text = build_contrl(eic, control_reference=str(number))
                _write_atomically(self.acks / f"CONTRL-{stamp}-{number:09d}.edi", text)
        marker.touch()

    # -- out ----------------------------------------------------------------------------

    def _render(self, spec: EdiExport, rows: list[dict[str, Any]], number: int, group: int) -> str:
        if spec.message in ("832", "846"):
            envelope = X12Envelope(
                sender_id=spec.sender_id,
                receiver_id=spec.receiver_id,
                interchange_control=number,
                group_control=group,
                sender_qualifier=spec.sender_qualifier,
                receiver_qualifier=spec.receiver_qualifier,
                usage_indicator=spec.usage,
                on_invalid=spec.on_invalid,
            )
            if spec.message == "832":
                return write_832(rows, envelope, catalog_number=str(number))
            return write_846(rows, envelope, report_number=str(number))
        edifact = EdifactEnvelope(
            sender_id=spec.sender_id,
            recipient_id=spec.receiver_id,
            control_reference=str(number),
            sender_qualifier=spec.sender_qualifier,
            recipient_qualifier=spec.receiver_qualifier,
            test=spec.usage == "T",
            on_invalid=spec.on_invalid,
        )
        if spec.message == "PRICAT":
            return write_pricat(rows, edifact, document_number=str(number))
        return write_invrpt(rows, edifact, document_number=str(number))

    def _export(
        self, name: str, spec: EdiExport, requests: list[DeliveryRequest]
    ) -> list[DeliveryAck | DeliveryFailed]:
        out: dict[int, DeliveryAck | DeliveryFailed] = {}
        live: list[int] = []
        rows: list[dict[str, Any]] = []
        for i, request in enumerate(requests):
            if request.operation is not Operation.UPSERT:
                # An 832/846 carries what is; a withdrawn record is simply no longer sent.
                out[i] = DeliveryAck(
                    request.master_id, str(request.version), response={"written": False}
                )
                continue
            try:
                rows.append(_writer_row(request.payload))
                live.append(i)
            except ValueError as exc:
                out[i] = TerminalFailure(f"{name}: {exc}")
        while live:
            try:
                # First with stand-in numbers: a record the writer refuses is taken out and
                # the rest tried again, and only the file written takes control numbers (each
                # try took one, and the partner saw gaps: its first file was number 3).
                self._render(spec, rows, 1, 1)
                x12 = spec.message in ("832", "846")
                number = self.numbers.next("interchange")
                text = self._render(spec, rows, number, self.numbers.next("group") if x12 else 1)
            except EdiWriteError as exc:
                if exc.record_index is None:
                    for i in live:
                        out[i] = TerminalFailure(f"{spec.message}: {exc}")
                    break
                # One bad record: it fails with the writer's reason, the others are written.
                bad = live.pop(exc.record_index)
                rows.pop(exc.record_index)
                out[bad] = TerminalFailure(f"{spec.message}: {exc}")
                continue
            stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
            suffix = "x12" if spec.message in ("832", "846") else "edi"
            try:
                _write_atomically(self.context.path(spec.folder) / f"{name}-{stamp}.{suffix}", text)
            except OSError as exc:
                for i in live:
                    out[i] = TransientFailure(f"cannot write {spec.message}: {exc.strerror}")
                break
            for i in live:
                out[i] = DeliveryAck(
                    requests[i].master_id, str(requests[i].version), response={"written": True}
                )
            break
        return [out.get(i, TransientFailure("not written")) for i in range(len(requests))]

    def _write(self, requests: list[DeliveryRequest]) -> list[DeliveryAck | DeliveryFailed]:
        out: list[DeliveryAck | DeliveryFailed | None] = [None] * len(requests)
        by_sub: dict[str, list[int]] = {}
        for i, r in enumerate(requests):
            by_sub.setdefault(r.subscription.split(".", 1)[1], []).append(i)
        for name, indexes in by_sub.items():
            spec = self.settings.exports.get(name)
            if spec is None:
                for i in indexes:
                    out[i] = TerminalFailure(f"{self.system}: no EDI export for {name}")
                continue
            results = self._export(name, spec, [requests[i] for i in indexes])
            for i, result in zip(indexes, results, strict=True):
                out[i] = result
        return [o if o is not None else TransientFailure("not written") for o in out]

    def check(self) -> CheckResult:
        """Whether the folders exist and can be written, and the envelopes fit."""
        details, ok = [], True
        folders = [("drop folder", self.folder), ("acknowledgements", self.acks)]
        folders += [(f"export {n}", self.context.path(e.folder)) for n, e in self.exports()]
        for label, path in folders:
            exists = path.is_dir()
            writable = exists and os.access(path, os.W_OK)
            ok = ok and writable
            state = "writable" if writable else "missing" if not exists else "read-only"
            details.append(f"{label} {path}: {state}")
        for name, spec in self.exports():
            if (
                spec.message in ("832", "846")
                and max(len(spec.sender_id), len(spec.receiver_id)) > _X12_ENVELOPE_MAX
            ):
                ok = False
                details.append(f"export {name}: X12 sender and receiver ids have 15 characters")
        return CheckResult(ok, details)

    def exports(self) -> list[tuple[str, EdiExport]]:
        """The configured exports."""
        return list(self.settings.exports.items())


def _writer_row(payload: dict[str, Any]) -> dict[str, Any]:
    """An outbound payload as the writers take it: no floats, dates as CCYYMMDD."""
    row: dict[str, Any] = {}
    for key, value in payload.items():
        if key.startswith("_") or value is None or value == "":
            continue
        if isinstance(value, bool):
            raise ValueError(f"field {key}: a yes/no value has no EDI form")
        if isinstance(value, float):
            # JSON numbers arrive as floats: their shortest repr is the decimal that was meant.
            number = Decimal(repr(value))
            value = number.to_integral() if number == number.to_integral() else number.normalize()
        if key in _DATE_FIELDS and isinstance(value, str):
            try:
                value = dt.date.fromisoformat(value[:10]).strftime("%Y%m%d")
            except ValueError:
                raise ValueError(f"field {key}: {value!r} is not a date") from None
        if isinstance(value, dict | list):
            raise ValueError(f"field {key}: nested values have no place in a flat EDI line")
        row[key] = value
    return row
