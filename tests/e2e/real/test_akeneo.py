"""Tryton and the Akeneo PIM REST API (akeneo-mock-server), live: an item created in Tryton
is created in Akeneo; a description enriched in Akeneo comes back to the golden item, and
Akeneo never overwrites what Tryton owns."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from mastersync.bootstrap import build_hub
from mastersync.cli import app
from mastersync.ports.store import ExceptionFilter
from tests.e2e.real.conftest import Akeneo, Tryton
from tests.e2e.real.test_tryton import decimal, new_product

pytestmark = pytest.mark.xdist_group("tryton")

runner = CliRunner()


def cli(landscape: Path, env: dict[str, str], *args: str) -> str:
    result = runner.invoke(app, ["-l", str(landscape), *args], env={"COLUMNS": "200", **env})
    assert result.exit_code == 0, result.output
    return result.output


def test_an_item_from_tryton_is_created_in_akeneo_and_enriched_there(
    tryton: Tryton, akeneo: Akeneo, landscape: Path
) -> None:
    pim = landscape.parent / "tryton-akeneo.yaml"
    env = {**tryton.env, **akeneo.env}

    def run() -> None:
        out = cli(pim, env, "run", "--until-idle", "--timeout", "120")
        assert "dead 0" in out, out + cli(pim, env, "exceptions", "list")

    def item() -> dict[str, Any]:
        record: dict[str, Any] = json.loads(
            cli(pim, env, "get", "item", "tryton:" + str(product), "--json")
        )
        return record

    product = new_product(tryton, "GL-500", "Nitrile gloves M", "12.50", "7.10")
    run()
    created = akeneo.product("GL-500")
    assert created is not None
    assert created["values"]["name"][0]["data"] == "Nitrile gloves M"

    # In the PIM: a description (the PIM's), and a renamed product (not the PIM's to do).
    akeneo.patch(
        "GL-500",
        {
            "identifier": "GL-500",
            "values": {
                "name": [{"locale": "en_US", "scope": None, "data": "Gloves, blue"}],
                "description": [
                    {"locale": "en_US", "scope": None, "data": "Powder-free, 100 per box"}
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
            violations = uow.exceptions(ExceptionFilter(kind="ownership_violation"))
    finally:
        hub.close()
    assert [(v.system, v.field) for v in violations] == [("akeneo", "name")]
    # The golden record's new version went back to Akeneo with Tryton's name.
    enriched = akeneo.product("GL-500")
    assert enriched is not None
    assert enriched["values"]["name"][0]["data"] == "Nitrile gloves M"

    # A rename in Tryton reaches Akeneo; the description stays.
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
    assert renamed["values"]["description"][0]["data"] == "Powder-free, 100 per box"
    assert item()["attributes"]["description"] == "Powder-free, 100 per box"
