"""The demo, run the way the README runs it, and what it must show."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from mastersync.bootstrap import build_hub
from mastersync.cli import app
from mastersync.connectors.sandbox.target import SandboxTarget
from mastersync.ports.store import ExceptionFilter
from mastersync.sandbox.demo import write_data


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
