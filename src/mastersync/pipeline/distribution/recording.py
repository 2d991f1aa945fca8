"""Recording a delivery round: each delivery's new state, the versions the consumer holds,
receipts in lineage and dead letters in the inbox, in one transaction."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import random
from collections.abc import Callable
from typing import Any

from mastersync.domain.delivery import (
    AWAITING_REFERENCE,
    Applied,
    Attempt,
    DeliveryStatus,
    after_failure,
    backoff_delay,
)
from mastersync.domain.golden import Contribution
from mastersync.domain.problems import Problem, ProblemKind
from mastersync.domain.records import ExceptionEntry, LineageEntry
from mastersync.domain.subscriptions import Operation, Subscription
from mastersync.pipeline.distribution.rounds import (
    Item,
    Moment,
    Outcome,
    Round,
    RoundReport,
    held_digest,
    not_sent,
    parse_instant,
    stamp,
)
from mastersync.ports.outbound import DeliveryAck, DeliveryFailed, NotSent, TerminalFailure
from mastersync.ports.store import DeliveryResults, Store

log = logging.getLogger("mastersync.hub")


class Recorder:
    """Records one subscription's rounds."""

    def __init__(
        self,
        store: Store,
        subscription: Subscription,
        *,
        clock: Callable[[], str],
        rng: random.Random,
    ) -> None:
        self.store, self.sub, self.clock, self.rng = store, subscription, clock, rng
        self.moment = Moment()

    # --- record: statuses, applied versions, receipts, dead letters (one transaction) ------
    def record(self, planned: Round, sent_items: list[tuple[Item, Outcome]]) -> RoundReport:
        now = self.clock()
        waiting = planned.waiting
        if planned.end is None:
            # From a bus: a copy redelivered while this round ran (a slow round) may have
            # been recorded by another round since; that round's outcome stands. (Should one
            # be recorded between this look and the insert below, the insert fails on the
            # queue's event key and the round's messages are redelivered, then found here.)
            taken = [i.delivery.event_id for i, _ in sent_items if i.delivery.id is None]
            taken += [d.event_id for d in waiting]
            done = self._recorded(taken)
            if done:
                sent_items = [
                    (i, o)
                    for i, o in sent_items
                    if i.delivery.id is not None or i.delivery.event_id not in done
                ]
                waiting = [d for d in waiting if d.event_id not in done]
        # Decided before taking the write lock, which other writers wait for.
        results, report, dead = self._outcomes(sent_items, now)
        queued = [i.delivery for i, _ in sent_items if i.delivery.id is not None]
        fresh = [i.delivery for i, _ in sent_items if i.delivery.id is None]
        with self.store.unit_of_work() as uow:
            if planned.end is not None:
                assert planned.start is not None
                if not uow.claim_cursor(f"sub:{self.sub.id}", planned.start, planned.end, now):
                    # Another hub runs this subscription and took these events first; what
                    # this round sent carried the same idempotency keys.
                    log.warning("%s: events taken by another hub; round dropped", self.sub.id)
                    return RoundReport()
            # Written once, as they end (sent, skipped, retrying or dead), and those that
            # wait; the dead need their ids, which their inbox entries name.
            dead_ones = {id(item.delivery) for item, _, _ in dead}
            uow.insert_deliveries([d for d in fresh if id(d) in dead_ones], ids=True)
            uow.insert_deliveries([*(d for d in fresh if id(d) not in dead_ones), *waiting])
            for item, reason, failure in dead:
                self._dead_letter(item, reason, failure, now, results)
            results.deliveries = queued
            uow.record_results(results)
            uow.commit()
        return report

    def _recorded(self, event_ids: list[str]) -> set[str]:
        """The events among these the subscription's queue holds already."""
        if not event_ids:
            return set()
        with self.store.unit_of_work(write=False) as uow:
            return uow.queued_events(self.sub.id, event_ids)

    def _outcomes(
        self, sent_items: list[tuple[Item, Outcome]], now: str
    ) -> tuple[DeliveryResults, RoundReport, list[tuple[Item, str, DeliveryFailed | None]]]:
        """Each delivery's new state, its receipt, and the ones to dead-letter."""
        results = DeliveryResults()
        report = RoundReport()
        dead: list[tuple[Item, str, DeliveryFailed | None]] = []
        for item, (sent, seconds) in sent_items:
            outcome = item.wait or sent
            d = item.delivery
            d.operation = item.request.operation.value if item.request else d.operation
            if item.settled is not None:
                status, reason = item.settled
                self._settle(item, status, reason, now, results, report, dead)
            elif isinstance(outcome, DeliveryAck):
                self._delivered(item, outcome, seconds, now, results, report)
            else:
                assert isinstance(outcome, DeliveryFailed)
                self._failed(item, outcome, seconds, now, report, dead)
        return results, report, dead

    def _settle(
        self,
        item: Item,
        status: DeliveryStatus,
        reason: str,
        now: str,
        results: DeliveryResults,
        report: RoundReport,
        dead: list[tuple[Item, str, DeliveryFailed | None]],
    ) -> None:
        d = item.delivery
        d.status, d.last_error = status, reason
        d.history = [*d.history, Attempt(now, status.value, reason).as_dict()]
        if status is DeliveryStatus.DEAD:
            report.dead += 1
            dead.append((item, reason, None))
        else:
            report.skipped += 1
            if d.replay:
                # Moot now: a dead first delivery of this version settles with the replay
                # (its dead letter was filed after the replay was queued, or it would be
                # closed already).
                note = reason if reason.startswith("superseded") else f"superseded: {reason}"
                results.resent.append((d.subscription, d.event_id, note, now))
            if item.holds is not None:
                # Held within this round, it has no time of its own yet.
                held = item.holds
                results.applied.append(dataclasses.replace(held, applied_at=held.applied_at or now))

    def _delivered(
        self,
        item: Item,
        ack: DeliveryAck,
        seconds: float,
        now: str,
        results: DeliveryResults,
        report: RoundReport,
    ) -> None:
        d, sub, request = item.delivery, self.sub, item.request
        assert request is not None
        latency = (self.moment(now) - parse_instant(d.occurred_at)).total_seconds() * 1000
        d.attempts += 1
        d.status, d.delivered_at, d.latency_ms = DeliveryStatus.DELIVERED, now, latency
        d.target_key, d.last_error = ack.target_key, None
        note = "duplicate" if ack.duplicate else "applied"
        d.history = [
            *d.history,
            Attempt(now, "delivered", note, round(seconds * 1000, 2)).as_dict(),
        ]
        active = request.operation is Operation.UPSERT
        applied_at = now
        held = item.applied
        if ack.duplicate and held is not None and held.version == d.version and held.applied_at:
            # The consumer had this version already (a replay, a redelivery): it was applied
            # when first acknowledged. Moving the time on would make a value the consumer
            # set since look older than the hub's last delivery (reconciliation's test for a
            # lost delivery).
            applied_at = held.applied_at
        results.applied.append(
            Applied(
                sub.id,
                d.master_id,
                d.version,
                ack.target_key,
                active,
                applied_at,
                ack.refs or None,
                held_digest(item, ack),
            )
        )
        known = item.applied.target_key if item.applied else None
        if ack.target_key and ack.target_key != known:
            results.target_keys.append(
                Contribution(
                    d.domain, sub.system, ack.target_key, d.master_id, 0, None, {}, "", now
                )
            )
        # The delivery row, written with this outcome, is the receipt: version V of master M
        # reached the system at T after so many attempts (the store's lineage reads it). A
        # lineage row of its own cost a sixth of the hub's time per delivery.
        if d.replay:
            # The consumer has this version now: a dead first delivery of it (dead after
            # the replay was queued: its dead letter was open then) settles with it.
            results.resent.append(
                (d.subscription, d.event_id, f"sent again by replay {d.replay}", now)
            )
        report.delivered += 1
        report.latencies_ms.append(latency)

    def _failed(
        self,
        item: Item,
        failure: DeliveryFailed,
        seconds: float,
        now: str,
        report: RoundReport,
        dead: list[tuple[Item, str, DeliveryFailed | None]],
    ) -> None:
        d, cfg = item.delivery, self.sub.delivery
        if not_sent(item, failure):
            self._held_back(item, failure, now, report)
            return
        d.attempts += 1
        terminal = isinstance(failure, TerminalFailure) or not failure.transient
        d.status = after_failure(d.attempts, cfg, terminal)
        d.last_error = failure.message
        d.history = [
            *d.history,
            Attempt(
                now,
                "terminal" if terminal else "transient",
                failure.message,
                round(seconds * 1000, 2),
            ).as_dict(),
        ]
        if d.status is DeliveryStatus.RETRYING:
            delay = backoff_delay(d.attempts, cfg, self.rng, failure.retry_after)
            d.next_attempt_at = stamp(self.moment(now) + dt.timedelta(seconds=delay))
            report.retrying += 1
            return
        report.dead += 1
        dead.append((item, failure.message, failure))

    def _held_back(
        self, item: Item, failure: DeliveryFailed, now: str, report: RoundReport
    ) -> None:
        """A delivery not sent: waiting for records still on their way to the consumer, or
        for its turn at a paced connector. Tried again later, its attempts untouched (they
        count what the consumer answers)."""
        d = item.delivery
        d.status, d.last_error = DeliveryStatus.RETRYING, failure.message
        outcome = "not sent" if isinstance(failure, NotSent) else "waiting"
        entry = Attempt(now, outcome, failure.message).as_dict()
        # One line however long it waits: the history is of attempts, not of rounds.
        last = d.history[-1] if d.history else None
        if last and last.get("outcome") == outcome:
            d.history = [*d.history[:-1], {**entry, "since": last.get("since", last["at"])}]
        else:
            d.history = [*d.history, entry]
        delay = backoff_delay(max(d.attempts, 1), self.sub.delivery, self.rng, failure.retry_after)
        d.next_attempt_at = stamp(self.moment(now) + dt.timedelta(seconds=delay))
        report.retrying += 1

    def _dead_letter(
        self,
        item: Item,
        reason: str,
        failure: DeliveryFailed | None,
        now: str,
        results: DeliveryResults,
    ) -> None:
        d, sub = item.delivery, self.sub
        rule = (
            "rejected"
            if failure is not None and not failure.transient
            else ("exhausted" if failure is not None else "undeliverable")
        )
        if item.wait is not None and item.awaiting:
            # Never sent: what it references did not reach the consumer. One group per
            # reference, retried by itself once the records are there (retry_parked).
            rule = AWAITING_REFERENCE
        problem = Problem(
            ProblemKind.DEAD_LETTER,
            item.field,
            rule,
            f"{sub.id}: version {d.version} of {d.master_id} not delivered after "
            f"{d.attempts} attempt(s): {reason}",
        )
        payload: dict[str, Any] = {
            "delivery_id": d.id,
            "subscription": sub.id,
            "master_id": d.master_id,
            "version": d.version,
            "request": item.request.payload if item.request else None,
            "response": failure.response if failure else None,
            "status": failure.status if failure else None,
            "attempts": d.history,
        }
        if rule == AWAITING_REFERENCE:
            payload["awaiting"] = {k: sorted(v) for k, v in item.awaiting.items()}
        trace = item.trace_id
        results.exceptions.append(
            ExceptionEntry(
                problem.kind.value,
                sub.system,
                d.domain,
                problem.rule,
                problem.message,
                problem.signature(sub.system, d.domain),
                payload,
                now,
                source_key=f"{sub.id}#{d.id}",
                master_id=d.master_id,
                field=problem.field,
                trace_id=trace,
                # The delivery's tries, as its message and history say (not the inbox's 1).
                attempts=max(d.attempts, 1),
            )
        )
        results.lineage.append(
            LineageEntry(
                trace or "",
                "deliver",
                "dead",
                now,
                d.domain,
                d.master_id,
                d.version,
                sub.system,
                d.target_key,
                None,
                None,
                {"subscription": sub.id, "attempts": d.attempts, "problems": [reason]},
            )
        )
