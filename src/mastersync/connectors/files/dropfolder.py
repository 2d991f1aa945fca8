"""A drop folder: files appear, are claimed atomically, ingested, and archived with their
rejects beside them."""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import fnmatch
import hashlib
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

from mastersync.connectors.files.settings import DropFolderSettings, header_problem, open_records
from mastersync.ports.connector import ReadFailure, SourceRecord

# Files still being written carry these suffixes, or were changed too recently.
_PARTIAL = (".tmp", ".part", ".partial", ".crdownload", ".filepart")


def fingerprint(path: Path) -> str:
    """SHA-256 of a file's content."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# Byte order marks a file of nothing may start with (UTF-8, UTF-16).
_BOMS = (codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
# Files up to this size are looked into for content; a larger one has some.
_SMALL = 1 << 16


def _empty(path: Path) -> bool:
    """Whether a file holds nothing but a byte order mark and blank lines."""
    if path.stat().st_size > _SMALL:
        return False
    data = path.read_bytes()
    for bom in _BOMS:
        data = data.removeprefix(bom)
    return not data.strip(b" \t\r\n\x00")


def _unique_name(path: Path, folder: Path) -> Path:
    """A name in ``folder`` for ``path`` that no file there has yet (its own if free)."""
    target = folder / path.name
    if target.exists():
        target = folder / f"{path.stem}.{time.time_ns()}.{os.getpid()}{path.suffix}"
    return target


def move_into(path: Path, folder: Path) -> Path:
    """Move a file into a folder, never over another file of the same name: its new path
    (FileNotFoundError if another process moved it first)."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / path.name
    while True:
        try:
            # A link is never made over an existing name (a rename replaces on POSIX, so a
            # file of the same name there, a crashed poller's left-over say, was lost).
            os.link(path, target)
            break
        except FileExistsError:
            target = _unique_name(path, folder)
        except FileNotFoundError:
            raise  # gone: another poller took it (the OSError below is for other causes)
        except OSError:
            # A file system without hard links (some network shares): rename to a free
            # name; only one rename of the source succeeds, so still one taker.
            target = _unique_name(path, folder)
            os.rename(path, target)
            return target
    try:
        os.unlink(path)
    except FileNotFoundError:
        # Another poller linked the same file and unlinked it first: the file is its.
        target.unlink(missing_ok=True)
        raise
    return target


class FileClaim:
    """One file, moved into processing/ so that no other poller reads it."""

    def __init__(self, domain: str, path: Path, settings: DropFolderSettings) -> None:
        self.domain = domain
        self.path = path
        self.name = path.name
        self.settings = settings
        # An empty file has no content to have been ingested before: with one, every empty
        # file after the first was set aside as a duplicate of it (an empty CSV file, which
        # is refused, of an empty JSON Lines file, which is read), never refused or read.
        self.fingerprint: str | None = None if _empty(path) else fingerprint(path)

    def records(self) -> Iterator[SourceRecord | ReadFailure]:
        """The file's records."""
        return open_records(self.path, self.settings)

    def header_problem(
        self, system: str, missing_columns: Callable[[Sequence[str]], list[str]]
    ) -> str | None:
        """Why the file's header cannot serve the mapping (None: it can; an empty file has
        none, and is refused)."""
        return header_problem(
            self.path, self.settings, system, missing_columns, f"{system}.{self.domain}"
        )

    def _day(self) -> Path:
        return self.path.parent.parent / "archive" / dt.datetime.now(dt.UTC).strftime("%Y-%m-%d")

    def done(self, rejects: Sequence[tuple[str, str, str, str]]) -> None:
        """Archive the file; records that were not applied go to a reject file beside it,
        one line each with where it was read, the field, the rule and the reason."""
        target = move_into(self.path, self._day())
        if rejects:
            with target.with_name(target.name + ".rejects.csv").open(
                "w", encoding="utf-8", newline=""
            ) as handle:
                writer = csv.writer(handle)
                writer.writerow(["line", "field", "rule", "message"])
                writer.writerows(rejects)

    def duplicate(self) -> None:
        """The same content was ingested before: set it aside unread."""
        move_into(self.path, self.path.parent.parent / "duplicates")


class DropFolder:
    """A system's drop folder: ``watch: {domain: pattern}`` under ``folder``."""

    def __init__(
        self,
        system: str,
        folder: Path,
        watch: Mapping[str, str],
        settings: DropFolderSettings,
        settle: float = 2.0,
    ) -> None:
        self.system = system
        self.folder = folder
        self.watch = dict(watch)
        self.settings = settings
        self.settle = settle
        self.processing = folder / "processing"

    def _domain(self, name: str) -> str | None:
        return next(
            (d for d, pattern in self.watch.items() if fnmatch.fnmatch(name, pattern)), None
        )

    def _ready(self, path: Path, now: float) -> bool:
        if path.name.startswith(".") or path.name.lower().endswith(_PARTIAL):
            return False
        try:
            return now - path.stat().st_mtime >= self.settle
        except FileNotFoundError:
            return False

    def take(self, domain_of: Callable[[str], str | None] | None = None) -> list[tuple[str, Path]]:
        """Move every settled file matching a pattern into processing/, oldest name first:
        (its domain, its new path)."""
        if not self.folder.is_dir():
            return []
        domain_of = domain_of or self._domain
        self.processing.mkdir(exist_ok=True)
        now = time.time()
        taken = []
        for path in sorted(p for p in self.folder.iterdir() if p.is_file()):
            domain = domain_of(path.name)
            if domain is None or not self._ready(path, now):
                continue
            try:
                # Only one poller's unlink (or rename) of the file succeeds: two pollers
                # never take one file.
                target = move_into(path, self.processing)
            except FileNotFoundError:
                continue
            taken.append((domain, target))
        return taken

    def left_over(
        self, domain_of: Callable[[str], str | None] | None = None
    ) -> list[tuple[str, Path]]:
        """Files a crashed poller left in processing/: (domain, path)."""
        if not self.processing.is_dir():
            return []
        domain_of = domain_of or self._domain
        return [
            (d, p)
            for p in sorted(self.processing.iterdir())
            if p.is_file() and not p.name.startswith(".") and (d := domain_of(p.name)) is not None
        ]

    def claim(self) -> list[FileClaim]:
        """Claim every settled file matching a watched pattern, oldest name first."""
        return [FileClaim(d, p, self.settings) for d, p in self.take()]

    def resume(self) -> list[FileClaim]:
        """Files a crashed poller left in processing/ (ingest recognises what it applied)."""
        return [FileClaim(d, p, self.settings) for d, p in self.left_over()]
