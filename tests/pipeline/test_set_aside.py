"""A value the schema refuses in a field its system may not write is set aside; a natural
key's part never is (without it the record could identify another one)."""

from __future__ import annotations

from typing import Any

from mastersync.domain.landscape.model import Landscape
from mastersync.domain.landscape.policy import compile_landscape
from mastersync.pipeline.ingest import Ingestor
from mastersync.ports.connector import SourceRecord
from mastersync.ports.store import Store


def _system(key: Any) -> dict[str, Any]:
    return {
        "kind": "erp",
        "inbound": {
            "price": {
                "key": key,
                "version": {"from": "v", "kind": "counter"},
                "fields": {
                    "item": "item",
                    "price_list": "list",
                    "currency": {"const": "EUR"},
                    "uom": {"const": "EA"},
                    "amount": {"from": "amount", "number": True},
                    "valid_from": {"from": "vf", "optional": True},
                },
            }
        },
    }


LANDSCAPE = {
    "name": "prices",
    "systems": {
        "erp": _system({"concat": ["item", "list", "vf"], "sep": "|"}),
        "shop": {**_system("id"), "kind": "ecommerce"},
    },
    "domains": {
        "price": {
            "ownership": {"valid_from": ["erp"]},
            "survivorship": {"default": {"rule": "source_priority", "systems": ["shop", "erp"]}},
        }
    },
}


def test_a_malformed_part_of_a_natural_key_refuses_its_record(store: Store) -> None:
    ingest = Ingestor(store, compile_landscape(Landscape.model_validate(LANDSCAPE))).ingest
    base = {"item": "itm_A", "list": "L", "v": 1}
    ingest("erp", "price", [SourceRecord({**base, "vf": "", "amount": "10"})])
    ingest("erp", "price", [SourceRecord({**base, "vf": "2027-01-01", "amount": "12"})])
    # The shop's 2027 price, its valid_from (the ERP's field) mistyped: set aside, the
    # key read it as empty and the shop's 99 went onto the open-ended price.
    report = ingest(
        "shop", "price", [SourceRecord({**base, "id": "S1", "vf": "2027-13-01", "amount": "99"})]
    )
    assert report.outcomes["rejected"] == 1
    assert [f for _, f, _, _ in report.tally.rejects] == ["valid_from"]
    with store.unit_of_work(write=False) as uow:
        assert uow.find_master("price", "shop", "S1") is None
        open_ended = uow.find_master("price", "erp", "itm_A|L")
        assert open_ended is not None
        golden = uow.golden(open_ended)
    assert golden is not None and golden.attributes["amount"] == "10"
