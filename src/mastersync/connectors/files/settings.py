"""Settings of the file connector, as written under a system's `connector:` key."""

from __future__ import annotations

import codecs
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from mastersync.connectors.files.readers import read_file
from mastersync.ports.connector import ReadFailure, SourceRecord


class FileSettings(BaseModel):
    """How a system's files are read."""

    model_config = ConfigDict(extra="allow")

    type: str = "files"
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
        codecs.lookup(value)  # raises LookupError -> a validation error naming the key
        return value


def file_settings(connector: Mapping[str, Any]) -> FileSettings:
    """File settings from a system's connector block (any type may have a drop folder)."""
    keys = set(FileSettings.model_fields)
    return FileSettings.model_validate({k: v for k, v in connector.items() if k in keys})


def open_records(path: Path, settings: FileSettings) -> Iterator[SourceRecord | ReadFailure]:
    """Records of one file, read the way the system writes its files."""
    suffix = path.suffix.lower()
    if suffix in (".csv", ".txt"):
        return read_file(path, delimiter=settings.delimiter, encoding=settings.encoding)
    if suffix == ".tsv":
        return read_file(path, encoding=settings.encoding)
    return read_file(path)
