"""Records that reference something not there yet are parked, and get in by themselves once
it arrives (a stock row before its location), each parked record on its own backoff."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from typer.testing import CliRunner

from mastersync.bootstrap import build_hub
from mastersync.cli import app
from mastersync.pipeline.exceptions import PARKED_MAX_WAIT, parked_wait
from mastersync.ports.store import ExceptionFilter

runner = CliRunner()

LANDSCAPE = """
name: parked
systems:
  erp:
    kind: erp
    inbound:
      item: {key: sku, fields: {sku: sku, name: name}}
      location: {key: code, fields: {code: code, name: name}}
  wms:
    kind: wms
    inbound:
      inventory:
        key: {concat: [sku, site], sep: "@"}
        fields:
          item: {from: sku, ref: {domain: item, system: erp}}
          location: {from: site, ref: {domain: location, by: code}}
          on_hand: {from: qty, number: true}
"""


def cli(*args: str) -> str:
    result = runner.invoke(app, list(args), env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    return result.output


def test_parked_records_get_in_once_their_references_arrive(tmp_path: Path) -> None:
    landscape = tmp_path / "landscape.yaml"
    landscape.write_text(LANDSCAPE)
    (tmp_path / "items.csv").write_text("sku,name\nA1,Pen\n")
    (tmp_path / "stock.csv").write_text("sku,site,qty\nA1,DC1,5\nA1,DC2,6\n")
    (tmp_path / "sites.csv").write_text("code,name\nDC1,Kassel\n")
    lands = ("-l", str(landscape))
    cli(*lands, "ingest", "-s", "erp", "-d", "item", str(tmp_path / "items.csv"))
    cli(*lands, "ingest", "-s", "wms", "-d", "inventory", str(tmp_path / "stock.csv"))
    assert "2 inbox entries" in cli(*lands, "exceptions", "list")
    cli(*lands, "ingest", "-s", "erp", "-d", "location", str(tmp_path / "sites.csv"))

    hub = build_hub(landscape)
    try:
        # Not due yet: a parked record waits its backoff before it is tried again (judged
        # from when it was parked, not from a busy machine's wall clock).
        with hub.store.unit_of_work(write=False) as uow:
            parked_at = max(e.created_at for e in uow.exceptions(ExceptionFilter()))
        parked = dt.datetime.fromisoformat(parked_at.replace("Z", "+00:00"))
        report = hub.inbox.retry_parked(parked)
        assert report.resolved == []
        later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=5)
        report = hub.inbox.retry_parked(later)
        # DC1 arrived: its stock row got in; DC2 still has no location and stays parked.
        assert len(report.resolved) == 1
        assert len(report.still_failing) == 1
    finally:
        hub.close()
    record = json.loads(cli(*lands, "get", "inventory", "wms:A1@DC1", "--json"))
    assert record["attributes"]["on_hand"] == "5"  # amounts are exact decimals
    out = cli(*lands, "exceptions", "list")
    assert "1 inbox entries" in out
    assert "DC2" in out


ERP_AND_PIM = """
name: parked
systems:
  erp:
    kind: erp
    inbound:
      item: {key: sku, fields: {sku: sku, name: name, gtin: gtin}}
      supplier: {key: code, fields: {name: name}}
      customer: {key: no, fields: {name: name, credit_limit.amount: {from: limit, number: true}}}
  pim:
    kind: pim
    inbound:
      item:
        key: id
        fields:
          gtin: gtin
          description: text
          primary_supplier: {from: supp, ref: {domain: supplier, system: erp}}
domains:
  item:
    natural_keys: [[gtin]]
    ownership: {name: [erp], description: [pim], primary_supplier: [pim]}
    quality: [{field: name, rule: required}]
"""


def test_a_record_waiting_for_a_field_only_another_system_writes_gets_in_by_itself(
    tmp_path: Path,
) -> None:
    """A PIM item before the ERP's (which names it) failed 'name is required' and stayed
    failed after the ERP's arrived: which came first decided the golden record."""
    landscape = tmp_path / "landscape.yaml"
    landscape.write_text(ERP_AND_PIM)
    (tmp_path / "pim.csv").write_text("id,gtin,text,supp\nP1,4006381333931,Powder-free gloves,\n")
    (tmp_path / "erp.csv").write_text("sku,name,gtin\nA1,Gloves,4006381333931\n")
    lands = ("-l", str(landscape))
    cli(*lands, "ingest", "-s", "pim", "-d", "item", str(tmp_path / "pim.csv"))
    assert "name is required" in cli(*lands, "exceptions", "list")
    cli(*lands, "ingest", "-s", "erp", "-d", "item", str(tmp_path / "erp.csv"))
    hub = build_hub(landscape)
    try:
        report = hub.inbox.retry_parked(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=5))
        assert len(report.resolved) == 1
    finally:
        hub.close()
    record = json.loads(cli(*lands, "get", "item", "erp:A1", "--json"))
    assert record["attributes"]["description"] == "Powder-free gloves"
    assert "0 inbox entries" in cli(*lands, "exceptions", "list")


def test_a_record_parked_twice_gets_in_with_its_newest_payload(tmp_path: Path) -> None:
    """Version 1 of P1 waited for a name, version 2 for its supplier: retried together,
    the oldest payload was applied and settled the newer one's entry as superseded."""
    landscape = tmp_path / "landscape.yaml"
    landscape.write_text(ERP_AND_PIM)
    lands = ("-l", str(landscape))

    def ingest(system: str, domain: str, name: str, text: str) -> None:
        (tmp_path / name).write_text(text)
        cli(*lands, "ingest", "-s", system, "-d", domain, str(tmp_path / name))

    ingest("pim", "item", "p1.csv", "id,gtin,text,supp\nP1,4006381333931,old text,\n")
    ingest("pim", "item", "p2.csv", "id,gtin,text,supp\nP1,4006381333931,NEW text,S9\n")
    ingest("erp", "item", "e.csv", "sku,name,gtin\nA1,Gloves,4006381333931\n")
    ingest("erp", "supplier", "s.csv", "code,name\nS9,Acme\n")
    # A customer without the currency of its credit limit: the record itself lacks it, no
    # other system brings it, so it is not retried on its own (it was, for ever).
    ingest("erp", "customer", "c.csv", "no,name,limit\nC1,Acme,100\n")
    hub = build_hub(landscape)
    try:
        report = hub.inbox.retry_parked(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=60))
        with hub.store.unit_of_work(write=False) as uow:
            [left] = uow.exceptions(ExceptionFilter())
    finally:
        hub.close()
    assert len(report.resolved) == 2 and report.still_failing == []
    assert (left.domain, left.field, left.attempts) == ("customer", "credit_limit.currency", 1)
    record = json.loads(cli(*lands, "get", "item", "erp:A1", "--json"))
    assert record["attributes"]["description"] == "NEW text"
    assert record["attributes"]["primary_supplier"].startswith("sup_")


def test_backoff_grows_and_is_capped() -> None:
    waits = [parked_wait(n) for n in range(1, 30)]
    assert waits == sorted(waits)
    assert waits[0] == 0.5
    assert waits[-1] == PARKED_MAX_WAIT
