"""With a landscape and no Python code: items pulled from a SQL database, a 3PL's CSV
drop with a bad line, duplicates set aside, exports written for a partner."""

from __future__ import annotations

import csv
import json
import os
import time
from pathlib import Path

import sqlalchemy as sa
from typer.testing import CliRunner

from mastersync.cli import app

runner = CliRunner()

LANDSCAPE = """
name: hybrid
systems:
  legacy:
    kind: erp
    connector:
      type: sql
      url: sqlite:///legacy.db
      poll_every: 0.1
      read:
        item: {table: items, cursor: changed_seq, key: item_no}
    inbound:
      item:
        key: item_no
        version: {from: changed_seq, kind: counter}
        fields: {sku: item_no, name: title, gtin: {from: ean, optional: true}}
  tpl:
    kind: wms
    connector: {type: files, folder: drop, watch: {inventory: "stock*.csv"}, settle: 0}
    inbound:
      inventory:
        key: {concat: [sku, site], sep: "@"}
        fields:
          item: {from: sku, ref: {domain: item, system: legacy}}
          location: {from: site, ref: {domain: location, by: code}}
          on_hand: {from: qty, number: true}
  partner:
    kind: files
    connector:
      type: files
      exports: {catalog: {folder: exports, format: csv, columns: [sku, title, ean]}}
    outbound:
      catalog:
        domain: item
        mapping: {fields: {sku: sku, title: name, ean: gtin}}
  erp:
    kind: erp
    inbound:
      location: {key: code, fields: {code: code, name: name}}
"""


def cli(*args: str) -> str:
    result = runner.invoke(app, list(args), env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    return result.output


def test_sql_pull_csv_drop_and_file_export(tmp_path: Path) -> None:
    landscape = tmp_path / "landscape.yaml"
    landscape.write_text(LANDSCAPE)
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'legacy.db'}")
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TABLE items (item_no TEXT PRIMARY KEY, changed_seq INT, title TEXT, ean TEXT)"
        )
        conn.exec_driver_sql(
            "INSERT INTO items VALUES ('A1', 1, 'Pen', '4006381333931'), "
            "('A2', 2, 'Ink', NULL), ('A3', 2, 'Pad', NULL)"
        )
    (tmp_path / "sites.csv").write_text("code,name\nDC1,Kassel\n")
    cli("-l", str(landscape), "ingest", "-s", "erp", "-d", "location", str(tmp_path / "sites.csv"))
    out = cli("-l", str(landscape), "run", "--until-idle", "--timeout", "60")
    assert "delivered 3" in out
    # Then the 3PL's stock file (after the items it counts: a row for an item not there
    # yet would be parked until it arrives).
    drop = tmp_path / "drop"
    drop.mkdir()
    (drop / "stock_1.csv").write_text("sku,site,qty\nA1,DC1,10\nA2,DC1,abc\nA9,DC1,1\n")
    (drop / "stock_1_again.csv").write_text((drop / "stock_1.csv").read_text())
    old = time.time() - 10
    os.utime(drop / "stock_1_again.csv", (old + 1, old + 1))
    os.utime(drop / "stock_1.csv", (old, old))

    cli("-l", str(landscape), "run", "--until-idle", "--timeout", "60")
    out = cli("-l", str(landscape), "get", "item", "legacy:A1", "--json")
    assert json.loads(out)["attributes"]["name"] == "Pen"
    # The 3PL file: one row in, one not a number, one for an item nobody has; a reject file
    # beside the archived file says which lines and why. The same content again is set aside.
    archived = next((tmp_path / "drop" / "archive").rglob("stock_1.csv"))
    reject_file = archived.with_name("stock_1.csv.rejects.csv")
    rejects = list(csv.reader(reject_file.read_text().splitlines()))
    assert rejects[0] == ["line", "field", "rule", "message"]
    assert {(r[0], r[1], r[2]) for r in rejects[1:]} == {
        ("stock_1.csv:3", "on_hand", "number"),
        ("stock_1.csv:4", "item", "reference"),
    }
    assert (tmp_path / "drop" / "duplicates" / "stock_1_again.csv").exists()
    # The partner gets a CSV export with the columns it asked for.
    exported = list((tmp_path / "exports").glob("catalog-*.csv"))
    rows = [r for f in exported for r in csv.DictReader(f.read_text().splitlines())]
    assert {r["sku"] for r in rows} == {"A1", "A2", "A3"}
    assert list(rows[0])[:3] == ["sku", "title", "ean"]

    # A change in the database: only it is read again, and it reaches the partner.
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "UPDATE items SET title = 'Pen blue', changed_seq = 3 WHERE item_no = 'A1'"
        )
    out = cli("-l", str(landscape), "run", "--until-idle", "--timeout", "60")
    assert "delivered 1" in out
    out = cli("-l", str(landscape), "get", "item", "legacy:A1", "--json")
    assert json.loads(out)["attributes"]["name"] == "Pen blue"
    engine.dispose()


def test_connectors_list_and_check(tmp_path: Path) -> None:
    landscape = tmp_path / "landscape.yaml"
    landscape.write_text(LANDSCAPE)
    out = cli("connectors", "list")
    for name in ("edi", "files", "rest", "sandbox", "sql", "webhook"):
        assert name in out
    sa.create_engine(f"sqlite:///{tmp_path / 'legacy.db'}").dispose()
    result = runner.invoke(app, ["-l", str(landscape), "check", "legacy"], env={"COLUMNS": "200"})
    assert result.exit_code == 1
    assert "read item: table items does not exist" in result.output
    bad = tmp_path / "bad.yaml"
    bad.write_text(LANDSCAPE.replace("poll_every: 0.1", "poll_evry: 0.1"))
    result = runner.invoke(app, ["-l", str(bad), "check"], env={"COLUMNS": "200"})
    assert result.exit_code == 1
    assert "systems.legacy.connector.poll_evry" in result.output
