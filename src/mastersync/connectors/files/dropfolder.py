"""A drop folder: files appear, are claimed atomically, ingested, and archived."""

from __future__ import annotations

import datetime as dt
import fnmatch
import os
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

from mastersync.connectors.files.settings import FileSettings, open_records
from mastersync.ports.connector import ReadFailure, SourceRecord

# Files still being written carry these suffixes, or were changed too recently.
_PARTIAL = (".tmp", ".part", ".partial", ".crdownload", ".filepart")


class FileClaim:
    """One file, moved into processing/ so that no other poller reads it."""

    def __init__(self, domain: str, path: Path, settings: FileSettings) -> None:
        self.domain = domain
        self.path = path
        self.name = path.name
        self.settings = settings

    def records(self) -> Iterator[SourceRecord | ReadFailure]:
        """The file's records."""
        return open_records(self.path, self.settings)

    def done(self, rejected: int) -> None:
        """Move the file to archive/<date>/ (a name clash gets a time suffix)."""
        day = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d")
        target = self.path.parent.parent / "archive" / day / self.name
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            target = target.with_name(f"{target.stem}.{time.time_ns()}{target.suffix}")
        os.replace(self.path, target)


class DropFolder:
    """A system's drop folder: ``watch: {domain: pattern}`` under ``folder``."""

    def __init__(
        self,
        system: str,
        folder: Path,
        watch: Mapping[str, str],
        settings: FileSettings,
        settle: float = 2.0,
    ) -> None:
        self.system = system
        self.folder = folder
        self.watch = dict(watch)
        self.settings = settings
        self.settle = settle
        self.processing = folder / "processing"

    def _ready(self, path: Path, now: float) -> bool:
        if path.name.startswith(".") or path.name.lower().endswith(_PARTIAL):
            return False
        try:
            return now - path.stat().st_mtime >= self.settle
        except FileNotFoundError:
            return False

    def claim(self) -> list[FileClaim]:
        """Claim every settled file matching a watched pattern, oldest name first."""
        if not self.folder.is_dir():
            return []
        self.processing.mkdir(exist_ok=True)
        now = time.time()
        claims = []
        for path in sorted(p for p in self.folder.iterdir() if p.is_file()):
            domain = next(
                (d for d, pattern in self.watch.items() if fnmatch.fnmatch(path.name, pattern)),
                None,
            )
            if domain is None or not self._ready(path, now):
                continue
            target = self.processing / path.name
            try:
                # rename is atomic on one file system: two pollers never take one file.
                os.rename(path, target)
            except FileNotFoundError:
                continue
            claims.append(FileClaim(domain, target, self.settings))
        return claims

    def resume(self) -> list[FileClaim]:
        """Files a crashed poller left in processing/ (ingest recognises what it applied)."""
        if not self.processing.is_dir():
            return []
        claims = []
        for path in sorted(self.processing.iterdir()):
            domain = next(
                (d for d, pattern in self.watch.items() if fnmatch.fnmatch(path.name, pattern)),
                None,
            )
            if domain is not None:
                claims.append(FileClaim(domain, path, self.settings))
        return claims
