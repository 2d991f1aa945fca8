"""What inbound connectors hand to the pipeline: records (or failures to read one), and
claims of new input for the running hub to poll."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(slots=True)
class SourceRecord:
    """One native record as a connector read it."""

    payload: dict[str, Any]
    # Where it came from, for people: "items.csv:12", "webhook 7f3a".
    locator: str | None = None
    trace_id: str | None = None
    # Re-merge even if this exact version was applied (retries after a config change).
    reapply: bool = False


@dataclass(slots=True)
class ReadFailure:
    """Input a connector could not even parse into a record."""

    locator: str
    rule: str
    message: str
    raw: Any


class Claim(Protocol):
    """Input taken from a source for one ingest run (a file moved aside, say)."""

    domain: str
    name: str

    def records(self) -> Iterator[SourceRecord | ReadFailure]:
        """The claim's records."""
        ...

    def done(self, rejected: int) -> None:
        """Settle the claim after its ingest (archive it, keep rejects beside it)."""
        ...


class InboundSource(Protocol):
    """Something `mastersync run` polls for new input of one system."""

    system: str

    def claim(self) -> Sequence[Claim]:
        """Take what is ready; each claim is taken by exactly one poller."""
        ...
