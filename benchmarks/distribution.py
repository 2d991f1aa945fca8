"""Distribution: changes from a source to five consumers, end to end, against raw limits.

Per stack (SQLite with the outbox as the log; PostgreSQL with NATS JetStream):
- latency: a producer ingests changes at a steady rate (default 1,000/s) while the hub
  (`mastersync run` in its own process; `--hubs N` splits the subscriptions among N of them)
  delivers them to five sandbox consumers; p50/p99
  from acceptance at the hub (the event's time) to the consumer's apply (its log's time);
- throughput: a burst of changes, timed until every consumer holds the last version of every
  record: changes per second fully delivered to all five;
- raw limits in the same run: JetStream publish + consume of as many 1 KB messages, and
  batched inserts of as many events into the store (executemany on SQLite, COPY on PostgreSQL).

    .venv/bin/python benchmarks/distribution.py
    .venv/bin/python benchmarks/distribution.py --stacks sqlite --seconds 10 --burst 5000
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import nats
import orjson
import psycopg

from mastersync.backends.nats.bus import delete_stream
from mastersync.bootstrap import open_store
from mastersync.cli.commands import tune_gc
from mastersync.connectors.sandbox.target import SandboxTarget
from mastersync.landscape import load_landscape
from mastersync.pipeline.ingest import Ingestor
from mastersync.ports.connector import SourceRecord

PG = os.environ.get("MASTERSYNC_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
NATS = "nats://127.0.0.1:4222"
CONSUMERS = ("crm", "wms", "shop", "edi", "bi")
RECORDS = 2000


def landscape(consumers: int) -> str:
    systems = "\n".join(
        f"""  {name}:
    kind: other
    connector: {{type: sandbox, database: {name}.db}}
    delivery: {{batch_size: 500, concurrency: 64, timeout: 5s}}
    outbound:
      items: {{domain: item, mapping: {{fields: {{sku: sku, title: name, price: list_price}}}}}}"""
        for name in CONSUMERS[:consumers]
    )
    return f"""name: bench
systems:
  erp:
    kind: erp
    inbound:
      item:
        key: sku
        version: {{from: v, kind: counter}}
        fields: {{sku: sku, name: name, list_price: {{from: price, number: true}}}}
{systems}
"""


def _ts(text: str) -> float:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


class Producer:
    """Ingests changes to RECORDS items, each a new version of a random record."""

    def __init__(self, folder: Path, url: str) -> None:
        self.store = open_store(url)
        self.ingestor = Ingestor(
            self.store, load_landscape(folder / "landscape.yaml"), chunk_size=500
        )
        self.versions = [0] * RECORDS
        self.rng = random.Random(1)
        self.sent = 0

    def send(self, n: int) -> None:
        batch = []
        for _ in range(n):
            i = self.rng.randrange(RECORDS)
            self.versions[i] += 1
            batch.append(
                SourceRecord(
                    {
                        "sku": f"S{i:05d}",
                        "v": self.versions[i],
                        "name": f"item {i} v{self.versions[i]}",
                        "price": f"{self.versions[i]}.5",
                    }
                )
            )
        self.ingestor.ingest("erp", "item", batch)
        self.sent += n

    def steady(self, rate: float, seconds: float) -> None:
        tick = 0.05
        per_tick = max(1, round(rate * tick))
        start = time.perf_counter()
        n = 0
        while time.perf_counter() - start < seconds:
            self.send(per_tick)
            n += 1
            delay = start + n * tick - time.perf_counter()
            if delay > 0:
                time.sleep(delay)

    def latest(self) -> dict[str, int]:
        """master id -> golden version (what every consumer must end on)."""
        with self.store.unit_of_work(write=False) as uow:
            return {g.master_id: g.version for g in uow.list_golden("item", limit=RECORDS * 2)}

    def occurred(self) -> dict[tuple[str, int], float]:
        """(master id, version) -> acceptance time."""
        with self.store.unit_of_work(write=False) as uow:
            return {
                (e.master_id, e.version): _ts(e.occurred_at)
                for _, e in uow.outbox_after(0, ["item"], 10_000_000)
            }


def start_hubs(
    folder: Path, url: str, bus: str | None, hubs: int, consumers: int
) -> list[subprocess.Popen[bytes]]:
    """Hub processes, the subscriptions split among them."""
    subs = [f"{c}.items" for c in CONSUMERS[:consumers]]
    procs = []
    for h in range(hubs):
        mine = subs[h::hubs]
        cmd = [
            sys.executable,
            "-m",
            "mastersync.cli",
            "-l",
            str(folder / "landscape.yaml"),
            "--store",
            url,
            "run",
            *[a for s in mine for a in ("-s", s)],
        ]
        if bus:
            cmd += ["--bus", bus]
        procs.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
    return procs


def wait_delivered(
    folder: Path, latest: dict[str, int], consumers: int, timeout: float
) -> float | None:
    """Seconds until every consumer holds every record's latest version (None: timeout)."""
    start = time.perf_counter()
    targets = [SandboxTarget(folder / f"{c}.db") for c in CONSUMERS[:consumers]]
    while time.perf_counter() - start < timeout:
        if all(
            all(held.get(m, {}).get("version") == v for m, v in latest.items())
            for held in (t.records("item") for t in targets)
        ):
            return time.perf_counter() - start
        time.sleep(0.2)
    return None


def latencies(
    folder: Path, occurred: dict[tuple[str, int], float], consumers: int, since: float
) -> list[float]:
    out = []
    for c in CONSUMERS[:consumers]:
        db = sqlite3.connect(folder / f"{c}.db")
        for master, version, at in db.execute("SELECT master_id, version, at FROM log"):
            accepted = occurred.get((master, version))
            if accepted is not None and accepted >= since:
                out.append((at - accepted) * 1000)
        db.close()
    return out


async def raw_jetstream(n: int) -> float:
    """JetStream publish + pull-consume (explicit acks) of n 1 KB messages: messages/s."""
    tag = uuid.uuid4().hex[:8]
    nc = await nats.connect(NATS)
    js = nc.jetstream()
    await js.add_stream(name=f"RAW{tag}", subjects=[f"raw{tag}.>"])
    body = b"x" * 1024
    start = time.perf_counter()
    for i in range(0, n, 500):
        await asyncio.gather(
            *(
                js.publish(f"raw{tag}.item", body, headers={"Nats-Msg-Id": f"{tag}-{j}"})
                for j in range(i, min(n, i + 500))
            )
        )
    sub = await js.pull_subscribe(f"raw{tag}.item", durable=f"raw{tag}")
    got = 0
    while got < n:
        msgs = await sub.fetch(500, timeout=5)
        await asyncio.gather(*(m.ack() for m in msgs))
        got += len(msgs)
    elapsed = time.perf_counter() - start
    await js.delete_stream(f"RAW{tag}")
    await nc.close()
    return n / elapsed


def _events(n: int) -> list[tuple[Any, ...]]:
    payload = orjson.dumps({"changes": {"name": {"before": "a" * 300, "after": "b" * 300}}})
    now = "2026-11-27T00:00:00.000000Z"
    return [
        (
            f"evt_{i}",
            f"itm_{i % RECORDS}",
            "item",
            i + 1,
            "updated",
            "1.0",
            "t",
            "c",
            now,
            payload.decode(),
        )
        for i in range(n)
    ]


def raw_sqlite_inserts(folder: Path, n: int) -> float:
    db = sqlite3.connect(folder / "raw.db", isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute(
        "CREATE TABLE ev (event_id TEXT UNIQUE, master_id TEXT, domain TEXT, version INT,"
        " kind TEXT, schema TEXT, trace TEXT, cause TEXT, at TEXT, payload TEXT)"
    )
    rows = _events(n)
    start = time.perf_counter()
    for i in range(0, n, 1000):
        db.execute("BEGIN")
        db.executemany("INSERT INTO ev VALUES (?,?,?,?,?,?,?,?,?,?)", rows[i : i + 1000])
        db.execute("COMMIT")
    elapsed = time.perf_counter() - start
    db.close()
    return n / elapsed


def raw_postgres_copy(url: str, n: int) -> float:
    rows = _events(n)
    with psycopg.connect(url) as conn:
        conn.execute(
            "CREATE TABLE ev (event_id TEXT UNIQUE, master_id TEXT, domain TEXT, "
            "version INT, kind TEXT, schema TEXT, trace TEXT, cause TEXT, "
            "at TIMESTAMPTZ, payload JSONB)"
        )
        conn.commit()
        start = time.perf_counter()
        for i in range(0, n, 1000):
            with conn.cursor() as cur, cur.copy("COPY ev FROM STDIN") as copy:
                for row in rows[i : i + 1000]:
                    copy.write_row(row)
            conn.commit()
        return n / (time.perf_counter() - start)


def hub_cpu(hubs: list[subprocess.Popen[bytes]]) -> float:
    """CPU seconds (user + system) the hub processes have used so far (Linux /proc).

    Wall-clock figures on a shared two-core machine swing by a third between runs; the
    hubs' CPU per delivery is the steadier measure of their own cost.
    """
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for h in hubs:
        fields = Path(f"/proc/{h.pid}/stat").read_text().rpartition(")")[2].split()
        total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return total


def run_stack(stack: str, args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "landscape.yaml").write_text(landscape(args.consumers))
        bus = None
        name = f"mastersync_dist_{uuid.uuid4().hex[:8]}"
        if stack == "sqlite":
            url = f"sqlite:///{folder / 'hub.db'}"
        else:
            with psycopg.connect(PG, autocommit=True) as conn:
                conn.execute(f"CREATE DATABASE {name}")
            url = PG.rpartition("/")[0] + "/" + name
            tag = uuid.uuid4().hex[:8]
            bus = f"{NATS}?stream=DIST{tag}&prefix=dist{tag}"
        store = open_store(url)
        store.upgrade()
        store.close()
        producer = Producer(folder, url)
        producer.send(RECORDS * 0 + 1)  # warm the store
        hubs = start_hubs(folder, url, bus, args.hubs, args.consumers)
        try:
            time.sleep(3)  # hubs start (imports, connections)
            since = time.time()
            producer.steady(args.rate, args.seconds)
            offered = producer.sent / args.seconds
            wait_delivered(folder, producer.latest(), args.consumers, 300)
            lat = latencies(folder, producer.occurred(), args.consumers, since)
            # Throughput: a burst as fast as the producer can ingest, timed to full delivery.
            burst_start = time.perf_counter()
            cpu_start = hub_cpu(hubs)
            for _ in range(args.burst // 500):
                producer.send(500)
            took = wait_delivered(folder, producer.latest(), args.consumers, 600)
            total = time.perf_counter() - burst_start
            cpu = hub_cpu(hubs) - cpu_start
        finally:
            for h in hubs:
                h.terminate()
            for h in hubs:
                h.wait(30)
        raw_bus = asyncio.run(raw_jetstream(args.burst))
        raw_store = (
            raw_sqlite_inserts(folder, args.burst)
            if stack == "sqlite"
            else raw_postgres_copy(url, args.burst)
        )
        producer.store.close()
        if stack != "sqlite":
            with psycopg.connect(PG, autocommit=True) as conn:
                conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        if bus is not None:
            asyncio.run(delete_stream(bus))
    p50 = statistics.median(lat) if lat else float("nan")
    p99 = sorted(lat)[int(0.99 * len(lat))] if lat else float("nan")
    rate = args.burst / total if took is not None else 0.0
    print(
        f"{stack:14} {args.hubs} hub process(es); offered {offered:6,.0f} changes/s x "
        f"{args.consumers} consumers: "
        f"p50 {p50:7,.0f} ms  p99 {p99:7,.0f} ms   (target p99 < 250 ms)"
    )
    print(
        f"{'':14} sustained {rate:6,.0f} changes/s delivered to all {args.consumers} "
        f"({rate * args.consumers:,.0f} deliveries/s); raw JetStream pub+consume "
        f"{raw_bus:,.0f} msg/s -> {rate / raw_bus:.1%} (target >= 25%); raw store inserts "
        f"{raw_store:,.0f} events/s"
    )
    deliveries = args.burst * args.consumers
    print(
        f"{'':14} hub CPU during the burst: {cpu / deliveries * 1e6:,.0f} µs per delivery "
        f"({cpu / total:.0%} of a core over {total:.1f} s)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--stacks",
        nargs="+",
        default=["sqlite", "postgres+nats"],
        choices=["sqlite", "postgres+nats"],
    )
    parser.add_argument("--rate", type=float, default=1000.0, help="offered changes per second")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--burst", type=int, default=20_000)
    parser.add_argument("--consumers", type=int, default=5, choices=range(1, 6))
    parser.add_argument(
        "--hubs",
        type=int,
        default=1,
        help="hub processes, the subscriptions split among them (on two cores, a second hub "
        "takes CPU the producer needs to offer the asked rate)",
    )
    args = parser.parse_args()
    tune_gc()
    for stack in args.stacks:
        run_stack(stack, args)


if __name__ == "__main__":
    main()
