"""The file connector: a drop folder in, file exports out."""

from __future__ import annotations

import csv
import datetime as dt
import os
from pathlib import Path
from typing import Any

import orjson

from mastersync.connectors.files.dropfolder import DropFolder, FileClaim
from mastersync.connectors.files.rounds import FileRounds
from mastersync.connectors.files.settings import ExportSpec, FileSettings, default_folder
from mastersync.connectors.registry import ConnectorContext
from mastersync.domain.subscriptions import Operation
from mastersync.ports.connector import CheckResult
from mastersync.ports.outbound import (
    DeliveryAck,
    DeliveryFailed,
    DeliveryRequest,
    TerminalFailure,
    TransientFailure,
    without_nulls,
)


class FilesConnector(FileRounds):
    """Reads a system's drop folder and writes its exports."""

    def __init__(self, settings: FileSettings, context: ConnectorContext) -> None:
        self.settings = settings
        self.context = context
        self.system = context.system
        folder = context.path(settings.folder or default_folder(context.system))
        self.folder = DropFolder(context.system, folder, settings.watch, settings, settings.settle)

    def claim(self) -> list[FileClaim]:
        """Files ready in the drop folder."""
        return self.folder.claim()

    def resume(self) -> list[FileClaim]:
        """Files a crashed poller left half done."""
        return self.folder.resume()

    def check(self) -> CheckResult:
        """Whether the folders exist and can be written."""
        details, ok = [], True
        for label, path in [
            ("drop folder", self.folder.folder),
            *(
                (f"export {n}", self.context.path(e.folder))
                for n, e in self.settings.exports.items()
            ),
        ]:
            exists = path.is_dir()
            writable = exists and os.access(path, os.W_OK)
            ok = ok and writable
            details.append(
                f"{label} {path}: "
                f"{'writable' if writable else 'missing' if not exists else 'read-only'}"
            )
        return CheckResult(ok, details)

    def _export(self, spec: ExportSpec, name: str, rows: list[dict[str, Any]]) -> Path:
        folder = self.context.path(spec.folder)
        folder.mkdir(parents=True, exist_ok=True)
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
        final = folder / f"{name}-{stamp}.{spec.format}"
        partial = final.with_name(final.name + ".part")  # partners never see half a file
        if spec.format == "jsonl":
            partial.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
        else:
            columns = spec.columns or list(dict.fromkeys(k for r in rows for k in r))
            with partial.open("w", encoding="utf-8", newline="") as handle:
                writer = csv.DictWriter(handle, columns, extrasaction="ignore")
                writer.writeheader()
                writer.writerows(
                    {
                        k: (
                            ""
                            if v is None
                            else v
                            if isinstance(v, str | int | float)
                            else orjson.dumps(v).decode()
                        )
                        for k, v in r.items()
                    }
                    for r in rows
                )
        os.replace(partial, final)
        return final

    def _write(self, requests: list[DeliveryRequest]) -> list[DeliveryAck | DeliveryFailed]:
        out: list[DeliveryAck | DeliveryFailed | None] = [None] * len(requests)
        by_sub: dict[str, list[int]] = {}
        for i, r in enumerate(requests):
            by_sub.setdefault(r.subscription.split(".", 1)[1], []).append(i)
        for name, indexes in by_sub.items():
            spec = self.settings.exports.get(name)
            if spec is None:
                for i in indexes:
                    out[i] = TerminalFailure(f"{self.system}: no export for {name}")
                continue
            rows = [
                {
                    **_fields(spec, requests[i]),
                    "_master_id": requests[i].master_id,
                    "_version": requests[i].version,
                    "_operation": requests[i].operation.value,
                }
                for i in indexes
            ]
            try:
                self._export(spec, name, rows)
            except OSError as exc:
                for i in indexes:
                    out[i] = TransientFailure(f"cannot write the export: {exc.strerror}")
                continue
            for i in indexes:
                active = requests[i].operation is Operation.UPSERT
                out[i] = DeliveryAck(
                    requests[i].master_id, str(requests[i].version), response={"active": active}
                )
        return [o if o is not None else TransientFailure("not written") for o in out]


def _fields(spec: ExportSpec, request: DeliveryRequest) -> dict[str, Any]:
    """A record's fields as exported. In JSON lines a null (a field cleared at the hub) goes
    out for a record the partner has (the hub holds its key) and is left out of a new one,
    where the partner's default applies. A CSV row keeps it, as an empty cell either way:
    left out, a round of new records only would lose the column from the header."""
    if spec.format == "csv" or request.target_key is not None:
        return request.payload
    return without_nulls(request.payload)
