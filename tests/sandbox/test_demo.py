"""The demo, run the way the README runs it, and what it must show."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mastersync.bootstrap import build_hub, resolve_store_url
from mastersync.cli import app
from mastersync.connectors.sandbox.target import SandboxTarget
from mastersync.landscape import load_landscape
from mastersync.ports.store import ExceptionFilter
from mastersync.sandbox.demo import write_data, write_landscape


def test_the_demo_loads_the_sandbox_estate(tmp_path: Path) -> None:
    folder = tmp_path / "demo"
    result = CliRunner().invoke(app, ["demo", "--dir", str(folder)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    out = result.output
    for heading in ("loaded", "summary per domain", "open exceptions by rule"):
        assert heading in out
    hub = build_hub(folder / "landscape.yaml", f"sqlite:///{folder / 'mastersync.db'}")
    with hub.store.unit_of_work(write=False) as uow:
        counts = {c.domain: c for c in uow.domain_counts()}
        by_rule = uow.exception_counts()
        violations = uow.exceptions(ExceptionFilter(kind="ownership_violation", limit=5))
    # Every domain has golden records; items gather records from four systems.
    assert set(counts) == {"item", "customer", "supplier", "location", "price", "inventory"}
    assert counts["item"].source_records > 3 * counts["item"].golden
    assert counts["location"].golden == 5
    assert counts["location"].source_records == 10
    # Every kind of fault the sandbox injects is caught and named.
    rules = {(kind, rule) for (_, kind, rule) in by_rule}
    assert {
        ("validation_error", "gtin_check_digit"),
        ("validation_error", "iban"),
        ("parse_error", "csv_columns"),
        ("ownership_violation", "ownership"),
        ("unknown_reference", "reference"),
        ("stale_update", "stale"),
        ("mapping_error", "number"),
        ("validation_error", "email"),
    } <= rules
    assert all(v.field == "credit_limit" and v.system == "crm" for v in violations)
    # A customer known to ERP, CRM and shop is one golden record with three cross-references.
    with hub.store.unit_of_work(write=False) as uow:
        golden = uow.list_golden("customer", limit=2000)
        linked = [g for g in golden if len({m.system for m in uow.members(g.master_id)}) == 3]
    assert linked, "no customer linked across ERP, CRM and shop"
    # Changes flowed to the CRM, the WMS and the shop; the shop refused dangerous goods.
    subs = {s.id: s.domain for s in hub.landscape.subscriptions.values()}
    with hub.store.unit_of_work(write=False) as uow:
        stats = {s.subscription: s for s in uow.delivery_stats(subs)}
        dead = uow.exceptions(ExceptionFilter(kind="dead_letter", limit=1000))
    assert set(stats) == {"crm.customers", "wms.items", "shop.items"}
    for s in stats.values():
        assert s.delivered > 100
        assert (s.lag, s.pending, s.retrying) == (0, 0, 0)
    assert stats["crm.customers"].dead == stats["wms.items"].dead == 0
    assert dead
    assert {e.system for e in dead} == {"shop"}
    assert all(e.rule == "rejected" and "Lithium" in str(e.payload["request"]) for e in dead)
    shop = SandboxTarget(folder / "targets" / "shop.db").records("item")
    wms = SandboxTarget(folder / "targets" / "wms.db").records("item")
    assert len(wms) > len(shop) > 500
    hub.close()


def test_generation_is_reproducible(tmp_path: Path) -> None:
    a = write_data(tmp_path / "a", seed=3, scale=0.05)
    b = write_data(tmp_path / "b", seed=3, scale=0.05)
    for left, right in zip(a, b, strict=True):
        assert left.path.read_bytes() == right.path.read_bytes()


def test_the_commands_the_demo_suggests_see_what_it_loaded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Run as the README runs it (a relative --dir): the store lands next to the landscape,
    where `MASTERSYNC_LANDSCAPE=<dir>/landscape.yaml mastersync ...` looks (it used to land
    in <dir>/<dir>/, and the suggested commands showed an empty hub)."""
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    result = runner.invoke(app, ["demo", "--dir", "demo", "--scale", "0.05"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "demo" / "mastersync.db").exists()
    assert not (tmp_path / "demo" / "demo").exists()
    env = {"MASTERSYNC_LANDSCAPE": "demo/landscape.yaml", "COLUMNS": "200"}
    shown = runner.invoke(app, ["get", "item", "erp:A100001"], env=env)
    assert shown.exit_code == 0 and "A100001" in shown.output, shown.output
    deliveries = runner.invoke(app, ["deliveries"], env=env)
    assert deliveries.exit_code == 0
    delivered = [
        line.split()[6] for line in deliveries.output.splitlines() if line.startswith("wms.items ")
    ]
    assert delivered and int(delivered[0]) > 0, deliveries.output


def test_a_relative_store_path_is_next_to_the_landscape_only_when_the_landscape_gives_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "estate"
    write_landscape(folder)
    landscape = load_landscape(folder / "landscape.yaml")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MASTERSYNC_STORE", raising=False)
    assert resolve_store_url(None, landscape) == f"sqlite:///{folder / 'mastersync.db'}"
    assert resolve_store_url("sqlite:///x.db", landscape) == f"sqlite:///{tmp_path / 'x.db'}"
    monkeypatch.setenv("MASTERSYNC_STORE", "sqlite:///y.db")
    assert resolve_store_url(None, landscape) == f"sqlite:///{tmp_path / 'y.db'}"


def test_the_starter_erp_mapping_reads_every_number_of_its_files_the_german_way(
    tmp_path: Path,
) -> None:
    """Review: prices were read as 1.234,50 but pack and break quantities with a decimal
    point, so a pallet of 1.200 became 1.2 and a price break from 1.000 pieces joined the
    break from 1 (and was lost), both accepted without a word."""
    write_landscape(tmp_path)
    landscape = load_landscape(tmp_path / "landscape.yaml")
    item = landscape.mapper("erp", "item").map(
        {
            "ITEM_NO": "A1",
            "CHANGE_NO": "1",
            "DESCRIPTION": "Box",
            "BASE_UOM": "ST",
            "STATUS": "A",
            "CASE_QTY": "1.000",
            "PALLET_QTY": "12,5",
            "LIST_PRICE": "1.234,50",
            **dict.fromkeys(("EAN", "CASE_EAN", "COST_PRICE", "VENDOR_NO", "ORIGIN", "HS_CODE")),
        }
    )
    levels = {p["level"]: p["quantity"] for p in item.values["pack_levels"]}
    assert (levels["case"], levels["pallet"]) == (1000, Decimal("12.5"))
    price = landscape.mapper("erp", "price").map(
        {
            "ITEM_NO": "A1",
            "PRICE_LIST": "LIST",
            "CURRENCY": "EUR",
            "UOM": "ST",
            "PRICE": "9,90",
            "MIN_QTY": "1.000",
            "VALID_FROM": "01.01.2026",
            "CHANGE_NO": "1",
        }
    )
    assert price.values["min_quantity"] == 1000
