"""Tryton and the Akeneo PIM REST API (akeneo-mock-server), live, through the `akeneo`
connector: an item created in Tryton is created in Akeneo; a description enriched in Akeneo
comes back to the golden item, and Akeneo never overwrites what Tryton owns. While the hub
runs, Akeneo's events bring its edits and deletions (no listing involved)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from mastersync.bootstrap import build_hub, open_connector
from mastersync.cli import app
from mastersync.connectors.akeneo.receiver import DELETED_RULE
from mastersync.ports.store import ExceptionFilter
from tests.e2e.real.conftest import Akeneo, Tryton
from tests.e2e.real.test_tryton import decimal, new_product
from tests.e2e.real.testbed.common import free_port

pytestmark = pytest.mark.xdist_group("tryton")

runner = CliRunner()
EVENTS_SECRET = "akeneo-events-secret-0001"
SUBSCRIPTION = "/subscribers/mastersync/subscriptions/mastersync-products"


def cli(landscape: Path, env: dict[str, str], *args: str) -> str:
    result = runner.invoke(app, ["-l", str(landscape), *args], env={"COLUMNS": "200", **env})
    assert result.exit_code == 0, result.output
    return result.output


def catalogue(akeneo: Akeneo) -> None:
    """Attributes and a family, as a PIM administrator sets them up: the name per locale,
    the description per locale and channel."""
    akeneo.post("/attributes", {"code": "sku", "type": "pim_catalog_identifier", "group": "other"})
    for code, kind, scopable in (
        ("name", "pim_catalog_text", False),
        ("description", "pim_catalog_textarea", True),
    ):
        akeneo.post(
            "/attributes",
            {
                "code": code,
                "type": kind,
                "group": "other",
                "localizable": True,
                "scopable": scopable,
            },
        )
    akeneo.post(
        "/families",
        {"code": "mro", "attribute_as_label": "name", "attributes": ["sku", "name", "description"]},
    )


def setup(tryton: Tryton, akeneo: Akeneo, landscape: Path) -> tuple[Path, dict[str, str], int]:
    """The landscape file, its environment (the hub's receiver on a free port), the port."""
    catalogue(akeneo)
    port = free_port()
    env = {
        **tryton.env,
        **akeneo.env,
        "AKENEO_EVENTS_URL": f"http://127.0.0.1:{port}/hooks/akeneo",
        "AKENEO_EVENTS_SECRET": EVENTS_SECRET,
    }
    return landscape.parent / "tryton-akeneo.yaml", env, port


def golden_item(pim: Path, env: dict[str, str], key: str) -> dict[str, Any]:
    record: dict[str, Any] = json.loads(cli(pim, env, "get", "item", key, "--json"))
    return record


def wait_for(what: str, check: Callable[[], Any], hub_log: Path, seconds: float = 60) -> Any:
    """Poll until ``check()`` gives something truthy; fail with the hub's log if it never
    does (a deadline against hanging, not a measure of speed)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    tail = "\n".join(hub_log.read_text(errors="replace").splitlines()[-40:])
    pytest.fail(f"{what}: not seen within {seconds:.0f} s; the hub's log:\n{tail}")


@contextmanager
def running_hub(pim: Path, env: dict[str, str], port: int) -> Iterator[Path]:
    """`mastersync run --listen` in the background, as an operator runs it; its log file."""
    log = pim.parent / "hub.log"
    with log.open("wb") as out:
        hub = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mastersync.cli",
                "-l",
                str(pim),
                "run",
                "--listen",
                f"127.0.0.1:{port}",
            ],
            cwd=pim.parent,
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            yield log
        finally:
            hub.send_signal(signal.SIGTERM)
            try:
                hub.wait(timeout=60)
            except subprocess.TimeoutExpired:
                hub.kill()
                hub.wait()
    assert hub.returncode == 0, log.read_text(errors="replace")[-3000:]


def listed(pim: Path, env: dict[str, str]) -> bool:
    """Whether the hub finished its full listing of Akeneo (its cursor says when)."""
    hub = build_hub(pim)
    try:
        with hub.store.unit_of_work(write=False) as uow:
            cursor = uow.cursor_state("in:akeneo.item")
    finally:
        hub.close()
    return bool(cursor and json.loads(cursor).get("listed"))


def test_an_item_from_tryton_is_created_in_akeneo_and_enriched_there(
    tryton: Tryton, akeneo: Akeneo, landscape: Path
) -> None:
    pim, env, port = setup(tryton, akeneo, landscape)

    def run() -> None:
        out = cli(
            pim, env, "run", "--until-idle", "--timeout", "120", "--listen", f"127.0.0.1:{port}"
        )
        assert "dead 0" in out, out + cli(pim, env, "exceptions", "list")

    def item() -> dict[str, Any]:
        return golden_item(pim, env, f"tryton:{product}")

    product = new_product(tryton, "GL-500", "Nitrile gloves M", "12.50", "7.10")
    run()
    created = akeneo.product("GL-500")
    assert created is not None
    assert created["family"] == "mro"
    assert created["values"]["name"] == [
        {"locale": "en_US", "scope": None, "data": "Nitrile gloves M"}
    ]
    # The hub subscribed to Akeneo's product events, signed with its secret.
    subscription = akeneo.platform(SUBSCRIPTION)
    assert subscription["config"]["url"] == env["AKENEO_EVENTS_URL"]
    assert subscription["send_product_identifier"] is True

    # In the PIM while the hub is down (its events are lost: the listing at the next start
    # finds them): a description (the PIM's), and a renamed product (not the PIM's to do).
    akeneo.patch(
        "GL-500",
        {
            "identifier": "GL-500",
            "values": {
                "name": [{"locale": "en_US", "scope": None, "data": "Gloves, blue"}],
                "description": [
                    {"locale": "en_US", "scope": "ecommerce", "data": "Powder-free, 100 per box"},
                    {"locale": "de_DE", "scope": "ecommerce", "data": "Puderfrei, 100 Stück"},
                ],
            },
        },
    )
    run()
    record = item()
    assert record["attributes"]["description"] == "Powder-free, 100 per box"
    assert record["attributes"]["name"] == "Nitrile gloves M"
    assert record["attributes"]["list_price"] == "12.5"
    assert {x["system"] for x in record["xrefs"]} == {"tryton", "akeneo"}
    hub = build_hub(pim)
    try:
        with hub.store.unit_of_work(write=False) as uow:
            violations = uow.exceptions(ExceptionFilter(kind="ownership_violation", status=None))
    finally:
        hub.close()
    # Recorded; resolved once Akeneo holds Tryton's name again (if its event came in time).
    assert [(v.system, v.field) for v in violations] == [("akeneo", "name")]
    # The golden record's new version went back to Akeneo with Tryton's name.
    enriched = akeneo.product("GL-500")
    assert enriched is not None
    assert enriched["values"]["name"][0]["data"] == "Nitrile gloves M"

    # A rename in Tryton reaches Akeneo; the description stays, in both locales.
    template = tryton.search_read("product.product", [["id", "=", product]], ["template"])[0]
    tryton.write(
        "product.template",
        [template["template"]],
        {"name": "Nitrile gloves M, blue", "list_price": decimal("12.90")},
    )
    run()
    renamed = akeneo.product("GL-500")
    assert renamed is not None
    assert renamed["values"]["name"][0]["data"] == "Nitrile gloves M, blue"
    assert len(renamed["values"]["description"]) == 2
    assert item()["attributes"]["description"] == "Powder-free, 100 per box"
    assert item()["attributes"]["list_price"] == "12.9"


def test_an_edit_in_akeneo_arrives_as_an_event_while_the_hub_runs(
    tryton: Tryton, akeneo: Akeneo, landscape: Path
) -> None:
    pim, env, port = setup(tryton, akeneo, landscape)
    product = new_product(tryton, "GL-600", "Vinyl gloves L", "9.90", "4.20")
    with running_hub(pim, env, port) as log:
        wait_for("the product created in Akeneo", lambda: akeneo.product("GL-600"), log)
        wait_for("the subscription", lambda: akeneo.platform(SUBSCRIPTION), log)
        # The listing at the start is over and the next is an hour away: what comes now
        # can only come as an event.
        wait_for("the first full listing", lambda: listed(pim, env), log)
        akeneo.patch(
            "GL-600",
            {
                "identifier": "GL-600",
                "values": {
                    "description": [
                        {"locale": "en_US", "scope": "ecommerce", "data": "Latex-free, 50 pairs"}
                    ]
                },
            },
        )
        record = wait_for(
            "the description in the golden item",
            lambda: (
                (r := golden_item(pim, env, f"tryton:{product}"))["attributes"].get("description")
                and r
            ),
            log,
        )
    assert record["attributes"]["description"] == "Latex-free, 50 pairs"
    assert record["attributes"]["name"] == "Vinyl gloves L"
    hub = build_hub(pim)
    try:
        with hub.store.unit_of_work(write=False) as uow:
            batches = uow.batches(limit=200)
    finally:
        hub.close()
    pushed = [b for b in batches if b.system == "akeneo" and b.source.startswith("webhook ")]
    assert any(b.counts.get("accepted") for b in pushed), batches
    delivered = akeneo.platform("/logs")["items"]
    assert any(
        d["event_type"] == "com.akeneo.pim.v1.product.updated" and d["status_code"] == 200
        for d in delivered
    ), delivered


def test_a_product_deleted_in_akeneo_is_recorded_from_its_event(
    tryton: Tryton, akeneo: Akeneo, landscape: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pim, env, port = setup(tryton, akeneo, landscape)
    product = new_product(tryton, "GL-700", "Cut-resistant gloves", "19.90", "11.00")
    with running_hub(pim, env, port) as log:
        wait_for("the product created in Akeneo", lambda: akeneo.product("GL-700"), log)
        wait_for("the first full listing", lambda: listed(pim, env), log)
        akeneo.delete("GL-700")

        def deletions() -> list[Any]:
            hub = build_hub(pim)
            try:
                with hub.store.unit_of_work(write=False) as uow:
                    return [
                        e
                        for e in uow.exceptions(ExceptionFilter(system="akeneo"))
                        if e.rule == DELETED_RULE
                    ]
            finally:
                hub.close()

        [entry] = wait_for("the deletion in the exceptions inbox", deletions, log)
    assert entry.domain == "item"
    assert "GL-700" in entry.message
    assert entry.payload["raw"]["type"] == "com.akeneo.pim.v1.product.deleted"
    # Nothing else changed: the golden item and its Akeneo cross-reference are still there.
    record = golden_item(pim, env, f"tryton:{product}")
    assert {x["system"] for x in record["xrefs"]} == {"tryton", "akeneo"}
    assert akeneo.product("GL-700") is None
    # Reconciliation's view agrees: the full listing no longer has it.
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    hub = build_hub(pim)
    connector = open_connector(hub.landscape, "akeneo")
    try:
        assert "GL-700" not in dict(connector.read_state("item"))
    finally:
        connector.client.close()
        hub.close()
