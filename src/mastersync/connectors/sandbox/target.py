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
import secrets
import sqlite3
import threading
import time
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
    seq INTEGER PRIMARY KEY, master_id TEXT NOT NULL, version INTEGER NOT NULL,
    operation TEXT NOT NULL, key TEXT NOT NULL, at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS faults (id INTEGER PRIMARY KEY CHECK (id = 1), config TEXT NOT NULL);
"""
# The log's seq is a plain rowid, not AUTOINCREMENT: nothing deletes from the log, so each
# row still gets a seq above every earlier one (their order), and each insert is spared an
# update of sqlite_sequence (a quarter of the log's cost). Files made before keep theirs.

# Keys per IN list: under SQLite's oldest limit of host parameters (999).
_CHUNK = 500


def _select(
    db: sqlite3.Connection, domain: str, column: str, values: list[str]
) -> list[tuple[str, str, int]]:
    """(master id, key, version) of the domain's records whose column is one of values."""
    rows: list[tuple[str, str, int]] = []
    for i in range(0, len(values), _CHUNK):
        part = values[i : i + _CHUNK]
        marks = ", ".join("?" * len(part))
        rows += db.execute(
            f"SELECT master_id, key, version FROM records WHERE domain = ? AND {column} "
            f"IN ({marks})",
            [domain, *part],
        )
    return rows


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
        self._faults_db: sqlite3.Connection | None = None
        self._faults_lock = threading.Lock()
        # What the records table holds, as far as applies here have read or written it:
        # (domain, master id) -> (key, version), and (domain, key) -> master id. Good while
        # no other connection has committed (PRAGMA data_version, checked in each apply's
        # transaction) and every apply here has: a steady stream of applies reads no rows.
        self._held: dict[tuple[str, str], tuple[str, int]] = {}
        self._owners: dict[tuple[str, str], str] = {}
        self._data_version = -1

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        # NORMAL: in WAL mode a commit is written to the WAL (the OS's cache) before COMMIT
        # returns, so an acknowledged apply survives the process being killed, which is what
        # the tests do to it; only the checkpoints fsync. A simulation need not survive
        # power loss (FULL would fsync every commit). Page size and checkpoint interval
        # were measured too: the defaults cost no more.
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
        # One connection kept for it: a connector reads them every half second, and a new
        # connection each time (opening the file, reading the schema) cost more than that.
        with self._faults_lock:
            if self._faults_db is None:
                self._faults_db = self._connect()
            # fetchall: a statement left unfinished would hold its snapshot (and the WAL).
            rows = self._faults_db.execute("SELECT config FROM faults WHERE id = 1").fetchall()
        return Faults.model_validate_json(rows[0][0]) if rows else Faults()

    def apply(self, request: DeliveryRequest) -> tuple[DeliveryAck, bool]:
        """Apply a request once per idempotency key; (ack, whether it was applied before)."""
        return self.apply_many([request])[0]

    def apply_many(self, requests: list[DeliveryRequest]) -> list[tuple[DeliveryAck, bool]]:
        """Apply requests in one transaction (a bulk endpoint), each at most once, in order."""
        with self._lock:
            db = self._db
            try:
                db.execute("BEGIN IMMEDIATE")
                [(version,)] = db.execute("PRAGMA data_version")
                if version != self._data_version:
                    # Another connection (a test, an operator, another process) wrote.
                    self._forget()
                    self._data_version = version
                self._read_held(db, requests)
                out = self._apply_all(db, requests)
                db.execute("COMMIT")
                return out
            except BaseException:
                # What the batch noted of its own writes was not committed.
                self._forget()
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise

    def _forget(self) -> None:
        self._held.clear()
        self._owners.clear()
        self._data_version = -1

    def _apply_all(
        self, db: sqlite3.Connection, requests: list[DeliveryRequest]
    ) -> list[tuple[DeliveryAck, bool]]:
        # Set-based: what the batch's keys and records hold is read once (the records by
        # _read_held, into what this target keeps of them), and the batch's own applies are
        # noted as they go, so a request sees every one before it (as applying them one by
        # one would); the writes then go in three statements. One statement per request
        # each way made the target's applies a sixth of a busy hub's CPU.
        seen = self._responses(db, requests)
        # Whose row each key is (owners): an upsert under a key another record's row has
        # updates that row (its master stays), as the statement does.
        held, owners = self._held, self._owners
        records: list[tuple[Any, ...]] = []
        logged: list[tuple[Any, ...]] = []
        keys: list[tuple[Any, ...]] = []
        out: list[tuple[DeliveryAck, bool]] = []
        # One time for the batch: its applies commit together.
        now = time.time()
        upsert = Operation.UPSERT
        for request in requests:
            stored = seen.get(request.idempotency_key)
            if stored is not None:
                out.append((DeliveryAck(stored["key"], str(stored["version"]), True, stored), True))
                continue
            domain, master, version = request.domain, request.master_id, request.version
            row = held.get((domain, master))
            if row is not None and row[1] > version:
                # Never back: a replayed or late older version is acknowledged, not applied.
                # The same version under a new key is a repair (reconciliation found the
                # record changed or gone here): applied again.
                response = {"key": row[0], "version": row[1], "stale": True}
                out.append((DeliveryAck(row[0], str(row[1]), True, response), True))
                continue
            # A new record's key: 48 random bits, as uuid4().hex[:12] gave, at a third of its cost.
            key = request.target_key or (row[0] if row else f"T-{secrets.token_hex(6)}")
            operation = request.operation
            active = operation is upsert
            records.append(
                (domain, key, master, version, active, orjson.dumps(request.payload).decode(), now)
            )
            logged.append((master, version, "upsert" if active else operation.value, key, now))
            # The stored response is built by SQLite (json_object), as compact as orjson's.
            keys.append((request.idempotency_key, key, version))
            owner = owners.setdefault((domain, key), master)
            held[(domain, owner)] = (key, version)
            response = {"key": key, "version": version}
            seen[request.idempotency_key] = response
            out.append((DeliveryAck(key, str(version), False, response), False))
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
        db.executemany(
            "INSERT INTO applied (idempotency_key, response) "
            "VALUES (?, json_object('key', ?, 'version', ?))",
            keys,
        )
        return out

    @staticmethod
    def _responses(
        db: sqlite3.Connection, requests: list[DeliveryRequest]
    ) -> dict[str, dict[str, Any]]:
        """The stored response of each of these requests' idempotency keys applied before."""
        found: dict[str, dict[str, Any]] = {}
        wanted = list({r.idempotency_key: None for r in requests})
        for i in range(0, len(wanted), _CHUNK):
            part = wanted[i : i + _CHUNK]
            marks = ", ".join("?" * len(part))
            for key, response in db.execute(
                f"SELECT idempotency_key, response FROM applied WHERE idempotency_key IN ({marks})",
                part,
            ):
                found[key] = orjson.loads(response)
        return found

    def _read_held(self, db: sqlite3.Connection, requests: list[DeliveryRequest]) -> None:
        """Note (key, version) of the records these requests are about and of those whose
        rows hold the keys they name, reading from the table those not known yet."""
        held, owners = self._held, self._owners
        masters: dict[str, dict[str, None]] = {}
        named: dict[str, dict[str, None]] = {}
        for r in requests:
            if (r.domain, r.master_id) not in held:
                masters.setdefault(r.domain, {})[r.master_id] = None
            if r.target_key and (r.domain, r.target_key) not in owners:
                named.setdefault(r.domain, {})[r.target_key] = None
        for domain, values in masters.items():
            for master, key, version in _select(db, domain, "master_id", list(values)):
                held[(domain, master)] = (key, version)
                owners[(domain, key)] = master
        for domain, values in named.items():
            # A key the hub names is nearly always its own record's, read above: only the
            # others are looked up by key.
            rest = [k for k in values if (domain, k) not in owners]
            for master, key, version in _select(db, domain, "key", rest):
                held[(domain, master)] = (key, version)
                owners[(domain, key)] = master

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
        draw, error_rate, fail, reject = rng.random, faults.error_rate, self._fail, self._reject
        for request in requests:
            if draw() < error_rate:
                outcomes.append(TransientFailure("503 Service Unavailable", status=503))
            elif fail is not None and fail(request.payload):
                outcomes.append(
                    TransientFailure(
                        "503 Service Unavailable (this record, every time)", status=503
                    )
                )
            elif reject is not None and reject(request.payload):
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
        duplicate_ack_rate = faults.duplicate_ack_rate
        for outcome in outcomes:
            if outcome is not None:
                result.append(outcome)
                continue
            ack, _ = next(applied)
            if draw() < duplicate_ack_rate and not ack.duplicate:
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
