"""The distribution crash test at full count: the hub SIGKILLed at least 20 times while a
producer feeds changes, on SQLite and on PostgreSQL + NATS JetStream. Prints what it found.

    .venv/bin/python benchmarks/crash.py                 # 20 kills per stack
    .venv/bin/python benchmarks/crash.py --kills 50 --stacks sqlite
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psycopg

from mastersync.backends.nats.bus import delete_stream

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.chaos import run_chaos  # the scenario the test suite runs too

PG = "postgresql://postgres@127.0.0.1:5432/test"
NATS = "nats://127.0.0.1:4222"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument(
        "--stacks",
        nargs="+",
        default=["sqlite", "postgres+nats"],
        choices=["sqlite", "postgres+nats"],
    )
    args = parser.parse_args()
    failed = False
    for stack in args.stacks:
        with tempfile.TemporaryDirectory() as tmp:
            name = f"mastersync_crash_{uuid.uuid4().hex[:8]}"
            bus = None
            if stack == "sqlite":
                url = f"sqlite:///{Path(tmp) / 'hub.db'}"
            else:
                with psycopg.connect(PG, autocommit=True) as conn:
                    conn.execute(f"CREATE DATABASE {name}")
                url = PG.rpartition("/")[0] + "/" + name
                tag = uuid.uuid4().hex[:8]
                bus = f"{NATS}?stream=CRASH{tag}&prefix=crash{tag}"
            started = time.perf_counter()
            try:
                r = run_chaos(Path(tmp), url, bus=bus, kills=args.kills, seed=args.kills)
            finally:
                if stack != "sqlite":
                    with psycopg.connect(PG, autocommit=True) as conn:
                        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
                if bus is not None:
                    asyncio.run(delete_stream(bus))
            print(
                f"{stack:14} kills {r.kills:3}  changes {r.changes:6}  records {r.records}  "
                f"applications {r.deliveries:6}  lost {len(r.lost)}  applied twice "
                f"{len(r.duplicated)}  out of order {len(r.disordered)}  behind golden "
                f"{len(r.stale)}  ({time.perf_counter() - started:.0f} s)"
            )
            failed = failed or not r.ok
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
