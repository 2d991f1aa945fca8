"""`mastersync reconcile` end to end: a sandbox shop in sync, drifted, repaired."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mastersync.cli import app

runner = CliRunner()

LANDSCAPE = """
name: cli
systems:
  erp:
    kind: erp
    connector: {type: files}
    inbound:
      item:
        key: sku
        version: {from: v, kind: counter}
        fields: {sku: sku, name: name, list_price: {from: price, number: true}}
  shop:
    kind: ecommerce
    connector: {type: sandbox, database: shop.db}
    delivery: {backoff: {initial: 20ms, max: 100ms}}
    outbound:
      items:
        domain: item
        mapping: {fields: {handle: sku, title: name, price: list_price}}
"""


def cli(landscape: Path, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["-l", str(landscape), *args], env={"COLUMNS": "200"})
    return result.exit_code, result.output


@pytest.fixture
def landscape(tmp_path: Path) -> Path:
    folder = tmp_path / "estate"
    folder.mkdir()
    path = folder / "landscape.yaml"
    path.write_text(LANDSCAPE)
    items = tmp_path / "items.csv"
    items.write_text("sku,v,name,price\nA1,1,Pen,1.50\nA2,1,Ink,2.00\nA3,1,Pad,3.10\n")
    code, out = cli(path, "ingest", "-s", "erp", "-d", "item", str(items))
    assert code == 0, out
    code, out = cli(path, "run", "--until-idle", "--timeout", "30")
    assert code == 0 and "delivered 3" in out, out
    return path


def shop(landscape: Path, sql: str) -> None:
    with sqlite3.connect(landscape.parent / "shop.db") as db:
        db.execute(sql)


def test_a_shop_in_sync_drifted_and_repaired(landscape: Path) -> None:
    code, out = cli(landscape, "reconcile", "--system", "shop", "--domain", "item")
    assert code == 0, out
    assert "shop item as target (shop.items)" in out and "no drift" in out

    shop(
        landscape,
        "UPDATE records SET payload = json_set(payload, '$.title', 'Pencil') "
        "WHERE json_extract(payload, '$.handle') = 'A1'",
    )
    shop(landscape, "DELETE FROM records WHERE json_extract(payload, '$.handle') = 'A2'")
    code, out = cli(landscape, "reconcile", "--system", "shop", "--domain", "item")
    assert code == 3, out  # drift, not repaired: non-zero for cron and CI
    assert "title Pen → Pencil" in out
    assert "gone from shop" in out and "2 record(s) drifted" in out

    code, out = cli(landscape, "reconcile", "--system", "shop", "--domain", "item", "--json")
    assert code == 3
    [run] = json.loads(out)["runs"]
    assert run["counts"]["mismatched"] == 1 and run["counts"]["missing"] == 1
    assert run["examples"]["mismatched"][0]["fields"] == [
        {"field": "title", "expected": "Pen", "actual": "Pencil"}
    ]

    code, out = cli(landscape, "reconcile", "--system", "shop", "--domain", "item", "--repair")
    assert code == 0, out
    assert "queued 2 re-deliveries as replay rpr_" in out
    code, out = cli(landscape, "run", "--until-idle", "--timeout", "30")
    assert code == 0 and "delivered 2" in out, out
    code, out = cli(landscape, "reconcile", "--system", "shop", "--domain", "item")
    assert code == 0 and "no drift" in out, out


def test_drift_no_repair_changes_still_exits_3_with_repair(landscape: Path) -> None:
    """Review: a record only the shop holds made `--repair` exit 0 at every run, so a cron
    job running with --repair never alerted; extras are reported, never deleted."""
    shop(
        landscape,
        "INSERT INTO records VALUES ('item', 'T-manual', 'none', 1, 1, "
        '\'{"handle": "X9", "title": "hand"}\', 0)',
    )
    for _ in range(2):
        code, out = cli(landscape, "reconcile", "--system", "shop", "--domain", "item", "--repair")
        assert code == 3, out
        assert "1 of them not repaired, see above" in out


def test_a_listing_entry_that_is_no_record_is_an_error_not_also_missing(landscape: Path) -> None:
    """Review: counted as an error and as missing, and a repair would have sent the record
    over whatever the consumer keeps at that key."""
    shop(
        landscape,
        "UPDATE records SET payload = '[1, 2]' WHERE json_extract(payload, '$.handle') = 'A1'",
    )
    code, out = cli(landscape, "reconcile", "--system", "shop", "--domain", "item", "--json")
    assert code == 3, out
    found = json.loads(out)
    assert (found["drift"], found["errors"]) == (0, 1)


def test_what_cannot_be_reconciled_is_refused_with_the_reason(landscape: Path) -> None:
    code, out = cli(landscape, "reconcile", "--system", "nope", "--domain", "item")
    assert code == 1 and "unknown system 'nope'" in out
    code, out = cli(
        landscape, "reconcile", "--system", "shop", "--domain", "item", "--role", "source"
    )
    assert code == 1 and "nothing to reconcile: shop has no inbound mapping for item" in out
    code, out = cli(landscape, "reconcile", "--system", "erp", "--domain", "item")
    assert code == 1 and "cannot list what erp holds" in out


def test_records_that_cannot_be_compared_are_not_called_drifted(landscape: Path) -> None:
    """A filter that cannot be evaluated made every record an error, and the summary said
    '3 record(s) drifted' (with --json counting them as drift)."""
    text = LANDSCAPE.replace("domain: item\n", "domain: item\n        filter: 'name > `1`'\n")
    landscape.write_text(text)
    code, out = cli(landscape, "reconcile", "--system", "shop", "--domain", "item")
    assert code == 3, out  # not clean: non-zero all the same
    assert "3 record(s) could not be compared" in out and "drifted" not in out
    code, out = cli(landscape, "reconcile", "--system", "shop", "--domain", "item", "--json")
    found = json.loads(out)
    assert (found["drift"], found["errors"]) == (0, 3)
    # --repair repairs drift; records it could not compare are still not clean.
    code, out = cli(landscape, "reconcile", "--system", "shop", "--domain", "item", "--repair")
    assert code == 3, out


def test_a_sandbox_shop_that_is_also_a_source_is_reconciled_as_a_target_only(
    landscape: Path,
) -> None:
    """In the demo the shop also sends records (from files): the default ran a source pass
    on its sandbox, which holds what the hub delivered, and reported every record missing
    from the hub (433 false drift entries) or not comparable."""
    text = LANDSCAPE.replace(
        "    delivery: {backoff",
        "    inbound:\n      item: {key: handle, version: {from: v, kind: counter}, "
        "fields: {sku: handle, name: title}}\n    delivery: {backoff",
    )
    landscape.write_text(text)
    code, out = cli(landscape, "reconcile", "--system", "shop", "--domain", "item")
    assert code == 0, out
    assert "shop item as target" in out and "as source" not in out
    code, out = cli(
        landscape, "reconcile", "--system", "shop", "--domain", "item", "--role", "source"
    )
    assert code == 1 and "holds only what the hub delivered to it" in out
