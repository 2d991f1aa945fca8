"""Fixtures of the Akeneo tests: a product in the standard format, CloudEvents as Akeneo
posts them, and their signatures."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).parent / "fixtures"


def document(name: str) -> dict[str, Any]:
    """A fixture file as JSON."""
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    return data


def body(name: str) -> bytes:
    """A fixture file's bytes, as they are posted."""
    return (FIXTURES / name).read_bytes()


def signature(secret: str, content: bytes) -> str:
    """What Akeneo puts in X-AKENEO-SIGNATURE-PRIMARY (or -SECONDARY)."""
    return hmac.new(secret.encode(), content, hashlib.sha256).hexdigest()


def time_of(name: str) -> float:
    """The Unix time of an event fixture (its CloudEvents 'time')."""
    stamp = document(name)["time"].replace("Z", "+00:00")
    return dt.datetime.fromisoformat(stamp).timestamp()
