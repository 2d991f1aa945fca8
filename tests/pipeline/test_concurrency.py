"""Two hub processes ingesting overlapping records at once: one golden record per GTIN."""

from __future__ import annotations

import random
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import psycopg
import pytest

from mastersync.bootstrap import open_store
from mastersync.landscape import load_landscape
from mastersync.pipeline.ids import utc_now
from mastersync.pipeline.ingest import Ingestor
from mastersync.pipeline.matching.merging import merge_in
from mastersync.ports.connector import SourceRecord
from mastersync.sandbox.identifiers import gtin13

LANDSCAPE = """\
name: concurrent
systems:
  erp:
    kind: erp
    inbound:
      item:
        key: sku
        version: {from: v, kind: counter}
        fields: {sku: sku, name: name, gtin: gtin}
  pim:
    kind: pim
    inbound:
      item:
        key: id
        version: {from: v, kind: counter}
        fields: {gtin: gtin, description: text}
domains:
  item:
    natural_keys: [[gtin]]
    ownership: {name: [erp], description: [pim]}
"""
N = 6000


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_concurrent_ingests_of_the_same_items_make_one_golden_record_each(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = (
        f"sqlite:///{tmp_path / 'c.db'}"
        if backend == "sqlite"
        else str(request.getfixturevalue("pg_url"))
    )
    (tmp_path / "landscape.yaml").write_text(LANDSCAPE)
    rng = random.Random(3)
    gtins = [gtin13(rng) for _ in range(N)]
    (tmp_path / "erp.csv").write_text(
        "sku,v,name,gtin\n" + "".join(f"E{i},1,Item {i},{g}\n" for i, g in enumerate(gtins))
    )
    shuffled = list(enumerate(gtins))
    rng.shuffle(shuffled)  # the PIM's file is in another order: the two really interleave
    (tmp_path / "pim.csv").write_text(
        "id,v,gtin,text\n" + "".join(f"P{i},1,{g},About {i}\n" for i, g in shuffled)
    )
    store = open_store(url)
    store.upgrade()
    store.close()
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mastersync.cli",
                "-l",
                str(tmp_path / "landscape.yaml"),
                "--store",
                url,
                "ingest",
                "-s",
                system,
                "-d",
                "item",
                str(tmp_path / f"{system}.csv"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for system in ("erp", "pim")
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err.decode()
    store = open_store(url)
    engine = store.engine  # type: ignore[attr-defined]
    with engine.connect() as conn:
        q = conn.exec_driver_sql
        assert q("SELECT count(*) FROM golden").scalar() == N
        assert q("SELECT count(*) FROM xref").scalar() == 2 * N
        # Both systems' records of one GTIN share a golden record holding both halves.
        assert (
            q(
                "SELECT count(*) FROM (SELECT master_id FROM xref GROUP BY master_id "
                "HAVING count(*) = 2) t"
            ).scalar()
            == N
        )
        assert q("SELECT count(*) FROM exceptions").scalar() == 0
    store.close()
    # Versions, events and lineage agree record by record.
    goldens = check_consistent_versions(url)
    assert goldens == N


def check_consistent_versions(url: str) -> int:
    """Each golden version has one event and one lineage entry (xrefs here have two members)."""
    store = open_store(url)
    engine = store.engine  # type: ignore[attr-defined]
    with engine.connect() as conn:
        q = conn.exec_driver_sql
        assert (
            q(
                "SELECT count(*) FROM golden g WHERE g.version <> (SELECT count(*) FROM "
                "outbox o WHERE o.master_id = g.master_id)"
            ).scalar()
            == 0
        )
        assert q("SELECT count(*) FROM golden g WHERE g.version <> 2").scalar() == 0
        count = int(q("SELECT count(*) FROM golden").scalar() or 0)
    store.close()
    return count


MOVES = """\
name: moves
systems:
  erp:
    kind: erp
    inbound:
      item:
        key: id
        version: {from: v, kind: counter}
        fields: {sku: id, name: name, gtin: gtin}
domains:
  item: {natural_keys: [[gtin]], matching: false}
"""


def _waiting_on_a_lock(url: str) -> bool:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock'"
        ).fetchone()
    return bool(row and row[0])


def test_an_ingest_waiting_on_a_merge_follows_the_moved_record(pg_url: str, tmp_path: Path) -> None:
    """An ingest of the loser's source record that read its xref, then waited for the
    golden row a merge held, wrote on what it had read: the merge was undone (the loser
    live again at a new version, its xref back, its natural key on the survivor)."""
    (tmp_path / "landscape.yaml").write_text(MOVES)
    landscape = load_landscape(tmp_path / "landscape.yaml")
    store = open_store(pg_url)
    store.upgrade()
    ingestor = Ingestor(store, landscape)
    ingestor.ingest(
        "erp",
        "item",
        [
            SourceRecord({"id": "E0", "v": 1, "name": "Survivor", "gtin": "4000000000006"}),
            SourceRecord({"id": "X0", "v": 1, "name": "Loser", "gtin": "4000000050001"}),
        ],
    )
    with store.unit_of_work(write=False) as uow:
        survivor, loser = (uow.find_master("item", "erp", k) for k in ("E0", "X0"))
    assert survivor and loser
    merged, release = threading.Event(), threading.Event()

    def merge() -> None:
        with store.unit_of_work() as uow:
            merge_in(uow, landscape, survivor, loser, actor="steward", reason=None, now=utc_now())
            merged.set()
            release.wait(30)  # the merge's transaction holds both golden rows meanwhile
            uow.commit()

    merging = threading.Thread(target=merge)
    merging.start()
    assert merged.wait(30)
    done: list[object] = []
    later = SourceRecord({"id": "X0", "v": 2, "name": "Loser v2", "gtin": "4000000050001"})
    ingesting = threading.Thread(
        target=lambda: done.append(ingestor.ingest("erp", "item", [later]).outcomes)
    )
    ingesting.start()
    deadline = time.monotonic() + 30
    while not _waiting_on_a_lock(pg_url) and time.monotonic() < deadline:
        time.sleep(0.05)
    release.set()
    merging.join(30)
    ingesting.join(30)
    assert done == [Counter({"accepted": 1})]
    with store.unit_of_work(write=False) as uow:
        assert uow.find_master("item", "erp", "X0") == survivor
        records, _ = uow.load_golden([survivor, loser])
        assert uow.load_natural_keys("item", {("gtin", "04000000050001")}) == {
            ("gtin", "04000000050001"): survivor
        }
    by_id = {g.master_id: g for g in records}
    assert by_id[loser].merged_into == survivor
    assert by_id[loser].version == 2  # created, then merged away; nothing after
    assert by_id[survivor].attributes["name"] in ("Survivor", "Loser v2")
    store.close()
