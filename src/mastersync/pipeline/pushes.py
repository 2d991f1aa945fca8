"""Pushed changes (webhooks): ingested durably before they are acknowledged, each message
id at most once."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from mastersync.pipeline.ingest import Ingestor
from mastersync.ports.connector import ReadFailure, SourceRecord

_PRUNE_EVERY = 60.0


@dataclass(frozen=True)
class PushOutcome:
    """What came of one push: duplicate, or the ingest's counts."""

    duplicate: bool
    outcomes: dict[str, int]
    master_ids: list[str]


class PushIntake:
    """Takes verified pushes of any system: ingest, then remember the message id."""

    def __init__(self, ingestor: Ingestor, clock: Callable[[], float] = time.time) -> None:
        self.ingestor = ingestor
        self.clock = clock
        self._pruned = 0.0

    def _name(self, system: str, message_id: str) -> str:
        return f"hook:{system}:{message_id}"

    def seen(self, system: str, message_id: str) -> bool:
        """Whether this message was taken before (a retry after a lost acknowledgement)."""
        with self.ingestor.store.unit_of_work(write=False) as uow:
            return uow.cursor_state(self._name(system, message_id)) is not None

    def accept(
        self,
        system: str,
        domain: str,
        message_id: str | None,
        records: Sequence[SourceRecord | ReadFailure],
        id_lifetime: float,
    ) -> PushOutcome:
        """Ingest a push (its records commit, or raise); then mark its id as taken.

        A crash between the two ingests a retried push again, which applies nothing new:
        ingest recognises versions it has applied.
        """
        if message_id is not None and self.seen(system, message_id):
            return PushOutcome(True, {}, [])
        report = self.ingestor.ingest(
            system, domain, records, source=f"webhook {message_id or '-'}"
        )
        store = self.ingestor.store
        now = self.clock()
        with store.unit_of_work() as uow:
            if message_id is not None:
                uow.save_cursor_state(self._name(system, message_id), domain, _instant(now))

            if now - self._pruned > _PRUNE_EVERY:
                # Ids older than their lifetime cannot come back: the signature's timestamp
                # (or the sender's retry schedule) has expired.
                self._pruned = now
                uow.forget_cursor_states(f"hook:{system}:", _instant(now - id_lifetime))
            uow.commit()
        return PushOutcome(
            False, {str(k): v for k, v in report.outcomes.items()}, report.master_ids
        )


def _instant(unix: float) -> str:
    # The store's instant format (as utc_now), from the intake's own clock.
    return dt.datetime.fromtimestamp(unix, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
