"""Settings and registry entry of the file connector (light: imports no reader)."""

from __future__ import annotations

import codecs
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from mastersync.connectors.files.readers import read_file
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


SPEC = ConnectorSpec(
    name="files",
    description="Drop folders of CSV, TSV, JSON Lines and XLSX files; file exports out",
    capabilities=frozenset(
        {Capability.READ_FULL, Capability.RECEIVE_PUSH, Capability.WRITE_UPSERT}
    ),
    settings=FileSettings,
    factory="mastersync.connectors.files.connector:FilesConnector",
)
