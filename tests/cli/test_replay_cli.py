"""`mastersync replay --signature`: what it closes, said before (--dry-run) and after."""

from __future__ import annotations

import re
from pathlib import Path

from mastersync.bootstrap import open_store
from mastersync.connectors.sandbox.target import Faults, SandboxTarget
from mastersync.domain.records import ExceptionStatus
from mastersync.ports.store import ExceptionFilter
from tests.cli.test_cli import ERP_TO_SHOP, cli, erp_to_shop


def ingest(landscape: Path, rows: str) -> None:
    items = landscape.parent / "more.csv"
    items.write_text(f"sku,v,name\n{rows}")
    code, out = cli("ingest", "-s", "erp", "-d", "item", str(items), landscape=landscape)
    assert code == 0, out


def run(landscape: Path) -> str:
    code, out = cli("run", "--until-idle", "--timeout", "30", landscape=landscape)
    assert code == 0, out
    return out


def test_a_dry_run_says_what_the_replay_closes_and_the_replay_closes_just_that(
    tmp_path: Path,
) -> None:
    """Two dead letters of one signature: A1's version 1 was overtaken by version 2, which
    the shop holds; A2's version 1 it never got. The replay sends A2's alone, and closes
    A1's as superseded (it said "sent again" of both, and the dry run said nothing)."""
    landscape = erp_to_shop(tmp_path / "estate", "sku,v,name\nA1,1,BAD\nA2,1,BAD\n")
    shop = SandboxTarget(landscape.parent / "shop.db")
    shop.set_faults(Faults(reject_when="name == 'BAD'"))
    run(landscape)
    ingest(landscape, "A1,2,Pen\n")
    run(landscape)
    store = open_store(f"sqlite:///{landscape.parent / 'mastersync.db'}")
    try:
        with store.unit_of_work(write=False) as uow:
            dead = uow.exceptions(ExceptionFilter(kind="dead_letter"))
            a1 = uow.find_master("item", "erp", "A1")
            a2 = uow.find_master("item", "erp", "A2")
        (signature,) = {e.signature for e in dead}
        ids = {e.master_id: e.id for e in dead}
        shop.set_faults(Faults())
        args = ("replay", "-s", "shop.items", "--signature", signature)
        code, dry = cli(*args, "--dry-run", landscape=landscape)
        assert code == 0, dry
        assert "would close 2 open dead letter(s) of these versions: 1 sent again, " in dry
        assert f"  #{ids[a1]} {a1} v1: superseded: the consumer has version 2\n" in dry
        assert f"  #{ids[a2]} {a2} v1: sent again\n" in dry
        # Nothing changed: both still open, nothing queued.
        with store.unit_of_work(write=False) as uow:
            assert {e.id for e in uow.exceptions(ExceptionFilter(kind="dead_letter"))} == set(
                ids.values()
            )
            assert uow.open_deliveries(["shop.items"]) == 0
        code, out = cli(*args, landscape=landscape)
        assert code == 0, out
        # The same lines, done.
        lines = [line for line in dry.splitlines() if line.startswith("  #")]
        assert all(line in out.splitlines() for line in lines), out
        assert "closed 2 open dead letter(s) of these versions: 1 sent again, 1 superseded" in out
        replay = re.search(r"as replay (rpl_\w+)", out)
        assert replay is not None
        with store.unit_of_work(write=False) as uow:
            closed = uow.exceptions_by_id(ids.values())
        assert all(e.status is ExceptionStatus.RESOLVED for e in closed.values())
        notes = {e.master_id: (e.resolution or {}).get("note") for e in closed.values()}
        assert notes == {
            a1: "superseded: the consumer has version 2",
            a2: f"sent again by replay {replay.group(1)}",
        }
        assert "delivered 1," in run(landscape)
        versions = {m: r["version"] for m, r in shop.records("item").items()}
        assert versions == {a1: 2, a2: 1}
    finally:
        store.close()


def figures(landscape: Path) -> tuple[list[str], str]:
    """shop.items' lag, pending, retrying, dead, delivered, skipped in `deliveries` (80
    columns), and the whole output."""
    code, out = cli("deliveries", landscape=landscape, width=80)
    assert code == 0, out
    row = next(line for line in out.splitlines() if line.startswith("shop.items "))
    return row.split()[1:7], out


def test_deliveries_count_a_replayed_dead_letter_once_and_say_the_replay(
    tmp_path: Path,
) -> None:
    """Review: after `replay --signature` of 129 dead letters and `run`, skipped rose by 129
    (the dead first deliveries, settled) and delivered and skipped again by the replays: 129
    versions made 258 outcomes, more than the events in the log."""
    landscape = erp_to_shop(tmp_path / "estate", "sku,v,name\nA1,1,BAD\nA2,1,Pen\n")
    shop = SandboxTarget(landscape.parent / "shop.db")
    shop.set_faults(Faults(reject_when="name == 'BAD'"))
    run(landscape)
    assert figures(landscape)[0] == ["0", "0", "0", "1", "1", "0"]
    store = open_store(f"sqlite:///{landscape.parent / 'mastersync.db'}")
    try:
        with store.unit_of_work(write=False) as uow:
            [dead] = uow.exceptions(ExceptionFilter(kind="dead_letter"))
    finally:
        store.close()
    shop.set_faults(Faults())
    code, out = cli(
        "replay", "-s", "shop.items", "--signature", dead.signature, landscape=landscape
    )
    assert code == 0, out
    # Queued: A1's version is pending again, not skipped (its first delivery) and pending.
    row, out = figures(landscape)
    assert row == ["0", "1", "0", "0", "1", "0"]
    assert "shop.items: 1 sent again by replays, 1 of them still open" in out
    run(landscape)
    row, out = figures(landscape)
    assert row == ["0", "0", "0", "0", "2", "0"]  # two events, two versions delivered
    assert "shop.items: 1 sent again by replays\n" in out


def test_an_unknown_event_or_one_of_another_domain_is_an_error_naming_it(
    tmp_path: Path,
) -> None:
    """Review: `replay -s shop.items --event evt_nope --dry-run` said "0 event(s) of item
    selected" and exited 0, where an unknown `--master erp:NOPE` is an error (exit 1); an
    event of a domain the subscription does not carry selected nothing as quietly."""
    landscape = erp_to_shop(tmp_path / "estate", "sku,v,name\nA1,1,Pen\n")
    items = "fields: {sku: sku, name: name}}\n"
    customers = (
        "      customer: {key: no, version: {from: v, kind: counter}, fields: {name: name}}\n"
    )
    landscape.write_text(ERP_TO_SHOP.replace(items, items + customers))
    (tmp_path / "customers.csv").write_text("no,v,name\nC1,1,Acme\n")
    ingest_customers = ("ingest", "-s", "erp", "-d", "customer", str(tmp_path / "customers.csv"))
    code, out = cli(*ingest_customers, landscape=landscape)
    assert code == 0, out
    store = open_store(f"sqlite:///{landscape.parent / 'mastersync.db'}")
    try:
        with store.unit_of_work(write=False) as uow:
            [item] = uow.events(uow.find_master("item", "erp", "A1") or "")
            [customer] = uow.events(uow.find_master("customer", "erp", "C1") or "")
        for dry_run in (["--dry-run"], []):
            replay = ("replay", "-s", "shop.items", *dry_run, "--event")
            code, out = cli(*replay, "evt_nope", landscape=landscape)
            assert code == 1, out
            assert "error: unknown event 'evt_nope' (no event in the outbox has that id)" in out
            code, out = cli(*replay, customer.event_id, landscape=landscape)
            assert code == 1, out
            assert (
                f"error: event {customer.event_id!r} is of domain customer; subscription "
                "shop.items carries item" in out
            )
            assert "selected" not in out
        with store.unit_of_work(write=False) as uow:
            assert uow.open_deliveries(["shop.items"]) == 0  # nothing queued
        # The subscription's own event, as before.
        code, out = cli("replay", "-s", "shop.items", "--event", item.event_id, landscape=landscape)
        assert code == 0 and "1 event(s) of item selected for shop.items" in out, out
        # A master id no record has, or a record of another domain: the same (review: "0
        # event(s) selected", exit 0, where SYSTEM:KEY was looked up and refused).
        for master, said in (
            ("itm_nope", "error: no golden record 'itm_nope'"),
            (
                customer.master_id,
                f"error: {customer.master_id} is a customer record; subscription shop.items "
                "carries item",
            ),
        ):
            code, out = cli("replay", "-s", "shop.items", "--master", master, landscape=landscape)
            assert code == 1 and said in out and "selected" not in out, out
    finally:
        store.close()
