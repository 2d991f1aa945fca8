"""What inbound connectors hand to the pipeline: records (or failures to read one), and
claims of new input for the running hub to poll."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
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

    @property
    def domain(self) -> str:
        """The domain its records belong to."""
        ...

    @property
    def name(self) -> str:
        """What it is called (a file name), for people."""
        ...

    @property
    def fingerprint(self) -> str | None:
        """A hash of the content: the same content again is a duplicate, set aside unread."""
        ...

    def records(self) -> Iterator[SourceRecord | ReadFailure]:
        """The claim's records."""
        ...

    def header_problem(
        self, system: str, missing_columns: Callable[[Sequence[str]], list[str]]
    ) -> str | None:
        """Why the input's header row cannot serve the mapping (its encoding, delimiter or
        missing columns; ``missing_columns`` names what a header lacks), or None."""
        ...

    def done(self, rejects: Sequence[tuple[str, str, str, str]]) -> None:
        """Settle the claim after its ingest; rejects are (where, field, rule, message)."""
        ...

    def duplicate(self) -> None:
        """Set aside input whose content was ingested before."""
        ...


class InboundSource(Protocol):
    """Something `mastersync run` polls for new input of one system."""

    @property
    def system(self) -> str:
        """The system the input comes from."""
        ...

    def claim(self) -> Sequence[Claim]:
        """Take what is ready; each claim is taken by exactly one poller."""
        ...


class Capability(StrEnum):
    """What a connector can do for a system."""

    READ_FULL = "read_full"
    READ_INCREMENTAL = "read_incremental"
    RECEIVE_PUSH = "receive_push"
    WRITE_UPSERT = "write_upsert"
    WRITE_DEACTIVATE = "write_deactivate"
    READ_STATE = "read_state"


class ConnectorError(Exception):
    """A connected system did not do what was asked; ``transient`` says whether to retry."""

    transient = True

    def __init__(
        self, message: str, *, status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.retry_after = retry_after


class TransientError(ConnectorError):
    """Worth another try later: timeouts, 5xx, 429, outages, locks."""

    transient = True


class TerminalError(ConnectorError):
    """Not worth retrying as it is: bad credentials, 4xx, a table that does not exist."""

    transient = False


@dataclass(slots=True)
class Page:
    """One incremental read: records, and the cursor to persist once they are ingested."""

    records: list[SourceRecord | ReadFailure]
    cursor: str | None
    more: bool = False


class IncrementalSource(Protocol):
    """Reads a domain's records changed since a cursor (None: from the beginning)."""

    def read(self, domain: str, cursor: str | None, limit: int) -> Page:
        """The next page after ``cursor``."""
        ...


class StateReader(Protocol):
    """Reads what a system currently holds (for reconciliation)."""

    def read_state(self, domain: str) -> Iterator[tuple[str, dict[str, Any]]]:
        """(the system's key, native record) of every record of the domain."""
        ...


@dataclass(frozen=True)
class CheckResult:
    """What `mastersync check SYSTEM` found."""

    ok: bool
    details: list[str]
