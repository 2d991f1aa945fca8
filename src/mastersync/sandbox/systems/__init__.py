"""The sandbox's systems: each writes the world in its own native shapes, with its own faults."""

from __future__ import annotations

import csv
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson


@dataclass(frozen=True)
class Faults:
    """How often a system gets things wrong (fractions of records)."""

    bad_gtin: float = 0.015
    missing_gtin: float = 0.04
    bad_iban: float = 0.03
    bad_email: float = 0.01
    bad_number: float = 0.005
    unknown_reference: float = 0.005
    ownership_violation: float = 0.1
    no_tax_id: float = 0.2


NO_FAULTS = Faults(0, 0, 0, 0, 0, 0, 0, 0)


def rng_for(seed: int, system: str) -> random.Random:
    """A deterministic random stream per system."""
    return random.Random(f"{seed}-{system}")


def decimal_comma(value: Decimal, thousands: bool = False) -> str:
    """1234.5 -> '1234,50' (or '1.234,50')."""
    text = f"{value:,.2f}" if thousands else f"{value:.2f}"
    return text.replace(",", "\x00").replace(".", ",").replace("\x00", ".")


def write_csv(
    path: Path,
    header: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    delimiter: str = ",",
    encoding: str = "utf-8",
) -> int:
    """Write a CSV file; returns the number of rows."""
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with path.open("w", encoding=encoding, newline="") as handle:
        writer = csv.writer(handle, delimiter=delimiter, lineterminator="\r\n")
        writer.writerow(header)
        for row in rows:
            writer.writerow(["" if v is None else v for v in row])
            n += 1
    return n


def write_jsonl(path: Path, records: Iterable[dict[str, Any]]) -> int:
    """Write a JSON Lines file; returns the number of records."""
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with path.open("wb") as handle:
        for record in records:
            handle.write(orjson.dumps(record, default=str) + b"\n")
            n += 1
    return n
