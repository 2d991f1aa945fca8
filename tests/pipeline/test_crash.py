"""kill -9 during a batch: every record is either fully applied, with its event and lineage,
or not at all; re-running the batch converges to the result of an uninterrupted run."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from mastersync.bootstrap import open_store
from mastersync.sandbox.identifiers import gtin13

LANDSCAPE = """\
name: crash
systems:
  erp:
    kind: erp
    inbound:
      item:
        key: sku
        version: {from: v, kind: counter}
        fields: {sku: sku, name: name, gtin: gtin, list_price: {from: price, number: true}}
domains:
  item:
    ownership: {name: [erp]}
"""
ROWS = 24_000


def write_estate(folder: Path) -> tuple[Path, Path]:
    landscape = folder / "landscape.yaml"
    landscape.write_text(LANDSCAPE)
    rng = random.Random(5)
    half = ROWS // 2
    skus = [(f"S{i:06d}", gtin13(rng)) for i in range(half)]
    lines = ["sku,v,name,gtin,price"]
    # Every item twice: a first version, then (later in the file) a second one.
    lines += [f"{s},1,Item {s},{g},{i % 97}.5" for i, (s, g) in enumerate(skus)]
    lines += [f"{s},2,Item {s} v2,{g},{i % 89}.25" for i, (s, g) in enumerate(skus)]
    data = folder / "items.csv"
    data.write_text("\n".join(lines) + "\n")
    return landscape, data


def ingest(landscape: Path, data: Path, url: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mastersync.cli",
            "-l",
            str(landscape),
            "--store",
            url,
            "ingest",
            "-s",
            "erp",
            "-d",
            "item",
            str(data),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def check_consistent(url: str) -> int:
    """Invariants that a half-applied record would break; returns the golden count."""
    store = open_store(url)
    engine = store.engine  # type: ignore[attr-defined]
    with engine.connect() as conn:
        q = conn.exec_driver_sql
        goldens = q("SELECT count(*) FROM golden").scalar()
        # Each golden version has exactly one event and one accepted lineage entry.
        assert (
            q(
                "SELECT count(*) FROM golden g WHERE g.version <> (SELECT count(*) FROM "
                "outbox o WHERE o.master_id = g.master_id)"
            ).scalar()
            == 0
        )
        assert (
            q(
                "SELECT count(*) FROM golden g WHERE g.version <> (SELECT max(o.version) FROM "
                "outbox o WHERE o.master_id = g.master_id)"
            ).scalar()
            == 0
        )
        assert (
            q(
                "SELECT count(*) FROM golden g WHERE g.version <> (SELECT count(*) FROM "
                "lineage l WHERE l.master_id = g.master_id AND l.outcome = 'accepted')"
            ).scalar()
            == 0
        )
        # The golden record carries what its source record's applied version says.
        assert (
            q(
                "SELECT count(*) FROM golden g JOIN xref x ON x.master_id = g.master_id "
                "WHERE g.version <> CAST(x.source_version AS INTEGER)"
            ).scalar()
            == 0
        )
        assert (
            q(
                "SELECT count(*) FROM xref x LEFT JOIN golden g ON g.master_id = x.master_id "
                "WHERE g.master_id IS NULL"
            ).scalar()
            == 0
        )
        assert (
            q(
                "SELECT count(*) FROM natural_key n LEFT JOIN golden g ON "
                "g.master_id = n.master_id WHERE g.master_id IS NULL"
            ).scalar()
            == 0
        )
        assert q("SELECT count(*) FROM xref").scalar() == goldens
    store.close()
    return int(goldens or 0)


def final_state(url: str) -> dict[str, tuple[int, dict[str, object]]]:
    store = open_store(url)
    engine: sa.Engine = store.engine  # type: ignore[attr-defined]
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT x.source_key, g.version, g.attributes FROM golden g "
            "JOIN xref x ON x.master_id = g.master_id"
        ).all()
    store.close()
    # SQLite hands JSON back as text, PostgreSQL's JSONB as objects.
    return {
        key: (version, json.loads(attrs) if isinstance(attrs, str) else attrs)
        for key, version, attrs in rows
    }


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_kill_9_during_a_batch_loses_and_half_writes_nothing(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = (
        f"sqlite:///{tmp_path / 'crash.db'}"
        if backend == "sqlite"
        else str(request.getfixturevalue("pg_url"))
    )
    landscape, data = write_estate(tmp_path)
    rng = random.Random(11)
    kills = 0
    previous = -1
    for _ in range(3):
        proc = ingest(landscape, data, url)
        time.sleep(rng.uniform(1.2, 3.0))
        if proc.poll() is not None:
            proc.communicate()  # closes the stderr pipe
            break
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        kills += 1
        count = check_consistent(url)
        assert count >= previous  # committed work is never lost
        previous = count
    assert kills >= 2, "the ingest finished before it could be killed twice; grow ROWS"
    done = ingest(landscape, data, url)
    _, err = done.communicate(timeout=600)
    assert done.returncode == 0, err.decode()
    assert check_consistent(url) == ROWS // 2

    clean_url = f"sqlite:///{tmp_path / 'clean.db'}"
    clean = ingest(landscape, data, clean_url)
    _, err = clean.communicate(timeout=600)
    assert clean.returncode == 0, err.decode()
    interrupted, uninterrupted = final_state(url), final_state(clean_url)
    assert interrupted == uninterrupted
    assert all(version == 2 for version, _ in interrupted.values())
