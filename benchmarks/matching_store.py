"""Incremental matching as ingest runs it: one new source record, through the store's
persisted candidate index, against N generated golden customers.

benchmarks/matching.py times the matching engine with its in-memory index; this times the
product path: a one-record ingest batch (map, validate, identify, candidate look-up in the
``match_keys`` table, loading and scoring the candidates, merge, writes, commit) on a store
that already holds N golden customers with their xrefs, natural keys and index rows. Probes
carry no tax id, so natural keys never short-cut them: every probe is matched.

    .venv/bin/python benchmarks/matching_store.py --golden 1000000
    .venv/bin/python benchmarks/matching_store.py --golden 100000 --store postgresql://...
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).parent))

from matching import _percentile, _pools, golden_customer, variant

from mastersync.backends.sql.matching import key_hash
from mastersync.bootstrap import open_store
from mastersync.cli.commands import tune_gc
from mastersync.domain.ingest import Incoming
from mastersync.domain.landscape.model import Landscape
from mastersync.domain.landscape.policy import compile_landscape
from mastersync.domain.ledger import Ledger
from mastersync.domain.matching import Matcher, default_config
from mastersync.domain.validation import validate
from mastersync.pipeline.ingest import Ingestor
from mastersync.pipeline.matching.linker import Linker
from mastersync.ports.connector import SourceRecord

FIELDS = {
    name: {"from": name, "optional": True}
    for name in ("tax_id", "email", "phone", "country", "addresses")
}
LANDSCAPE = {
    "name": "matching-bench",
    "systems": {
        "crm": {
            "kind": "crm",
            "inbound": {
                "customer": {
                    "key": "id",
                    "version": {"from": "v", "kind": "counter"},
                    "fields": {"name": "name", **FIELDS},
                }
            },
        }
    },
}
NOW = "2026-11-27T00:00:00.000000Z"


def _size(engine: sa.Engine, url: str) -> int:
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            return int(
                conn.execute(sa.text("SELECT pg_database_size(current_database())")).scalar_one()
            )
    path = url.removeprefix("sqlite:///")
    return sum(os.path.getsize(p) for p in (path, f"{path}-wal") if os.path.exists(p))


def fill(engine: sa.Engine, url: str, goldens: dict[str, dict[str, Any]]) -> tuple[float, int]:
    """Golden records, xrefs and natural keys, then the index rows: (seconds, index bytes)."""
    matcher = Matcher(default_config("customer"))
    ids = list(goldens)
    golden_sql = sa.text(
        "INSERT INTO golden (master_id, domain, version, attributes, provenance, quality, "
        "created_at, updated_at) VALUES (:m, 'customer', 1, :a, :p, 1.0, :t, :t)"
    )
    xref_sql = sa.text(
        'INSERT INTO xref (domain, system, source_key, master_id, source_version, "values", '
        "digest, received_at) VALUES ('customer', 'erp', :m, :m, '1', :a, :m, :t)"
    )
    nk_sql = sa.text(
        "INSERT INTO natural_key (domain, name, value, master_id) "
        "VALUES ('customer', 'tax_id', :v, :m)"
    )
    seen: set[str] = set()  # generated tax ids can repeat; a natural key names one record
    for start in range(0, len(ids), 20_000):
        part = ids[start : start + 20_000]
        rows = [
            {
                "m": m,
                "a": orjson.dumps(goldens[m]).decode(),
                "p": orjson.dumps(
                    {
                        "sources": [{"system": "erp", "key": m, "version": "1", "at": NOW}],
                        "fields": dict.fromkeys(goldens[m], 0),
                    }
                ).decode(),
                "t": NOW,
            }
            for m in part
        ]
        taxes = {}
        for m in part:
            tax = goldens[m].get("tax_id")
            if tax and tax.upper() not in seen:
                seen.add(tax.upper())
                taxes[tax.upper()] = m
        with engine.begin() as conn:
            conn.execute(golden_sql, rows)
            conn.execute(xref_sql, rows)
            conn.execute(nk_sql, [{"v": v, "m": m} for v, m in taxes.items()])
    before = _size(engine, url)
    start_time = time.perf_counter()
    key_sql = sa.text("INSERT INTO match_keys (key, master_id) VALUES (:k, :m)")
    for start in range(0, len(ids), 20_000):
        part = ids[start : start + 20_000]
        keys = [
            {"k": k, "m": m}
            for m in part
            for k in {key_hash("customer", key) for key in matcher.compiled.block_keys(goldens[m])}
        ]
        with engine.begin() as conn:
            conn.execute(key_sql, keys)
    took = time.perf_counter() - start_time
    return took, _size(engine, url) - before


def main() -> None:
    """Run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--golden", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=1_000)
    parser.add_argument("--store", help="store URL (default: a SQLite file in a temp folder)")
    args = parser.parse_args()
    tune_gc()
    url = args.store or f"sqlite:///{tempfile.mkdtemp()}/bench.db"
    store = open_store(url)
    store.upgrade()
    engine: sa.Engine = store.engine  # type: ignore[attr-defined]

    rng = random.Random(11)
    pools = _pools(11)
    goldens = {f"cus_{i:032x}": golden_customer(rng, pools) for i in range(args.golden)}
    start = time.perf_counter()
    took, index_bytes = fill(engine, url, goldens)
    with engine.connect() as conn:
        index_rows = conn.execute(sa.text("SELECT count(*) FROM match_keys")).scalar_one()
    print(
        f"{engine.dialect.name}: {args.golden:,} golden customers stored in "
        f"{time.perf_counter() - start:.0f} s; candidate index: {index_rows:,} rows "
        f"({index_rows / args.golden:.1f} keys/record), {index_bytes / 2**20:,.0f} MiB on disk "
        f"({index_bytes / args.golden:,.0f} B/record), built in {took:.0f} s"
    )

    landscape = compile_landscape(Landscape.model_validate(LANDSCAPE))
    ingestor = Ingestor(store, landscape)
    originals = list(goldens)
    probes: list[tuple[dict[str, Any], str | None]] = []
    for i in range(args.queries):
        if i % 2 == 0:
            source = rng.choice(originals)
            record = variant(rng, goldens[source])
        else:
            source, record = None, golden_customer(rng, pools)
        record.pop("tax_id", None)
        probes.append(({**record, "id": f"P{i}", "v": 1}, source))
    policy = landscape.policies["customer"]
    mapper = landscape.mapper("crm", "customer")
    lookups, candidates, in_blocks, capped = [], 0, 0, 0
    for record, _ in probes:
        values, _problems = validate(policy.spec, mapper.map(record).values)
        incoming = Incoming("crm", "customer", record["id"], 1, None, values, "-")
        begin = time.perf_counter()
        with store.unit_of_work(write=False) as uow:
            linker = Linker(uow, policy, Ledger(), NOW)
            linker.load(uow, [incoming])
            linker.match(incoming)
        lookups.append(time.perf_counter() - begin)
        candidates += linker.candidates_scored
        in_blocks += linker.selected.found
        capped += linker.selected.cut > 0
    print(
        f"  matching alone (candidate look-up in the store, load, score): p50 "
        f"{_percentile(lookups, 0.5) * 1e3:.2f} ms, p99 {_percentile(lookups, 0.99) * 1e3:.2f} "
        f"ms ({candidates / len(probes):.1f} candidates scored per record)"
    )
    print(
        f"  candidates in the blocks: {in_blocks / len(probes):.1f} per record; max_candidates "
        f"{policy.matching.max_candidates if policy.matching else '-'} cut them for {capped}/"
        f"{len(probes)} records"
    )
    latencies, linked, found, wrong, created = [], 0, 0, 0, 0
    for record, source in probes:
        begin = time.perf_counter()
        report = ingestor.ingest("crm", "customer", [SourceRecord(record, "bench")])
        latencies.append(time.perf_counter() - begin)
        (master,) = report.master_ids
        if master in goldens:
            linked += 1
            found += master == source
            wrong += master != source
        else:
            created += 1
    with engine.connect() as conn:
        reviews = conn.execute(
            sa.text("SELECT count(*) FROM match_decisions WHERE status = 'open'")
        ).scalar_one()
    dupes = sum(1 for _, s in probes if s is not None)
    print(
        f"  one-record ingest batch incl. matching and commit: p50 "
        f"{_percentile(latencies, 0.5) * 1e3:.1f} ms, p99 {_percentile(latencies, 0.99) * 1e3:.1f} "
        f"ms, mean {statistics.fmean(latencies) * 1e3:.1f} ms ({args.queries:,} records)"
    )
    print(
        f"  starting weights (no EM fit stored): {found}/{dupes} planted duplicates auto-linked "
        f"to their original, {wrong} links to another record, {created} new golden records, "
        f"{reviews} review entries"
    )
    store.close()


if __name__ == "__main__":
    main()
