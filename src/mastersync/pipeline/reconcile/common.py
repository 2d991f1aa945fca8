"""What both roles of a reconciliation share: options, the result, chunked listings."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

from mastersync.domain.reconciliation import Bucket, DriftReport, ReconciliationRun, Role
from mastersync.pipeline.ids import new_id, utc_now
from mastersync.ports.store import Store

# progress(phase, records done): phases "listed" (read from the system), "hub" (the
# hub's own records looked through for ones the listing lacked) and "repair" (re-deliveries
# a target --repair queued).
Progress = Callable[[str, int], None]


@dataclass(frozen=True)
class ReconcileOptions:
    """How a reconciliation runs."""

    # Target: queue re-deliveries of missing and mismatched records. Source: ingest
    # records the hub lacks or holds an older state of.
    repair: bool = False
    # Records kept per bucket as examples (counts are always exact).
    examples: int = 20
    # Records compared per store round trip; the listing is never held whole.
    chunk: int = 500
    clock: Callable[[], str] = utc_now
    ids: Callable[[str], str] = new_id
    progress: Progress | None = None

    def advance(self, phase: str, done: int) -> None:
        """Report progress, if anyone listens."""
        if self.progress is not None and done:
            self.progress(phase, done)


# Drift no repair changes: what a consumer holds that the hub does not send (reported,
# never deleted), and what a source lists no more (filed in the inbox for a person).
_UNREPAIRED = {Role.TARGET: (Bucket.EXTRA,), Role.SOURCE: (Bucket.MISSING,)}


@dataclass
class Reconciliation:
    """One run's summary (as stored) and its drift report."""

    run: ReconciliationRun
    report: DriftReport
    notes: list[str] = field(default_factory=list)

    @property
    def unrepaired(self) -> int:
        """Drifted records ``--repair`` does not change."""
        return sum(self.report.counts[b] for b in _UNREPAIRED.get(self.run.role, ()))

    def as_dict(self) -> dict[str, Any]:
        """JSON shape."""
        run = self.run
        return {
            "run_id": run.run_id,
            "system": run.system,
            "domain": run.domain,
            "role": run.role.value,
            "subscription": run.subscription,
            "started_at": run.started_at,
            "finished_at": run.finished_at,
            "drift": self.report.drift,
            **self.report.as_dict(),
            "repair": run.repair,
            "notes": self.notes,
        }


def chunks(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    """Consecutive lists of up to ``size`` items, read lazily."""
    it = iter(items)
    while chunk := list(islice(it, size)):
        yield chunk


def later(first: str, second: str) -> bool:
    """Whether instant ``first`` (UTC text, as the store keeps it) comes after ``second``."""
    try:
        return _instant(first) > _instant(second)
    except ValueError:
        # Not ISO text (never written so by the hub): the fixed-width text orders alike.
        return first > second


def _instant(text: str) -> dt.datetime:
    moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    # A time without a zone is the store's UTC all the same.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)


def finish(store: Store, result: Reconciliation, clock: Callable[[], str]) -> Reconciliation:
    """Stamp the run's end and counts, and keep its summary in the store."""
    result.run.finished_at = clock()
    result.run.counts = result.report.count_dict()
    with store.unit_of_work() as uow:
        uow.save_reconciliation(result.run)
        uow.commit()
    return result
