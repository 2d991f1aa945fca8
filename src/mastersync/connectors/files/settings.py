"""Settings and registry entry of the file connector (light: imports no reader)."""

from __future__ import annotations

import codecs
import csv
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from mastersync.connectors.files.readers import read_file, read_header, unsupported
from mastersync.connectors.registry import ConnectorSettings, ConnectorSpec
from mastersync.ports.connector import Capability, ReadFailure, SourceRecord


class DropFolderSettings(BaseModel):
    """Reading files: the drop folder, what to take from it, and how files are written."""

    model_config = ConfigDict(extra="forbid")
    folder: str | None = None
    # Drop folder: domain -> file pattern ("items*.csv"); `mastersync run` polls it.
    watch: dict[str, str] = Field(default_factory=dict)
    # Seconds a file must be unchanged before it is taken (still being written otherwise).
    settle: float = Field(default=2.0, ge=0)
    delimiter: str = Field(default=",", min_length=1, max_length=1)
    encoding: str = "utf-8"

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str) -> str:
        try:
            codecs.lookup(value)
        except LookupError:
            # A ValueError, which pydantic reports naming the key (a LookupError escaped).
            raise ValueError(f"unknown encoding {value!r}") from None
        return value


class ExportSpec(BaseModel):
    """Files written for a subscription: one file per delivery round."""

    model_config = ConfigDict(extra="forbid")
    folder: str
    format: Literal["csv", "jsonl"] = "csv"
    # Columns of a CSV export, in order (default: the fields of the first record).
    columns: list[str] | None = None


class FileSettings(DropFolderSettings, ConnectorSettings):
    """type: files."""

    type: Literal["files"] = "files"
    # subscription name (under the system's outbound) -> export
    exports: dict[str, ExportSpec] = Field(default_factory=dict)


def default_folder(system: str) -> str:
    """The drop folder a file connector reads when its settings name none."""
    return f"inbox/{system}"


def file_settings(connector: Mapping[str, Any]) -> DropFolderSettings:
    """The drop-folder part of any connector block (any type may have a drop folder)."""
    keys = set(DropFolderSettings.model_fields)
    return DropFolderSettings.model_validate({k: v for k, v in connector.items() if k in keys})


def open_records(path: Path, settings: DropFolderSettings) -> Iterator[SourceRecord | ReadFailure]:
    """Records of one file, read the way the system writes its files."""
    suffix = path.suffix.lower()
    if suffix in (".csv", ".txt"):
        return read_file(path, delimiter=settings.delimiter, encoding=settings.encoding)
    if suffix == ".tsv":
        return read_file(path, encoding=settings.encoding)
    return read_file(path)


def header_problem(
    path: Path,
    settings: DropFolderSettings,
    system: str,
    missing_columns: Callable[[Sequence[str]], list[str]],
    mapping: str,
) -> str | None:
    """Why a CSV file's header cannot serve a mapping (None: it can): its encoding, its
    delimiter, columns the mapping reads, or no header line at all.

    Checked once per file, so that a file in the wrong shape is one clear problem rather
    than a failed field of every record.
    """
    wrong_type = unsupported(path)
    if wrong_type is not None:
        # A watch pattern that takes any file (`*`): a problem of the file, archived with
        # it; raised from the read, it stopped the poller at this file at every poll.
        return wrong_type
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".tsv", ".txt"):
        return None
    delimiter = "\t" if suffix == ".tsv" else settings.delimiter
    try:
        header = read_header(path, delimiter=delimiter, encoding=settings.encoding)
    except UnicodeDecodeError as exc:
        return (
            f"the header is not {settings.encoding} (byte {exc.start + 1}); set the "
            f"connector's encoding (cp1252, utf-16, ...) for {system}'s files"
        )
    except UnicodeError as exc:
        # Python's UTF-16 and UTF-32 codecs say "stream does not start with BOM" as a
        # plain UnicodeError: it went up as a traceback (and a dropped file stayed in
        # processing/ for good).
        return (
            f"the file is not {settings.encoding} ({exc}); set the connector's encoding "
            f"(cp1252, utf-8, ...) for {system}'s files"
        )
    except csv.Error as exc:
        return f"the header cannot be read as CSV: {exc}"
    if not header:
        # No line but blank ones (0 bytes, a byte order mark alone): it lacks every mapped
        # column. Taken as "nothing changed", it said "received 0, rejected 0" and exit 0
        # even under --strict, for what is as likely a failed export; a file with its
        # header and no rows says "nothing changed" and is read.
        return "no header line: the file is empty"
    missing = missing_columns(header)
    if not missing:
        return None
    return _delimiter_hint(header, delimiter, system) or (
        f"the {mapping} mapping reads column(s) {', '.join(missing)}, which the file's header lacks"
    )


def _delimiter_hint(header: Sequence[str], delimiter: str, system: str) -> str | None:
    """What to change when the header, read as one column, splits by another delimiter
    (an export with commas where the connector says semicolons, say)."""
    if len(header) != 1:
        return None
    for other in (",", ";", "\t", "|"):
        if other != delimiter and other in header[0]:
            shown = {"\t": "a tab"}.get(other, repr(other))
            cut = header[0] if len(header[0]) <= 60 else header[0][:59] + "…"
            return (
                f"the header is one column ({cut!r}): the file looks delimited by {shown}, "
                f"where {system}'s connector says {delimiter!r} (set its `delimiter`)"
            )
    return None


SPEC = ConnectorSpec(
    name="files",
    description="Drop folders of CSV, TSV, JSON Lines and XLSX files; file exports out",
    capabilities=frozenset(
        {Capability.READ_FULL, Capability.RECEIVE_PUSH, Capability.WRITE_UPSERT}
    ),
    settings=FileSettings,
    factory="mastersync.connectors.files.connector:FilesConnector",
    writes="exports",
)
