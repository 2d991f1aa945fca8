"""Drop folders: only settled files are taken, each by one poller, then archived."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest

from mastersync.bootstrap import build_hub
from mastersync.connectors.files.dropfolder import DropFolder
from mastersync.connectors.files.settings import FileSettings
from mastersync.connectors.sandbox.target import SandboxTarget


def test_claims_settled_matching_files_once(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for name in ("items_1.csv", "items_2.csv.part", "notes.txt", ".hidden_items.csv"):
        (inbox / name).write_text("sku,v\nA1,1\n")
    old = time.time() - 60
    for p in inbox.iterdir():
        os.utime(p, (old, old))
    (inbox / "items_3.csv").write_text("sku,v\nA3,1\n")  # still being written: too fresh
    folder = DropFolder("erp", inbox, {"item": "items_*.csv"}, FileSettings(), settle=5)
    claims = folder.claim()
    assert [(c.domain, c.name) for c in claims] == [("item", "items_1.csv")]
    assert (inbox / "processing" / "items_1.csv").exists()
    assert folder.claim() == []  # taken once
    assert [r.payload for r in claims[0].records()] == [{"sku": "A1", "v": "1"}]  # type: ignore[union-attr]
    claims[0].done([])
    archived = list((inbox / "archive").rglob("items_1.csv"))
    assert len(archived) == 1
    assert not (inbox / "processing" / "items_1.csv").exists()


def test_run_polls_the_drop_folder_and_delivers(tmp_path: Path) -> None:
    (tmp_path / "landscape.yaml").write_text("""
name: drop
systems:
  erp:
    kind: erp
    connector: {type: files, folder: inbox, watch: {item: "items*.csv"}, settle: 0}
    inbound:
      item: {key: sku, version: {from: v, kind: counter}, fields: {sku: sku, name: name}}
  shop:
    kind: ecommerce
    connector: {type: sandbox, database: shop.db}
    outbound: {items: {domain: item}}
""")
    (tmp_path / "inbox").mkdir()
    (tmp_path / "inbox" / "items_a.csv").write_text("sku,v,name\nA1,1,Pen\nA2,1,Ink\n")
    hub = build_hub(tmp_path / "landscape.yaml")
    # A file a crashed poller left behind is taken up again.
    (tmp_path / "inbox" / "processing").mkdir()
    (tmp_path / "inbox" / "processing" / "items_b.csv").write_text("sku,v,name\nA3,1,Pad\n")
    totals = asyncio.run(hub.distribution().run_until_idle(timeout=30, settle=1.0))
    assert totals.ingested == 3
    assert totals.delivered == 3
    assert len(SandboxTarget(tmp_path / "shop.db").records("item")) == 3
    assert not list((tmp_path / "inbox").glob("*.csv"))
    assert len(list((tmp_path / "inbox" / "archive").rglob("*.csv"))) == 2
    hub.close()


def test_claims_a_failed_poll_took_are_ingested_at_the_next_one(tmp_path: Path) -> None:
    """The store gone for a moment mid-poll: the claimed files wait in processing/ for the
    next poll, not for the next start of the hub."""
    from mastersync.pipeline.inbound import poller

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for name in ("items_1.csv", "items_2.csv"):
        (inbox / name).write_text(f"sku,v,name\n{name[:7]},1,Pen\n")
    old = time.time() - 60
    for p in inbox.iterdir():
        os.utime(p, (old, old))
    (tmp_path / "landscape.yaml").write_text("""
name: drop
systems:
  erp:
    kind: erp
    inbound:
      item: {key: sku, version: {from: v, kind: counter}, fields: {sku: sku, name: name}}
""")
    hub = build_hub(tmp_path / "landscape.yaml")
    folder = DropFolder("erp", inbox, {"item": "items_*.csv"}, FileSettings(), settle=0)
    ingestor = hub.ingestor
    real, calls = ingestor.ingest, []

    def flaky(*args: object, **kwargs: object) -> object:
        calls.append(args)
        if len(calls) == 1:
            raise ConnectionError("the store went away")
        return real(*args, **kwargs)  # type: ignore[arg-type]

    ingestor.ingest = flaky  # type: ignore[method-assign]
    poll = poller(ingestor, folder)
    with pytest.raises(ConnectionError):
        asyncio.run(poll())
    assert asyncio.run(poll()) == 2  # both files, the first one again
    assert len(list((inbox / "archive").rglob("*.csv"))) == 2
    assert not list((inbox / "processing").glob("*.csv"))
    hub.close()
