"""Pushed changes (webhooks): ingested durably before they are acknowledged, each message
id (and, where the signature does not cover the id, each signed content) at most once."""

from __future__ import annotations

import datetime as dt
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from mastersync.pipeline.ingest import Ingestor
from mastersync.ports.connector import ReadFailure, SourceRecord

log = logging.getLogger("mastersync.webhooks")

_PRUNE_EVERY = 60.0
# A claim's state: "taking TOKEN UNTIL" (UNTIL in Unix seconds of the intake's clock). A
# taken push's state is its domain, as it always was, so ids remembered before claims
# existed still count; domains never contain a space.
_TAKING = "taking "


class InFlight(Exception):
    """Another request is taking the same push right now; the sender should retry later."""


@dataclass(frozen=True)
class PushOutcome:
    """What came of one push: duplicate, or the ingest's counts."""

    duplicate: bool
    outcomes: dict[str, int]
    master_ids: list[str]


class PushIntake:
    """Takes verified pushes of any system: claim, ingest, then remember the push.

    ``wait`` is how long (seconds) a request waits for another one taking the same push
    before it gives up with InFlight; ``lease`` how long a claim holds when its holder never
    finishes (a crashed process): after it, a retry takes the push over.
    """

    def __init__(
        self,
        ingestor: Ingestor,
        clock: Callable[[], float] = time.time,
        *,
        wait: float = 3.0,
        lease: float = 300.0,
        pause: Callable[[float], None] = time.sleep,
    ) -> None:
        self.ingestor = ingestor
        self.clock = clock
        self.wait = wait
        self.lease = lease
        self.pause = pause
        self._pruned = 0.0

    def _name(self, system: str, message_id: str) -> str:
        return f"hook:{system}:{message_id}"

    def _digest_name(self, system: str, domain: str, digest: str) -> str:
        # Its own namespace: a message id (an unsigned header, in the schemes that have
        # digests) can never name a digest's row, so it cannot claim one ahead of its push.
        # By domain: one signed body posted to two domains' URLs is two pushes.
        return f"hook-body:{system}:{domain}:{digest}"

    def seen(self, system: str, message_id: str) -> bool:
        """Whether this message was taken before (a retry after a lost acknowledgement)."""
        with self.ingestor.store.unit_of_work(write=False) as uow:
            return _taken(uow.cursor_state(self._name(system, message_id)))

    def accept(
        self,
        system: str,
        domain: str,
        message_id: str | None,
        records: Sequence[SourceRecord | ReadFailure],
        id_lifetime: float,
        digest: str | None = None,
    ) -> PushOutcome:
        """Claim the push's id and digest, ingest it (its records commit, or raise), then
        mark both as taken; a push whose id or digest was taken is a duplicate.

        ``digest`` is a hash of what the signature covers, for schemes whose signature
        does not cover the message id: a replay with a new id is caught by it. Raises
        InFlight when another request holds the claim longer than ``wait``. A crash between
        the ingest and the mark leaves a claim that expires after ``lease``; the retry then
        ingests again, which applies nothing new (ingest recognises versions it applied).
        """
        names = [self._name(system, message_id)] if message_id is not None else []
        if digest is not None:
            names.append(self._digest_name(system, domain, digest))
        claim = f"{_TAKING}{uuid.uuid4().hex} {self.clock() + self.lease:.6f}"
        if names and not self._claim(names, claim, message_id or f"(sha256 {digest})"):
            return PushOutcome(True, {}, [])
        try:
            report = self.ingestor.ingest(
                system, domain, records, source=f"webhook {message_id or '-'}"
            )
        except Exception:
            # Not stored, so not acknowledged: free the claim for the sender's retry now
            # rather than after the lease.
            if names:
                self._release(names, claim)
            raise
        store = self.ingestor.store
        now = self.clock()
        with store.unit_of_work() as uow:
            uow.lock_keys(names)
            for name in names:
                uow.save_cursor_state(name, domain, _instant(now))
            if now - self._pruned > _PRUNE_EVERY:
                # Ids and digests older than their lifetime cannot come back: the
                # signature's timestamp (or the sender's retry schedule) has expired.
                self._pruned = now
                before = _instant(now - id_lifetime)
                uow.forget_cursor_states(f"hook:{system}:", before)
                uow.forget_cursor_states(f"hook-body:{system}:", before)
            uow.commit()
        return PushOutcome(
            False, {str(k): v for k, v in report.outcomes.items()}, report.master_ids
        )

    def _claim(self, names: list[str], claim: str, label: str) -> bool:
        """Claim every name in one transaction; False if any was taken already. Waits
        while another request holds one of them (raising InFlight after ``wait``)."""
        deadline = time.monotonic() + self.wait
        pause = 0.005
        while True:
            with self.ingestor.store.unit_of_work() as uow:
                # Check and claim under one lock: two requests that both found a name free
                # both ingested, and a retry so taken could land after a newer push and
                # set the record back.
                uow.lock_keys(names)
                states = [uow.cursor_state(name) for name in names]
                if any(_taken(s) for s in states):
                    return False
                if not any(_holds(s, self.clock()) for s in states):
                    # Its row's time is the claim's end, so pruning never drops a live one.
                    at = _instant(_claim_until(claim))
                    for name in names:
                        uow.save_cursor_state(name, claim, at)
                    uow.commit()
                    return True
            if time.monotonic() >= deadline:
                raise InFlight(f"push {label} is being taken by another request")
            self.pause(pause)
            pause = min(pause * 2, 0.1)

    def _release(self, names: list[str], claim: str) -> None:
        """Give up this request's claim (it failed); a failure to do so leaves the claim to
        expire after the lease."""
        try:
            with self.ingestor.store.unit_of_work() as uow:
                uow.lock_keys(names)
                for name in names:
                    if uow.cursor_state(name) == claim:
                        # No state reads as never taken: the next request claims it.
                        uow.save_cursor_state(name, None, _instant(self.clock()))
                uow.commit()
        except Exception:
            log.warning("could not release the claim on %s; it expires by itself", names[0])


def _taken(state: str | None) -> bool:
    return state is not None and not state.startswith(_TAKING)


def _holds(state: str | None, now: float) -> bool:
    """Whether ``state`` is another request's claim that has not expired."""
    return state is not None and state.startswith(_TAKING) and _claim_until(state) > now


def _claim_until(state: str) -> float:
    try:
        return float(state.rpartition(" ")[2])
    except ValueError:
        return 0.0  # unreadable: treated as expired, not as held forever


def _instant(unix: float) -> str:
    # The store's instant format (as utc_now), from the intake's own clock.
    return dt.datetime.fromtimestamp(unix, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
