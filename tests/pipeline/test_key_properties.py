"""The natural-key index in the store over random sequences of records, in batches of any
size: ingest loads a chunk's keys from the store, so a chunk's view must be enough."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from hypothesis import example, given, settings
from hypothesis import strategies as st

from mastersync.backends.sql.tables import natural_key
from mastersync.bootstrap import open_store
from mastersync.domain.identity import natural_keys_of
from mastersync.domain.landscape.model import Landscape
from mastersync.domain.landscape.policy import compile_landscape
from mastersync.pipeline.ingest import Ingestor
from mastersync.ports.connector import SourceRecord
from tests.domain.test_key_properties import GTINS, step
from tests.support import landscape_doc


def _landscape() -> Any:
    doc = landscape_doc()
    item = doc["domains"]["item"]
    item["ownership"] = {**item["ownership"], "gtin": ["erp"]}
    item["quality"] = []
    return compile_landscape(Landscape.model_validate(doc))


def _native(system: str, key: str, v: int, gtin: str | None, name: str) -> dict[str, Any]:
    if system == "erp":
        record: dict[str, Any] = {"sku": key, "v": v, "name": name, "desc": name}
    else:
        record = {"id": key, "updated": f"2026-01-01T00:00:{v:02d}Z", "desc": name}
    if gtin:
        record["gtin"] = gtin
    return record


@given(st.lists(step, min_size=1, max_size=12), st.lists(st.integers(1, 4), min_size=12))
@settings(max_examples=60, deadline=None)
@example(  # as the domain's test: a GTIN only sent, then the ERP's own, held elsewhere
    [
        ("erp", "K1", GTINS[1], "Pen"),
        ("erp", "K2", GTINS[0], "Pen"),
        ("pim", "K2", GTINS[0], "Pen"),
        ("pim", "K2", GTINS[1], "Pen"),
        ("erp", "K2", None, "Pen"),
        ("erp", "K2", GTINS[1], "Pen"),
    ],
    [1] * 12,
)
def test_the_stored_index_only_points_at_records_holding_the_key(
    steps: list[Any], sizes: list[int]
) -> None:
    landscape = _landscape()
    policy = landscape.policies["item"]
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(f"sqlite:///{Path(tmp) / 'hub.db'}")
        store.upgrade()
        ingestor = Ingestor(store, landscape)
        versions: dict[tuple[str, str], int] = {}
        records = []
        for system, key, gtin, name in steps:
            v = versions[(system, key)] = versions.get((system, key), 0) + 1
            records.append((system, _native(system, key, v, gtin, name)))
        at = 0
        for size in sizes:  # consecutive records of one system make a batch
            batch = records[at : at + size]
            at += size
            for system in dict.fromkeys(s for s, _ in batch):
                mine = [SourceRecord(r) for s, r in batch if s == system]
                ingestor.ingest(system, "item", mine)
            if at >= len(records):
                break
        with store.unit_of_work(write=False) as uow:
            goldens = {g.master_id: g for g in uow.scan_golden("item")}
            holds = {
                m: natural_keys_of(policy, g.attributes, uow.members(m)) for m, g in goldens.items()
            }
        engine: sa.Engine = store.engine  # type: ignore[attr-defined]
        with engine.connect() as conn:
            index = {(r.name, r.value): r.master_id for r in conn.execute(sa.select(natural_key))}
        store.close()
    for (name, value), master in index.items():
        assert value in holds[master].get(name, ()), (value, master, steps, sizes)
    for master, golden in goldens.items():
        own = golden.attributes.get("gtin")
        if own:
            assert index.get(("gtin", own)) == master, (own, master, steps, sizes)
