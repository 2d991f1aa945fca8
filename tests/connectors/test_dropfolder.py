"""Drop folders: only settled files are taken, each by one poller, then archived."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import orjson
import pytest

from mastersync.bootstrap import build_hub
from mastersync.connectors.files.dropfolder import DropFolder
from mastersync.connectors.files.settings import FileSettings
from mastersync.connectors.sandbox.target import SandboxTarget
from tests.support import misspelt_pim, pim_products


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


def test_a_file_in_the_wrong_shape_is_one_problem_and_is_read_once_the_landscape_fits(
    tmp_path: Path,
) -> None:
    """A file delimited by commas where the connector says semicolons failed every mapped
    field of every record: fourteen inbox entries per line of a large export. It is now one
    entry naming the delimiter, the file is archived with that one reject, and the same file
    dropped again after the landscape is fixed is read (it was not marked as ingested)."""
    from mastersync.pipeline.inbound import poller
    from mastersync.ports.store import ExceptionFilter

    landscape = tmp_path / "landscape.yaml"
    text = """
name: drop
systems:
  erp:
    kind: erp
    connector: {type: files, folder: inbox, delimiter: ";", watch: {item: "items*.csv"}}
    inbound:
      item: {key: sku, version: {from: v, kind: counter}, fields: {sku: sku, name: name}}
"""
    landscape.write_text(text)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    content = "sku,v,name\n" + "".join(f"A{i},1,Pen {i}\n" for i in range(50))
    (inbox / "items_1.csv").write_text(content)
    hub = build_hub(landscape)
    folder = DropFolder("erp", inbox, {"item": "items*.csv"}, FileSettings(delimiter=";"), settle=0)
    assert asyncio.run(poller(hub.ingestor, folder)()) == 0
    with hub.store.unit_of_work(write=False) as uow:
        entries = uow.exceptions(ExceptionFilter(limit=1000))
    assert len(entries) == 1
    assert (entries[0].kind, entries[0].rule) == ("parse_error", "header")
    assert "looks delimited by ','" in entries[0].message
    rejects = next((inbox / "archive").rglob("items_1.csv.rejects.csv")).read_text()
    assert "items_1.csv:1,,header," in rejects
    hub.close()

    landscape.write_text(text.replace('delimiter: ";"', 'delimiter: ","'))
    (inbox / "items_1.csv").write_text(content)
    hub = build_hub(landscape)
    folder = DropFolder("erp", inbox, {"item": "items*.csv"}, FileSettings(), settle=0)
    assert asyncio.run(poller(hub.ingestor, folder)()) == 50
    with hub.store.unit_of_work(write=False) as uow:
        assert uow.domain_counts()[0].golden == 50
    hub.close()


def test_an_empty_csv_file_is_set_aside_as_refused_and_an_empty_jsonl_one_is_archived(
    tmp_path: Path,
) -> None:
    """Review: a CSV file with no header line (0 bytes, a BOM alone, blank lines) was
    taken as "nothing changed" and said received 0, rejected 0. It lacks every mapped
    column: one `header` entry, archived with that reject, not remembered (dropped again,
    it is refused again, never set aside as a duplicate); a file with a header and no rows
    is read. An empty JSON Lines file is no error: archived, and the poll goes on."""
    from mastersync.pipeline.inbound import poller
    from mastersync.ports.store import ExceptionFilter

    landscape = tmp_path / "landscape.yaml"
    landscape.write_text(
        """
name: drop
systems:
  erp:
    kind: erp
    connector: {type: files, folder: inbox, watch: {item: "items*"}}
    inbound:
      item: {key: sku, version: {from: v, kind: counter}, fields: {sku: sku, name: name}}
"""
    )
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "items_1.csv").write_bytes(b"")
    (inbox / "items_2.csv").write_bytes(b"\xef\xbb\xbf")
    (inbox / "items_3.csv").write_bytes(b"\n\r\n  \n")
    (inbox / "items_4.csv").write_text("sku,v,name\n")
    (inbox / "items_5.jsonl").write_bytes(b"")
    hub = build_hub(landscape)
    folder = DropFolder("erp", inbox, {"item": "items*"}, FileSettings(), settle=0)
    poll = poller(hub.ingestor, folder)
    assert asyncio.run(poll()) == 0
    with hub.store.unit_of_work(write=False) as uow:
        entries = uow.exceptions(ExceptionFilter(limit=1000))
    assert sorted((e.locator, e.kind, e.rule, e.message) for e in entries) == [
        (f"items_{n}.csv:1", "parse_error", "header", "no header line: the file is empty")
        for n in (1, 2, 3)
    ]
    archive = inbox / "archive"
    assert sorted(p.name for p in archive.rglob("*") if p.is_file()) == sorted(
        [
            *(f"items_{n}.csv{s}" for n in (1, 2, 3) for s in ("", ".rejects.csv")),
            "items_4.csv",
            "items_5.jsonl",
        ]
    )
    rejects = next(archive.rglob("items_1.csv.rejects.csv")).read_text()
    assert "items_1.csv:1,,header,no header line: the file is empty" in rejects
    assert not list((inbox / "processing").iterdir())
    # Dropped again: refused again, not a duplicate of a file ingested before.
    (inbox / "items_1.csv").write_bytes(b"")
    assert asyncio.run(poll()) == 0
    assert not (inbox / "duplicates").exists()
    assert len(list(archive.rglob("items_1*.csv"))) == 4  # each with its rejects
    with hub.store.unit_of_work(write=False) as uow:
        [again] = uow.exceptions(ExceptionFilter(source_key="@items_1.csv:1"))
    assert again.attempts == 2
    hub.close()


def test_a_field_no_record_of_a_file_filled_through_an_expression_is_logged_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from mastersync.pipeline.inbound import poller

    landscape = tmp_path / "landscape.yaml"
    landscape.write_text(
        misspelt_pim('connector: {type: files, folder: inbox, watch: {item: "*"}}')
    )
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    rows = "".join(orjson.dumps(p).decode() + "\n" for p in pim_products(25))
    hub = build_hub(landscape)
    folder = DropFolder("pim", inbox, {"item": "items*.jsonl"}, FileSettings(), settle=0)
    poll = poller(hub.ingestor, folder)
    (inbox / "items_1.jsonl").write_text(rows)
    with caplog.at_level("WARNING", logger="mastersync.inbound"):
        assert asyncio.run(poll()) == 25
    [warning] = [r.getMessage() for r in caplog.records]
    assert "pim.item items_1.jsonl: brand ('values.brnad[0].data') was empty in all 25" in warning
    assert "name" not in warning.split("brand")[0]
    caplog.clear()
    again = "".join(orjson.dumps(p).decode() + "\n" for p in pim_products(25, "Pencil"))
    (inbox / "items_2.jsonl").write_text(again)
    with caplog.at_level("WARNING", logger="mastersync.inbound"):
        assert asyncio.run(poll()) == 25
    assert caplog.records == []  # said once per poller, not at every file
    hub.close()


def test_a_new_file_never_replaces_a_left_over_of_the_same_name(tmp_path: Path) -> None:
    """A rename into processing/ replaced a crashed poller's left-over of the same name
    (the next day's export), and the poller claimed new files before ingesting the
    left-overs: the left-over's records were lost without a word."""
    from mastersync.pipeline.inbound import poller

    inbox = tmp_path / "inbox"
    (inbox / "processing").mkdir(parents=True)
    (inbox / "processing" / "items.csv").write_text("sku,v,name\nA1,1,Pen\n")  # left over
    (inbox / "items.csv").write_text("sku,v,name\nA2,1,Ink\n")  # the next export
    (tmp_path / "landscape.yaml").write_text("""
name: drop
systems:
  erp:
    kind: erp
    inbound:
      item: {key: sku, version: {from: v, kind: counter}, fields: {sku: sku, name: name}}
""")
    hub = build_hub(tmp_path / "landscape.yaml")
    folder = DropFolder("erp", inbox, {"item": "items*.csv"}, FileSettings(), settle=0)
    ingestor = hub.ingestor
    real, order = ingestor.ingest, []

    def recording(*args: object, **kwargs: object) -> object:
        order.append(kwargs["source"])
        return real(*args, **kwargs)  # type: ignore[arg-type]

    ingestor.ingest = recording  # type: ignore[method-assign]
    assert asyncio.run(poller(ingestor, folder, folder.resume)()) == 2
    assert order[0] == "items.csv"  # the left-over first
    assert len(order) == 2
    archived = sorted(p.read_text() for p in (inbox / "archive").rglob("items*.csv"))
    assert archived == ["sku,v,name\nA1,1,Pen\n", "sku,v,name\nA2,1,Ink\n"]
    hub.close()


def test_of_two_pollers_taking_one_file_only_one_has_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "items_1.csv").write_text("sku,v\nA1,1\n")
    folder = DropFolder("erp", inbox, {"item": "items_*.csv"}, FileSettings(), settle=0)
    real_link = os.link

    def link_and_lose_the_race(source: Path, target: Path) -> None:
        real_link(source, target)
        # Meanwhile another poller linked the file too, and unlinked it first.
        real_link(source, inbox / "processing" / "theirs.csv")
        os.unlink(source)

    monkeypatch.setattr(os, "link", link_and_lose_the_race)
    assert folder.claim() == []
    assert [p.name for p in (inbox / "processing").iterdir()] == ["theirs.csv"]


def test_without_hard_links_a_file_is_renamed_to_a_free_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inbox = tmp_path / "inbox"
    (inbox / "processing").mkdir(parents=True)
    (inbox / "processing" / "items_1.csv").write_text("sku,v\nA1,1\n")
    (inbox / "items_1.csv").write_text("sku,v\nA2,1\n")

    def no_links(source: Path, target: Path) -> None:
        raise PermissionError(1, "Operation not permitted")  # as some network shares say

    monkeypatch.setattr(os, "link", no_links)
    folder = DropFolder("erp", inbox, {"item": "items_*.csv"}, FileSettings(), settle=0)
    [claim] = folder.claim()
    assert claim.path.read_text() == "sku,v\nA2,1\n"
    contents = sorted(p.read_text() for p in (inbox / "processing").iterdir())
    assert contents == ["sku,v\nA1,1\n", "sku,v\nA2,1\n"]


def test_a_file_of_a_type_no_reader_knows_is_one_problem_not_a_stuck_poller(
    tmp_path: Path,
) -> None:
    """A watch pattern taking any file (`items*`) claimed `items.json`; its read raised at
    every poll, and, left-overs going first, no later file was read again."""
    from mastersync.pipeline.inbound import poller
    from mastersync.ports.store import ExceptionFilter

    landscape = tmp_path / "landscape.yaml"
    landscape.write_text(
        """
name: drop
systems:
  erp:
    kind: erp
    connector: {type: files, folder: inbox, watch: {item: "items*"}}
    inbound:
      item: {key: sku, version: {from: v, kind: counter}, fields: {sku: sku, name: name}}
"""
    )
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "items.json").write_text('[{"sku": "A1"}]')
    hub = build_hub(landscape)
    folder = DropFolder("erp", inbox, {"item": "items*"}, FileSettings(), settle=0)
    poll = poller(hub.ingestor, folder)
    assert asyncio.run(poll()) == 0
    with hub.store.unit_of_work(write=False) as uow:
        [entry] = uow.exceptions(ExceptionFilter(limit=10))
    assert (entry.rule, entry.locator) == ("header", "items.json:1")
    assert "unsupported file type '.json'" in entry.message
    assert list((inbox / "archive").rglob("items.json"))
    (inbox / "items_2.csv").write_text("sku,v,name\nA1,1,Pen\n")
    assert asyncio.run(poll()) == 1
    hub.close()
