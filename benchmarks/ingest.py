"""Ingest throughput: the full pipeline against the raw upsert limit of the same database.

200,000 synthetic item records (12 fields) from two systems whose GTINs overlap go through
map -> validate -> identify -> merge -> golden write + lineage + outbox; then a second pass
sends everything again with 10% changed and 1% new. In the same run, the raw limit: the
same rows upserted with a plain executemany INSERT ... ON CONFLICT DO UPDATE (SQLite), or
COPY into a stage + INSERT ... ON CONFLICT (PostgreSQL). Then pushes: changes of one
record each, one ingest call (one transaction) per change, as the API and webhooks send
them, against a raw upsert of one row per transaction. Duplicate matching (which the
target's stages leave out) is measured with --matching, and on its own in matching.py.

    .venv/bin/python benchmarks/ingest.py                  # both stores, 200,000 records
    .venv/bin/python benchmarks/ingest.py --records 20000 --stores sqlite
    .venv/bin/python benchmarks/ingest.py --records 20000 --stores sqlite --matching
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
from stdnum import ean

from mastersync.bootstrap import open_store
from mastersync.cli.commands import tune_gc
from mastersync.domain.landscape.model import Landscape
from mastersync.domain.landscape.policy import compile_landscape
from mastersync.pipeline.ingest import Ingestor
from mastersync.ports.connector import SourceRecord

PG_ADMIN = os.environ.get("MASTERSYNC_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
FIELDS = (
    "sku",
    "gtin",
    "name",
    "description",
    "brand",
    "category",
    "base_uom",
    "list_price",
    "cost_price",
    "net_weight_kg",
    "country_of_origin",
    "lifecycle_state",
)
NATIVE = (
    "ITEM",
    "EAN",
    "NAME",
    "DESCR",
    "BRAND",
    "CAT",
    "UOM",
    "PRICE",
    "COST",
    "WEIGHT",
    "ORIGIN",
    "STATUS",
)
LANDSCAPE: dict[str, Any] = {
    "name": "bench",
    "systems": {
        system: {
            "kind": kind,
            "inbound": {
                "item": {
                    "key": "ITEM",
                    "version": {"from": "VER", "kind": "counter"},
                    "fields": {
                        f: (
                            {"from": n, "number": True}
                            if f in ("list_price", "cost_price", "net_weight_kg")
                            else n
                        )
                        for f, n in zip(FIELDS, NATIVE, strict=True)
                    },
                }
            },
        }
        for system, kind in (("erp", "erp"), ("pim", "pim"))
    },
    "domains": {
        "item": {
            "natural_keys": [["gtin"]],
            "ownership": {
                "name": ["erp", "pim"],
                "list_price": ["erp"],
                "cost_price": ["erp"],
                "lifecycle_state": ["erp"],
                "description": ["pim", "erp"],
                "brand": ["pim", "erp"],
            },
            "quality": [{"field": "name", "rule": "required"}],
        }
    },
}
_WORDS = [
    "Nitrile",
    "gloves",
    "Cable",
    "ties",
    "Tape",
    "Safety",
    "goggles",
    "Hex",
    "bolts",
    "Paper",
    "towels",
    "Würth",
    "Ærø",
    "Señor",
    "Łódź",
    "blue",
    "black",
    "XL",
]


def _gtin(n: int) -> str:
    body = f"40{n:010d}"
    return body + ean.calc_check_digit(body)


def make_rows(count: int, seed: int = 1) -> dict[str, list[dict[str, Any]]]:
    """Half the records from each system; 80% of GTINs overlap between them."""
    rng = random.Random(seed)
    half = count // 2
    rows: dict[str, list[dict[str, Any]]] = {"erp": [], "pim": []}
    for i in range(half):
        words = " ".join(rng.choice(_WORDS) for _ in range(3))
        base = {
            "EAN": _gtin(i),
            "NAME": words,
            "DESCR": f"{words} for professional use",
            "BRAND": rng.choice(_WORDS),
            "CAT": rng.choice(["PPE", "Office", "Hygiene"]),
            "UOM": rng.choice(["EA", "BX", "PK"]),
            "PRICE": f"{rng.randint(1, 9999) / 100}",
            "COST": f"{rng.randint(1, 9999) / 100}",
            "WEIGHT": f"{rng.randint(1, 999) / 10}",
            "ORIGIN": rng.choice(["DE", "PL", "CN"]),
            "STATUS": rng.choice(["active", "draft"]),
            "VER": 1,
        }
        rows["erp"].append({**base, "ITEM": f"E{i:07d}"})
        pim = {**base, "ITEM": f"P{i:07d}"}
        if i % 5 == 4:  # 20% of the PIM's items are its own (no ERP counterpart yet)
            pim["EAN"] = _gtin(half + i)
        rows["pim"].append(pim)
    return rows


def second_pass(
    rows: dict[str, list[dict[str, Any]]], seed: int = 2
) -> dict[str, list[dict[str, Any]]]:
    """Everything again: 10% changed (new version), 1% new records."""
    rng = random.Random(seed)
    out: dict[str, list[dict[str, Any]]] = {}
    for system, records in rows.items():
        again = []
        for r in records:
            if rng.random() < 0.10:
                r = {
                    **r,
                    "VER": r["VER"] + 1,
                    "PRICE": f"{rng.randint(1, 9999) / 100}",
                    "DESCR": r["DESCR"] + " (new)",
                }
            again.append(r)
        start = len(records)
        for j in range(len(records) // 100):
            new = dict(records[j])
            new.update(
                ITEM=f"{system[0].upper()}N{start + j:07d}",
                EAN=_gtin(10_000_000 + start * 2 + j + (0 if system == "erp" else 5000)),
            )
            again.append(new)
        out[system] = again
    return out


def landscape(matching: bool) -> dict[str, Any]:
    """The benchmark's landscape; items match duplicates with the default rules if asked."""
    item: dict[str, Any] = LANDSCAPE["domains"]["item"]
    domains = {"item": {**item, "matching": None if matching else False}}
    return {**LANDSCAPE, "domains": domains}


def run_pipeline(
    url: str, rows: dict[str, list[dict[str, Any]]], matching: bool
) -> tuple[int, float]:
    store = open_store(url)
    store.upgrade()
    ingestor = Ingestor(
        store, compile_landscape(Landscape.model_validate(landscape(matching))), chunk_size=2000
    )
    n = 0
    started = time.perf_counter()
    for system, records in rows.items():
        report = ingestor.ingest(system, "item", (SourceRecord(r) for r in records))
        n += report.received
        rejected = report.outcomes["rejected"]
        if rejected:
            raise SystemExit(f"{rejected} records rejected: {report.samples[:3]}")
    elapsed = time.perf_counter() - started
    store.close()
    return n, elapsed


def push_changes(rows: dict[str, list[dict[str, Any]]], n: int) -> list[dict[str, Any]]:
    """``n`` changes of known ERP records, one record each: a newer version, a new price."""
    known = rows["erp"]
    out = []
    for i in range(n):
        r = known[(i * 7919) % len(known)]
        out.append({**r, "VER": r["VER"] + 10 + i, "PRICE": f"{(i % 9999 + 1) / 100}"})
    return out


def run_pushes(url: str, changes: list[dict[str, Any]]) -> tuple[int, float]:
    """One ingest call per change, each its own transaction: pushes per second."""
    store = open_store(url)
    ingestor = Ingestor(store, compile_landscape(Landscape.model_validate(landscape(False))))
    started = time.perf_counter()
    for change in changes:
        report = ingestor.ingest("erp", "item", [SourceRecord(change)], source="api")
        if report.outcomes["accepted"] != 1:
            raise SystemExit(f"a push was not applied: {report.outcomes} {report.samples[:3]}")
    elapsed = time.perf_counter() - started
    store.close()
    return len(changes), elapsed


def _raw_rows(rows: dict[str, list[dict[str, Any]]]) -> list[tuple[Any, ...]]:
    return [
        (f"{system}:{r['ITEM']}", *(str(r[n]) for n in NATIVE[1:]), r["VER"])
        for system, records in rows.items()
        for r in records
    ]


RAW_COLUMNS = ("key", *[c.lower() for c in NATIVE[1:]], "ver")


def raw_sqlite(
    path: Path, rows: dict[str, list[dict[str, Any]]], per_commit: int = 2000
) -> tuple[int, float]:
    """The limit on SQLite: executemany upserts of the same rows, same pragmas, one commit
    per 2,000 rows like the pipeline (or per ``per_commit``)."""
    import sqlite3

    data = _raw_rows(rows)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    cols = ", ".join(RAW_COLUMNS)
    conn.execute(f"CREATE TABLE IF NOT EXISTS raw ({cols}, PRIMARY KEY (key))")
    marks = ", ".join("?" * len(RAW_COLUMNS))
    updates = ", ".join(f"{c} = excluded.{c}" for c in RAW_COLUMNS[1:])
    sql = f"INSERT INTO raw ({cols}) VALUES ({marks}) ON CONFLICT (key) DO UPDATE SET {updates}"
    started = time.perf_counter()
    for i in range(0, len(data), per_commit):
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(sql, data[i : i + per_commit])
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - started
    conn.close()
    return len(data), elapsed


def raw_postgres_rows(url: str, rows: dict[str, list[dict[str, Any]]]) -> tuple[int, float]:
    """The limit for pushes on PostgreSQL: one INSERT ... ON CONFLICT and commit per row."""
    data = _raw_rows(rows)
    cols = ", ".join(RAW_COLUMNS)
    marks = ", ".join(["%s"] * len(RAW_COLUMNS))
    updates = ", ".join(f"{c} = excluded.{c}" for c in RAW_COLUMNS[1:])
    sql = f"INSERT INTO raw ({cols}) VALUES ({marks}) ON CONFLICT (key) DO UPDATE SET {updates}"
    with psycopg.connect(url) as conn:
        started = time.perf_counter()
        for row in data:
            conn.execute(sql, row)
            conn.commit()
        elapsed = time.perf_counter() - started
    return len(data), elapsed


def raw_postgres(url: str, rows: dict[str, list[dict[str, Any]]]) -> tuple[int, float]:
    """The limit on PostgreSQL: COPY into a stage, INSERT ... ON CONFLICT, per 2,000 rows."""
    data = _raw_rows(rows)
    cols = ", ".join(RAW_COLUMNS)
    updates = ", ".join(f"{c} = excluded.{c}" for c in RAW_COLUMNS[1:])
    with psycopg.connect(url) as conn:
        conn.execute(
            f"CREATE TABLE IF NOT EXISTS raw ({', '.join(c + ' text' for c in RAW_COLUMNS)}"
            ", PRIMARY KEY (key))"
        )
        conn.execute("CREATE TEMP TABLE stage (LIKE raw) ON COMMIT DELETE ROWS")
        conn.commit()
        started = time.perf_counter()
        for i in range(0, len(data), 2000):
            with conn.cursor() as cur:
                with cur.copy(f"COPY stage ({cols}) FROM STDIN") as copy:
                    for row in data[i : i + 2000]:
                        copy.write_row(row)
                cur.execute(
                    f"INSERT INTO raw SELECT * FROM stage ON CONFLICT (key) DO UPDATE SET {updates}"
                )
            conn.commit()
        elapsed = time.perf_counter() - started
    return len(data), elapsed


def pg_database() -> tuple[str, Callable[[], None]]:
    name = f"mastersync_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    url = PG_ADMIN.rpartition("/")[0] + "/" + name

    def drop() -> None:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    return url, drop


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench(store: str, records: int, matching: bool, pushes: int) -> None:
    first = make_rows(records)
    again = second_pass(first)
    changes = push_changes(first, pushes)
    drop: Callable[[], None] = lambda: None  # noqa: E731
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        if store == "sqlite":
            url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        else:
            url, drop = pg_database()
        try:
            n1, t1 = run_pipeline(url, first, matching)
            n2, t2 = run_pipeline(url, again, matching)
            n3, t3 = run_pushes(url, changes) if pushes else (0, 0.0)
            pushed = {"erp": changes}
            if store == "sqlite":
                r1, rt1 = raw_sqlite(Path(tmp) / "raw.db", first)
                r2, rt2 = raw_sqlite(Path(tmp) / "raw.db", again)
                r3, rt3 = raw_sqlite(Path(tmp) / "raw.db", pushed, per_commit=1)
            else:
                r1, rt1 = raw_postgres(url, first)
                r2, rt2 = raw_postgres(url, again)
                r3, rt3 = raw_postgres_rows(url, pushed)
        finally:
            drop()
    results = [
        ("first pass", "rec/s", n1, t1, "raw upsert", "rows/s", r1, rt1),
        ("second pass (10% changed, 1% new)", "rec/s", n2, t2, "raw upsert", "rows/s", r2, rt2),
    ]
    if pushes:
        results.append(("pushes (1 record per call)", "/s", n3, t3, "raw 1-row txn", "/s", r3, rt3))
    for label, unit, n, t, raw_label, raw_unit, rn, rt in results:
        rate, raw = n / t, rn / rt
        print(
            f"{store:8} {label:36} pipeline {rate:9,.0f} {unit:5}   {raw_label} "
            f"{raw:9,.0f} {raw_unit:6}   ratio {rate / raw:6.1%}"
        )
    sys.stdout.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument(
        "--stores", nargs="+", default=["sqlite", "postgres"], choices=["sqlite", "postgres"]
    )
    parser.add_argument(
        "--matching",
        action="store_true",
        help="also detect duplicates with the default item rules (off: the stages the target "
        "names; the synthetic names share few words, so blocks grow to their cap)",
    )
    parser.add_argument(
        "--pushes",
        type=int,
        default=2000,
        help="changes of one record each, one ingest call apiece, after the two passes (0: none)",
    )
    args = parser.parse_args()
    tune_gc()  # as the command line does
    print(
        f"{args.records:,} item records, 12 fields, two systems with overlapping GTINs; "
        f"target: pipeline >= 10% of raw upsert; duplicate matching "
        f"{'on (default item rules)' if args.matching else 'off'}"
    )
    for store in args.stores:
        bench(store, args.records, args.matching, args.pushes)
    print(f"peak memory (RSS): {peak_rss_mib():,.0f} MiB")


if __name__ == "__main__":
    main()
