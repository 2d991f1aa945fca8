"""Two hub processes ingesting overlapping records at once: one golden record per GTIN."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import pytest

from mastersync.bootstrap import open_store
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
