"""The exceptions inbox: retry records through the current configuration, or ignore them."""

from __future__ import annotations

import datetime as dt
import time
from collections import defaultdict
from dataclasses import dataclass, field

from mastersync.domain.delivery import AWAITING_REFERENCE
from mastersync.domain.mapping.mapper import Mapper, MappingFailed
from mastersync.domain.problems import ProblemKind
from mastersync.domain.records import ExceptionEntry, ExceptionStatus
from mastersync.domain.versions import Version, compare
from mastersync.pipeline.governance.writes import API_LOCATOR, canonical_mapper
from mastersync.pipeline.ids import utc_now
from mastersync.pipeline.ingest import Ingestor
from mastersync.ports.connector import SourceRecord
from mastersync.ports.store import ExceptionFilter, Store, UnitOfWork

# Records parked for a reference not there yet are tried again after 0.5 s, 1 s, 2 s, …
# up to this long between tries.
PARKED_MAX_WAIT = 600.0


def parked_wait(attempts: int) -> float:
    """Seconds between tries of a parked record, after this many attempts."""
    return float(min(PARKED_MAX_WAIT, 0.25 * 2 ** min(attempts, 20)))


class InboxError(Exception):
    """An inbox action that cannot be done, with the reason."""


@dataclass
class RetryReport:
    """What a retry did to each inbox entry."""

    resolved: list[int] = field(default_factory=list)
    still_failing: list[int] = field(default_factory=list)
    # Dead letters sent back to the delivery queue: the entry is closed, its outcome comes
    # with the hub's next round (a new entry if the consumer refuses it again).
    queued: list[int] = field(default_factory=list)
    skipped: dict[int, str] = field(default_factory=dict)
    # Among the resolved: dead letters a newer version made moot (nothing sent).
    superseded: list[int] = field(default_factory=list)
    # Among the still failing: entries closed because their record no longer fails that
    # way, though it was rejected again under another rule -> the entries it fails under.
    failing_as: dict[int, list[int]] = field(default_factory=dict)


class ExceptionsInbox:
    """Acts on inbox entries; reads go straight to the store."""

    def __init__(self, store: Store, ingestor: Ingestor, *, references_every: float = 30.0) -> None:
        self.store = store
        self.ingestor = ingestor
        # How often retry_parked looks whether dead letters awaiting a reference can go:
        # each look reads them all, and the poller runs twice a second.
        self.references_every = references_every
        self._references_at: float | None = None

    def entries(
        self, ids: list[int] | None = None, signature: str | None = None
    ) -> list[ExceptionEntry]:
        """Open entries by id or by signature."""
        with self.store.unit_of_work(write=False) as uow:
            if signature:
                found = uow.exceptions(ExceptionFilter(signature=signature, limit=100_000))
                if not found:
                    raise InboxError(
                        f"no open inbox entry has the signature {signature!r} "
                        "(`mastersync exceptions list --group` shows them)"
                    )
                return found
            found = []
            for ex_id in ids or []:
                entry = uow.exception(ex_id)
                if entry is None:
                    raise InboxError(f"no inbox entry {ex_id}")
                found.append(entry)
            return found

    def retry(self, entries: list[ExceptionEntry]) -> RetryReport:
        """Run each entry's record again through the current landscape."""
        report = RetryReport()
        # By system and domain, and for a record written through the API, by the shape it
        # came in (canonical, with a version or without): the landscape has no inbound
        # mapping for it, and retrying with one refused every such entry.
        groups: dict[tuple[str, str, bool | None, str | None, str | None], list[ExceptionEntry]] = (
            defaultdict(list)
        )
        for entry in entries:
            assert entry.id is not None
            if entry.status is not ExceptionStatus.OPEN:
                report.skipped[entry.id] = f"already {entry.status.value}"
            elif entry.kind == ProblemKind.DEAD_LETTER:
                self._requeue(entry, report)
            elif entry.kind == ProblemKind.DRIFT:
                report.skipped[entry.id] = (
                    "found by reconciliation: run `mastersync reconcile` again once the "
                    "system is fixed, or ignore this"
                )
            elif entry.kind == ProblemKind.PARSE_ERROR:
                report.skipped[entry.id] = (
                    "unreadable input cannot be retried: fix the "
                    "source file and ingest it again, or ignore this"
                )
            elif not isinstance(entry.payload, dict):
                report.skipped[entry.id] = "no record payload was kept"
            else:
                # By writer too: a record retried is written as whoever sent it (a person
                # through the API stays the requester of a four-eyes hold it makes).
                by = (entry.system, entry.domain, _api_shape(entry), entry.actor, entry.channel)
                groups[by].append(entry)
        for (system, domain, versioned, actor, channel), group in groups.items():
            mapper = (
                canonical_mapper(system, domain, versioned)
                if versioned is not None
                else self.ingestor.landscape.mapper(system, domain)
            )
            records = [
                SourceRecord(e.payload, e.locator, e.trace_id, reapply=True)
                for e in self._newest(system, domain, group, mapper)
            ]
            batch = self.ingestor.ingest(
                system,
                domain,
                records,
                source="retry",
                mapper=mapper,
                actor=actor,
                channel=f"retry:{channel}" if channel else None,
            )
            with self.store.unit_of_work(write=False) as uow:
                now = uow.exceptions_by_id([e.id for e in group if e.id is not None])
                closed = [
                    e
                    for e in group
                    if (after := now.get(e.id or 0)) is None
                    or after.status is not ExceptionStatus.OPEN
                ]
                again = _failing_again(uow, system, domain, batch.batch_id, closed)
            for entry in group:
                assert entry.id is not None
                after = now.get(entry.id)
                if after is not None and after.status is ExceptionStatus.OPEN:
                    report.still_failing.append(entry.id)
                elif entry.source_key in again:
                    # Closed because the record no longer fails this way, but rejected
                    # again under another rule: not resolved (review: "resolved: 1" for a
                    # record a retry had just rejected with a new entry).
                    report.still_failing.append(entry.id)
                    report.failing_as[entry.id] = again[entry.source_key]
                else:
                    report.resolved.append(entry.id)
        return report

    def _newest(
        self, system: str, domain: str, group: list[ExceptionEntry], mapper: Mapper
    ) -> list[ExceptionEntry]:
        """One entry per record: the one keeping its newest source version among all of
        the record's open entries, not only those asked for.

        Each entry keeps the payload its record last failed it with, so a record's entries
        can hold different versions: running an older one would go back behind the newer
        (a retry of a v18 entry replaced the v19 another entry kept, and v19 was lost).
        """
        keys = {e.source_key for e in group if e.source_key}
        with self.store.unit_of_work(write=False) as uow:
            siblings = uow.open_exception_keys(domain, system, keys) if keys else {}
            ids = {e.id for found in siblings.values() for e in found}
            entries = {e.id: e for e in group}
            shape = _api_shape(group[0])
            entries.update(
                (ex_id, entry)
                for ex_id, entry in uow.exceptions_by_id(ids - set(entries)).items()
                if isinstance(entry.payload, dict)
                and entry.kind
                not in (ProblemKind.DEAD_LETTER, ProblemKind.DRIFT, ProblemKind.PARSE_ERROR)
                # Only a record's entries that came in the same shape: the mapping reads
                # its version.
                and _api_shape(entry) == shape
            )
        chosen: dict[str, tuple[ExceptionEntry, Version | None]] = {}
        for entry in sorted(
            entries.values(), key=lambda e: (e.updated_at or e.created_at, e.id or 0)
        ):
            try:
                _, version = mapper.identity(entry.payload)
            except MappingFailed:
                version = None  # unreadable: only over another unreadable one
            record = entry.source_key or f"#{entry.id}"
            best = chosen.get(record)
            if (
                best is None
                or best[1] is None
                or (version is not None and compare(version, best[1]) >= 0)
            ):
                chosen[record] = (entry, version)
        return [entry for entry, _ in chosen.values()]

    def retry_parked(self, now: dt.datetime, limit: int = 500) -> RetryReport:
        """Try again records parked for what another record may bring: a record they
        reference that had not arrived (an inventory row before its location), or a field
        the golden record must have that only another system writes (a PIM item before the
        ERP's, which names it). Each on its own backoff, oldest first."""
        required = {
            domain: {r.spec.field for r in policy.golden_rules if r.spec.rule == "required"}
            for domain, policy in self.ingestor.landscape.policies.items()
        }
        with self.store.unit_of_work(write=False) as uow:
            entries = uow.exceptions(
                ExceptionFilter(kind=ProblemKind.UNKNOWN_REFERENCE.value, limit=100_000)
            )
            # Required fields of the golden record (its quality rules), which another system
            # may bring; the schema's own required parts (a credit limit's currency) never.
            entries += [
                e
                for e in uow.exceptions(
                    ExceptionFilter(kind=ProblemKind.VALIDATION_ERROR.value, limit=100_000)
                )
                if e.rule == "required" and e.field in required.get(e.domain, ())
            ]
            # Deliveries never sent for want of a record they reference at the consumer:
            # due once every such record is there (no backoff: nothing was tried).
            ready: list[ExceptionEntry] = []
            tick = time.monotonic()
            if self._references_at is None or tick - self._references_at >= self.references_every:
                self._references_at = tick
                ready = self._references_arrived(
                    uow,
                    uow.exceptions(
                        ExceptionFilter(
                            kind=ProblemKind.DEAD_LETTER.value,
                            rule=AWAITING_REFERENCE,
                            limit=100_000,
                        )
                    ),
                )
        entries.sort(key=lambda e: e.id or 0, reverse=True)
        due = []
        for entry in reversed(entries):  # listed newest first
            last = dt.datetime.fromisoformat(
                (entry.updated_at or entry.created_at).replace("Z", "+00:00")
            )
            if (now - last).total_seconds() >= parked_wait(entry.attempts):
                due.append(entry)
            if len(due) >= limit:
                break
        due += ready[: max(limit - len(due), 0)]
        return self.retry(due) if due else RetryReport()

    @staticmethod
    def _references_arrived(uow: UnitOfWork, entries: list[ExceptionEntry]) -> list[ExceptionEntry]:
        """The dead letters among these whose awaited records the consumer now holds."""
        wanted: dict[tuple[str, str], set[str]] = {}
        awaited: list[tuple[ExceptionEntry, list[tuple[str, str, str]]]] = []
        for entry in entries:
            payload = entry.payload if isinstance(entry.payload, dict) else {}
            refs = payload.get("awaiting")
            if not isinstance(refs, dict) or not refs:
                continue
            need = [
                (entry.system, str(domain), str(m))
                for domain, ids in refs.items()
                for m in (ids if isinstance(ids, list) else [])
            ]
            for system, domain, m in need:
                wanted.setdefault((system, domain), set()).add(m)
            awaited.append((entry, need))
        held: set[tuple[str, str, str]] = set()
        for (system, domain), ids in wanted.items():
            held |= {(system, domain, m) for m in uow.consumer_keys(system, domain, ids)}
        return [entry for entry, need in awaited if all(n in held for n in need)]

    def _requeue(self, entry: ExceptionEntry, report: RetryReport) -> None:
        """Send a dead-lettered delivery again, unless a newer version already got there."""
        assert entry.id is not None
        payload = entry.payload if isinstance(entry.payload, dict) else {}
        delivery_id = payload.get("delivery_id")
        now = utc_now()
        with self.store.unit_of_work() as uow:
            delivery = uow.delivery(int(delivery_id)) if delivery_id is not None else None
            if delivery is None:
                report.skipped[entry.id] = "its delivery is gone"
                return
            if delivery.subscription not in self.ingestor.landscape.subscriptions:
                report.skipped[entry.id] = (
                    f"subscription {delivery.subscription} is not in the landscape any more "
                    "(renamed or removed): no hub would send it; ignore this"
                )
                return
            applied = uow.applied_for(delivery.subscription, [delivery.master_id])
            held = applied.get(delivery.master_id)
            # A later version decided since (sent, or skipped: say it stopped matching the
            # filter while the consumer held nothing) is what the consumer should follow;
            # sending this one now would put an older state there behind it.
            later = uow.decided_after(delivery.subscription, delivery.master_id, delivery.version)
            note = None
            if held is not None and held.version >= delivery.version:
                note = f"superseded: the consumer has version {held.version}"
            elif later is not None:
                note = f"superseded: version {later[0]} was {later[1].value} since"
            superseded = note is not None
            if note is not None:
                uow.supersede(delivery.id or 0, note)
            else:
                uow.reopen(delivery.id or 0, now)
                note = "queued again"
            uow.settle_exception(
                entry.id, ExceptionStatus.RESOLVED, {"by": "retry", "at": now, "note": note}
            )
            uow.commit()
        (report.resolved if superseded else report.queued).append(entry.id)
        if superseded:
            report.superseded.append(entry.id)

    def ignore(self, entries: list[ExceptionEntry], by: str, why: str) -> list[int]:
        """Close entries without acting, recording who and why."""
        if not why.strip():
            raise InboxError("say why the entries are ignored (--reason)")
        done = []
        with self.store.unit_of_work() as uow:
            for entry in entries:
                assert entry.id is not None
                if entry.status is ExceptionStatus.OPEN:
                    uow.settle_exception(
                        entry.id, ExceptionStatus.IGNORED, {"by": by, "why": why, "at": utc_now()}
                    )
                    done.append(entry.id)
            uow.commit()
        return done


# ambiguous_match rules that are warnings (the record joined or took the key); the other,
# natural_key, rejects it.
_APPLIED_MATCH_RULES = frozenset({"same_system", "sent_key"})


def _warning(kind: str, rule: str | None) -> bool:
    """An entry a record raises and is applied anyway (ingest files these warnings in the
    inbox too): it says nothing of a rejection."""
    return kind == ProblemKind.OWNERSHIP_VIOLATION or (
        kind == ProblemKind.AMBIGUOUS_MATCH and rule in _APPLIED_MATCH_RULES
    )


def _failing_again(
    uow: UnitOfWork, system: str, domain: str, batch_id: str, closed: list[ExceptionEntry]
) -> dict[str, list[int]]:
    """Source key -> the open entries (newest last) a retry's batch raised, or counted an
    attempt at, for records of these closed entries that it rejected again (or found stale)
    under another rule; records it applied are left out."""
    keys = {e.source_key for e in closed if e.source_key}
    if not keys:
        return {}
    found = uow.open_exception_keys(domain, system, keys)
    candidates = {
        entry.id
        for entries in found.values()
        for entry in entries
        if not _warning(entry.kind, entry.rule)
    }
    if not candidates:
        return {}
    raised = uow.exceptions_by_id(candidates)
    again: dict[str, list[int]] = {}
    for key, entries in found.items():
        ids = sorted(e.id for e in entries if e.id in raised and raised[e.id].batch_id == batch_id)
        if ids:
            again[key] = ids
    return again


def _api_shape(entry: ExceptionEntry) -> bool | None:
    """For a record written through the API, whether it came with a version (which
    canonical mapping reads it); None for one read through the landscape's mapping."""
    payload = entry.payload
    if (
        not (entry.locator or "").startswith(API_LOCATOR)
        or not isinstance(payload, dict)
        # The API's shape too: a file named "api ..." gives its lines that locator as well.
        or not isinstance(payload.get("attributes"), dict)
        or not set(payload) <= {"key", "version", "attributes"}
    ):
        return None
    return "version" in payload
