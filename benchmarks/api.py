"""API read and search throughput and p99 latency, governance on versus off, in one run.

The hub's store gets ``--records`` items and customers (customers with credit terms and
limits, so field filtering has work to do). Two servers run on loopback in this process:
the real API (API-key authentication, rate limiting, usage counting, scope checks, field
and object filtering) and, for comparison, the same endpoints over the same queries with
all of that off. A second process sends the load: ``--concurrency`` threads, ``--requests``
calls per endpoint and mode, after a warm-up. The overhead of governance is the ratio.

    .venv/bin/python benchmarks/api.py
    .venv/bin/python benchmarks/api.py --records 5000 --requests 4000 --concurrency 16
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import yaml
from fastapi import FastAPI

from mastersync.api.app import create_app
from mastersync.api.records import render
from mastersync.bootstrap import Hub, build_hub
from mastersync.domain.governance.access import ObjectRule, Principal, known_scopes
from mastersync.pipeline.governance.consumers import add_consumer
from mastersync.ports.connector import SourceRecord
from mastersync.sandbox.apis.serve import LoopbackServer

LANDSCAPE = {
    "name": "api-benchmark",
    "systems": {
        "erp": {
            "kind": "erp",
            "inbound": {
                "item": {"key": "sku", "fields": {"sku": "sku", "name": "name"}},
                "customer": {
                    "key": "no",
                    "fields": {
                        "customer_number": "no",
                        "name": "name",
                        "country": "country",
                        "credit_terms": "terms",
                        "credit_limit": {"fields": {"amount": "limit", "currency": "cur"}},
                    },
                },
            },
        },
    },
}


def ungoverned_app(hub: Hub) -> FastAPI:
    """The same reads with authentication, limits, counting and filtering off."""
    app = FastAPI()
    everyone = Principal("bench", "bench", frozenset(known_scopes()))
    governance = hub.governance

    @app.get("/v1/{plural}")
    def search(plural: str, limit: int = 50, q: str | None = None) -> dict[str, Any]:
        domain = plural.rstrip("s")
        page = governance.search(domain, ObjectRule(domain), text=q, limit=limit)
        return {"items": [render(r, everyone, page.linked[r.master_id]) for r in page.records]}

    @app.get("/v1/{plural}/{ref}")
    def one(plural: str, ref: str) -> dict[str, Any]:
        with hub.store.unit_of_work(write=False) as uow:
            record = uow.golden(ref)
        assert record is not None
        return render(record, everyone, governance.linked_systems([ref])[ref])

    return app


def _load(hub: Hub, records: int) -> list[str]:
    hub.ingestor.ingest(
        "erp",
        "item",
        (SourceRecord({"sku": f"S{i:06d}", "name": f"Item {i}"}) for i in range(records)),
        source="bench",
    )
    report = hub.ingestor.ingest(
        "erp",
        "customer",
        (
            SourceRecord(
                {
                    "no": f"C{i:06d}",
                    "name": f"Customer {i}",
                    "country": "DE",
                    "terms": "NET30",
                    "limit": str(1000 + i),
                    "cur": "EUR",
                }
            )
            for i in range(records)
        ),
        source="bench",
    )
    return report.master_ids[:200]


def _client(
    base: str, headers: dict[str, str], paths: list[str], n: int, threads: int, out: Any
) -> None:
    """The load, in a second process: every path ``n`` times from ``threads`` threads."""
    with httpx.Client(
        base_url=base, headers=headers, timeout=30, limits=httpx.Limits(max_connections=threads)
    ) as client:

        def call(path: str) -> float:
            start = time.perf_counter()
            r = client.get(path)
            r.raise_for_status()
            return time.perf_counter() - start

        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(call, paths[: threads * 4]))  # warm-up
            began = time.perf_counter()
            latencies = list(pool.map(call, (paths[i % len(paths)] for i in range(n))))
            elapsed = time.perf_counter() - began
    out.put((elapsed, latencies))


def _measure(
    base: str, headers: dict[str, str], paths: list[str], n: int, threads: int
) -> tuple[float, float, float]:
    queue: Any = multiprocessing.get_context("spawn").Queue()
    proc = multiprocessing.get_context("spawn").Process(
        target=_client, args=(base, headers, paths, n, threads, queue)
    )
    proc.start()
    elapsed, latencies = queue.get(timeout=600)
    proc.join(timeout=60)
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    return n / elapsed, statistics.median(latencies) * 1000, p99 * 1000


def main() -> None:
    """Run the benchmark and print its table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=2000)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "landscape.yaml"
        path.write_text(yaml.safe_dump(LANDSCAPE))
        hub = build_hub(path, f"sqlite:///{tmp}/bench.db")
        ids = _load(hub, args.records)
        _, key = add_consumer(
            hub.governance,
            hub.landscape,
            "bench",
            scopes=["item:read", "customer:read"],
            rate_per_minute=10_000_000,
        )
        endpoints = {
            "read one customer": [f"/v1/customers/{m}" for m in ids],
            "search customers (page of 50)": [
                f"/v1/customers?limit=50&q=customer%20{i}" for i in range(1, 100)
            ],
            "list items (page of 50)": ["/v1/items?limit=50"],
        }
        print(
            f"{args.records} items + {args.records} customers (SQLite), {args.requests} "
            f"requests per row, {args.concurrency} concurrent, load from a second process"
        )
        print(f"{'endpoint':32} {'mode':10} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8}")
        with (
            LoopbackServer(create_app(hub)) as governed,
            LoopbackServer(ungoverned_app(hub)) as plain,
        ):
            for name, paths in endpoints.items():
                rows = {}
                for mode, server, headers in (
                    ("off", plain, {}),
                    ("governed", governed, {"X-API-Key": key}),
                ):
                    rows[mode] = _measure(
                        server.url, headers, paths, args.requests, args.concurrency
                    )
                    rps, p50, p99 = rows[mode]
                    print(f"{name:32} {mode:10} {rps:8.0f} {p50:8.1f} {p99:8.1f}")
                ratio = rows["governed"][0] / rows["off"][0]
                print(f"{'':32} {'ratio':10} {ratio:8.0%} of ungoverned throughput")
        hub.close()


if __name__ == "__main__":
    main()
