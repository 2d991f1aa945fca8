"""A consumer system in a SQLite file: it applies each idempotency key once and never goes
back to an older version of a record, keeps a log of what it applied, and misbehaves as
configured (errors, timeouts, 429 bursts, slowness,
outages, lost acknowledgements, rejected records).

Its faults live in its own database, so a test or an operator can change them while a hub
process delivers to it; its log lets tests check that no version was lost or applied twice.
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from mastersync.connectors.registry import ConnectorContext
from mastersync.connectors.sandbox.faults import Faults, RateLimit
from mastersync.connectors.sandbox.spec import SandboxSettings
from mastersync.domain.mapping.paths import compile_condition
from mastersync.domain.subscriptions import Operation
from mastersync.ports.outbound import (
    DeliveryAck,
    DeliveryFailed,
    DeliveryRequest,
    TerminalFailure,
    TransientFailure,
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    domain TEXT NOT NULL, key TEXT NOT NULL, master_id TEXT NOT NULL, version INTEGER NOT NULL,
    active INTEGER NOT NULL, payload TEXT NOT NULL, updated_at REAL NOT NULL,
    PRIMARY KEY (domain, key));
CREATE UNIQUE INDEX IF NOT EXISTS records_master ON records (domain, master_id);
CREATE TABLE IF NOT EXISTS applied (
    idempotency_key TEXT PRIMARY KEY, response TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS log (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, master_id TEXT NOT NULL, version INTEGER NOT NULL,
    operation TEXT NOT NULL, key TEXT NOT NULL, at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS faults (id INTEGER PRIMARY KEY CHECK (id = 1), config TEXT NOT NULL);
"""
# Keys per IN list: under SQLite's oldest limit of host parameters (999).
_CHUNK = 500


@dataclass
class _State:
    calls: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


class SandboxTarget:
    """The consumer system itself, usable from any process that can open its file."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.executescript(_SCHEMA)
            # A row from the start, so that faults can be changed with an UPDATE (one on
            # a target never given any changed nothing, silently).
            db.execute(
                "INSERT OR IGNORE INTO faults (id, config) VALUES (1, ?)",
                (Faults().model_dump_json(),),
            )
        # Applies in this process share one connection and take turns on a lock: SQLite's
        # busy handler sleeps between retries, which made concurrent applies crawl.
        self._db = self._connect()
        self._lock = threading.Lock()

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        # NORMAL: in WAL mode a committed change survives the process being killed, which is
        # what the tests do to it; a simulation need not survive power loss.
        db.execute("PRAGMA synchronous=NORMAL")
        return db

    def set_faults(self, faults: Faults) -> None:
        """Change how the target misbehaves (takes effect within half a second)."""
        with self._connect() as db:
            db.execute(
                "INSERT INTO faults (id, config) VALUES (1, ?) ON CONFLICT (id) DO UPDATE "
                "SET config = excluded.config",
                (faults.model_dump_json(),),
            )

    def faults(self) -> Faults:
        """The current faults."""
        with self._connect() as db:
            row = db.execute("SELECT config FROM faults WHERE id = 1").fetchone()
        return Faults.model_validate_json(row[0]) if row else Faults()

    def apply(self, request: DeliveryRequest) -> tuple[DeliveryAck, bool]:
        """Apply a request once per idempotency key; (ack, whether it was applied before)."""
        return self.apply_many([request])[0]

    def apply_many(self, requests: list[DeliveryRequest]) -> list[tuple[DeliveryAck, bool]]:
        """Apply requests in one transaction (a bulk endpoint), each at most once, in order."""
        with self._lock:
            db = self._db
            try:
                db.execute("BEGIN IMMEDIATE")
                out = self._apply_all(db, requests)
                db.execute("COMMIT")
                return out
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise

    def _apply_all(
        self, db: sqlite3.Connection, requests: list[DeliveryRequest]
    ) -> list[tuple[DeliveryAck, bool]]:
        # Set-based: what the batch's keys and records hold is read once, and the batch's
        # own applies are tracked here, so a request sees every one before it (as applying
        # them one by one would); the writes then go in three statements. One statement per
        # request each way made the target's applies a sixth of a busy hub's CPU.
        seen = self._responses(db, {r.idempotency_key for r in requests})
        held = self._held(db, requests)
        # Whose row each key is: an upsert under a key another record's row has updates
        # that row (its master stays), as the statement does.
        owners = {(d, key): m for (d, m), (key, _) in held.items()}
        records: list[tuple[Any, ...]] = []
        logged: list[tuple[Any, ...]] = []
        keys: list[tuple[str, str]] = []
        out: list[tuple[DeliveryAck, bool]] = []
        for request in requests:
            stored = seen.get(request.idempotency_key)
            if stored is not None:
                out.append((DeliveryAck(stored["key"], str(stored["version"]), True, stored), True))
                continue
            row = held.get((request.domain, request.master_id))
            if row is not None and row[1] > request.version:
                # Never back: a replayed or late older version is acknowledged, not applied.
                # The same version under a new key is a repair (reconciliation found the
                # record changed or gone here): applied again.
                response = {"key": row[0], "version": row[1], "stale": True}
                out.append((DeliveryAck(row[0], str(row[1]), True, response), True))
                continue
            key = request.target_key or (row[0] if row else f"T-{uuid.uuid4().hex[:12]}")
            active = request.operation is Operation.UPSERT
            now = time.time()
            payload = orjson.dumps(request.payload).decode()
            records.append(
                (request.domain, key, request.master_id, request.version, int(active), payload, now)
            )
            logged.append((request.master_id, request.version, request.operation.value, key, now))
            response = {"key": key, "version": request.version}
            keys.append((request.idempotency_key, orjson.dumps(response).decode()))
            owner = owners.setdefault((request.domain, key), request.master_id)
            held[(request.domain, owner)] = (key, request.version)
            seen[request.idempotency_key] = response
            out.append((DeliveryAck(key, str(request.version), False, response), False))
        db.executemany(
            "INSERT INTO records (domain, key, master_id, version, active, payload, "
            "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (domain, key) DO UPDATE "
            "SET version = excluded.version, active = excluded.active, "
            "payload = CASE WHEN excluded.active THEN excluded.payload ELSE records.payload "
            "END, updated_at = excluded.updated_at",
            records,
        )
        db.executemany(
            "INSERT INTO log (master_id, version, operation, key, at) VALUES (?, ?, ?, ?, ?)",
            logged,
        )
        db.executemany("INSERT INTO applied (idempotency_key, response) VALUES (?, ?)", keys)
        return out

    @staticmethod
    def _responses(db: sqlite3.Connection, keys: set[str]) -> dict[str, dict[str, Any]]:
        """The stored response of each of these idempotency keys applied before."""
        found: dict[str, dict[str, Any]] = {}
        wanted = sorted(keys)
        for i in range(0, len(wanted), _CHUNK):
            part = wanted[i : i + _CHUNK]
            marks = ", ".join("?" * len(part))
            for key, response in db.execute(
                f"SELECT idempotency_key, response FROM applied WHERE idempotency_key IN ({marks})",
                part,
            ):
                found[key] = orjson.loads(response)
        return found

    @staticmethod
    def _held(
        db: sqlite3.Connection, requests: list[DeliveryRequest]
    ) -> dict[tuple[str, str], tuple[str, int]]:
        """(domain, master id) -> (key, version) of the records these requests are about,
        and of those whose rows hold the keys they name."""
        wanted: dict[tuple[str, str], set[str]] = {}
        for r in requests:
            wanted.setdefault((r.domain, "master_id"), set()).add(r.master_id)
            if r.target_key:
                wanted.setdefault((r.domain, "key"), set()).add(r.target_key)
        found: dict[tuple[str, str], tuple[str, int]] = {}
        for (domain, column), values in wanted.items():
            ordered = sorted(values)
            for i in range(0, len(ordered), _CHUNK):
                part = ordered[i : i + _CHUNK]
                marks = ", ".join("?" * len(part))
                for master, key, version in db.execute(
                    "SELECT master_id, key, version FROM records WHERE domain = ? AND "
                    f"{column} IN ({marks})",
                    [domain, *part],
                ):
                    found[(domain, master)] = (key, version)
        return found

    def log(self) -> list[tuple[str, int, str]]:
        """(master id, version, operation) of every application, in order."""
        with self._connect() as db:
            return [
                (m, v, op)
                for m, v, op in db.execute(
                    "SELECT master_id, version, operation FROM log ORDER BY seq"
                )
            ]

    def records(self, domain: str) -> dict[str, dict[str, Any]]:
        """master id -> {key, version, active, payload} of what the target holds."""
        with self._connect() as db:
            return {
                m: {"key": k, "version": v, "active": bool(a), "payload": orjson.loads(p)}
                for m, k, v, a, p in db.execute(
                    "SELECT master_id, key, version, active, payload FROM records WHERE domain = ?",
                    (domain,),
                )
            }


class SandboxConnector:
    """The outbound connector for a sandbox target (type: sandbox)."""

    # What it holds is what the hub delivered to it, in the subscription's shape: it can be
    # reconciled as a target, never stand for its system as a source (read as one, every
    # delivered record was reported missing from the hub, or not comparable).
    source_of_record = False
    # Its listing holds active records only (see ``read_state``): one the hub deactivated
    # that it lists is active there again, which reconciliation reports as drift.
    lists_inactive = False
    # A key it has applied is a duplicate to it (``SandboxTarget.apply_many``).
    applies_keys_once = True

    def __init__(self, database: str | Path, faults: Faults | None = None) -> None:
        self.target = SandboxTarget(database)
        if faults is not None:
            self.target.set_faults(faults)
        self._state = _State()
        self._faults = self.target.faults()
        self._faults_read = time.monotonic()
        self._rng = random.Random(self._faults.seed)
        self._conditions(self._faults)

    def _conditions(self, faults: Faults) -> None:
        self._reject = compile_condition(faults.reject_when) if faults.reject_when else None
        self._fail = compile_condition(faults.fail_when) if faults.fail_when else None

    def _current(self) -> Faults:
        if time.monotonic() - self._faults_read > 0.5:
            faults = self.target.faults()
            if faults != self._faults:
                self._conditions(faults)
            self._faults, self._faults_read = faults, time.monotonic()
        return self._faults

    async def send(self, request: DeliveryRequest) -> DeliveryAck:
        """Deliver one request, misbehaving as configured."""
        [outcome] = await self.send_batch([request])
        if isinstance(outcome, DeliveryFailed):
            raise outcome
        return outcome

    async def send_batch(
        self, requests: list[DeliveryRequest]
    ) -> list[DeliveryAck | DeliveryFailed]:
        """Deliver a round in one call (like a bulk API): the call can fail as a whole
        (outage, 429, slowness, a hang) and each record on its own (errors, rejections)."""
        faults = self._current()
        rng = self._rng
        with self._state.lock:
            self._state.calls += 1
            call = self._state.calls
        now = time.time()
        if any(start <= now < end for start, end in faults.outages):
            return [TransientFailure("connection refused (target is down)")] * len(requests)
        if faults.slow_ms:
            await asyncio.sleep(faults.slow_ms / 1000)
        if faults.rate_limit is not None:
            rl = faults.rate_limit
            if call % rl.every < rl.burst:
                failure = TransientFailure(
                    "429 Too Many Requests", status=429, retry_after=rl.retry_after
                )
                return [failure] * len(requests)
        if rng.random() < faults.timeout_rate:
            await asyncio.sleep(3600)  # the caller's timeout ends this
        outcomes: list[DeliveryAck | DeliveryFailed | None] = []
        accepted: list[DeliveryRequest] = []
        for request in requests:
            if rng.random() < faults.error_rate:
                outcomes.append(TransientFailure("503 Service Unavailable", status=503))
            elif self._fail is not None and self._fail(request.payload):
                outcomes.append(
                    TransientFailure(
                        "503 Service Unavailable (this record, every time)", status=503
                    )
                )
            elif self._reject is not None and self._reject(request.payload):
                outcomes.append(
                    TerminalFailure(
                        "422 Unprocessable Entity: record rejected by the target",
                        status=422,
                        response='{"error": "rejected"}',
                    )
                )
            else:
                outcomes.append(None)
                accepted.append(request)
        applied = iter(
            await asyncio.to_thread(self.target.apply_many, accepted) if accepted else []
        )
        result: list[DeliveryAck | DeliveryFailed] = []
        for outcome in outcomes:
            if outcome is not None:
                result.append(outcome)
                continue
            ack, _ = next(applied)
            if rng.random() < faults.duplicate_ack_rate and not ack.duplicate:
                result.append(TransientFailure("connection reset after the request was applied"))
            else:
                result.append(ack)
        return result

    async def close(self) -> None:
        """Nothing to release."""

    def read_state(self, domain: str) -> Iterator[tuple[str, dict[str, Any]]]:
        """(key, payload) of every active record of the domain: what the system shows now."""
        db = self.target._connect()
        try:
            rows = db.execute(
                "SELECT key, payload FROM records WHERE domain = ? AND active = 1 ORDER BY key",
                (domain,),
            )
            for key, payload in rows:
                yield key, orjson.loads(payload)
        finally:
            db.close()


def from_settings(settings: SandboxSettings, context: ConnectorContext) -> SandboxConnector:
    """The registry's factory: database relative to the landscape, faults if configured."""
    database = context.path(settings.database or f"targets/{context.system}.db")
    return SandboxConnector(database, settings.faults)


__all__ = ["Faults", "RateLimit", "SandboxConnector", "SandboxTarget", "from_settings"]
