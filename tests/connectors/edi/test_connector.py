"""The EDI connector's exports: bad records fail alone, control numbers count up."""

from __future__ import annotations

import asyncio
from pathlib import Path

from mastersync.connectors.edi import parse_edifact, parse_x12
from mastersync.connectors.edi.connector import ControlNumbers, EdiConnector, detect
from mastersync.connectors.edi.spec import EdiSettings
from mastersync.connectors.registry import ConnectorContext
from mastersync.domain.subscriptions import Operation
from mastersync.ports.outbound import DeliveryAck, DeliveryRequest, TerminalFailure


def _request(
    master: str, payload: dict[str, object], op: Operation = Operation.UPSERT
) -> DeliveryRequest:
    return DeliveryRequest(
        "acme.stock", "acme", "inventory", master, 1, op, f"{master}:1", None, payload, "t"
    )


def _connector(tmp_path: Path, message: str) -> EdiConnector:
    settings = EdiSettings.model_validate(
        {
            "type": "edi",
            "folder": "in",
            "domains": ["item"],
            "exports": {
                "stock": {
                    "folder": "out",
                    "message": message,
                    "sender_id": "DISTRIB",
                    "receiver_id": "ACME",
                }
            },
        }
    )
    return EdiConnector(settings, ConnectorContext("acme", tmp_path))


def test_a_bad_record_fails_alone_and_the_rest_is_written(tmp_path: Path) -> None:
    connector = _connector(tmp_path, "846")
    requests = [
        _request("m1", {"gtin": "4006381333931", "quantity": 5.0, "as_of": "2026-11-26T08:00:00"}),
        _request("m2", {"gtin": "4006381333932", "quantity": 1}),  # bad check digit
        _request("m3", {"gtin": "4012345000009", "quantity": 2, "active": True}),  # no EDI form
        _request("m4", {"gtin": "5901234123457"}, Operation.DEACTIVATE),
        _request("m5", {"gtin": "8712345678906", "quantity": 0}),
    ]
    results = asyncio.run(connector.send_batch(requests))
    assert [type(r) for r in results] == [
        DeliveryAck,
        TerminalFailure,
        TerminalFailure,
        DeliveryAck,
        DeliveryAck,
    ]
    assert "gtin" in str(results[1]) and "active" in str(results[2])
    assert isinstance(results[3], DeliveryAck) and results[3].response == {"written": False}
    [written] = (tmp_path / "out").glob("stock-*.x12")
    rows = parse_x12(written.read_text()).records("inventory")
    assert [(r["gtin"], r["quantity"]) for r in rows] == [
        ("4006381333931", "5"),
        ("8712345678906", "0"),
    ]
    assert rows[0]["as_of"] == "20261126"


def test_invrpt_export_and_control_numbers(tmp_path: Path) -> None:
    connector = _connector(tmp_path, "INVRPT")
    for _ in range(2):
        [ack] = asyncio.run(
            connector.send_batch([_request("m1", {"gtin": "4006381333931", "quantity": 3})])
        )
        assert isinstance(ack, DeliveryAck)
    files = sorted((tmp_path / "out").glob("stock-*.edi"))
    refs = [parse_edifact(f.read_text()).interchanges[0].control_reference for f in files]
    assert refs == ["1", "2"]
    assert parse_edifact(files[0].read_text()).records("inventory")[0]["quantity"] == "3"


def test_control_numbers_survive_restarts(tmp_path: Path) -> None:
    path = tmp_path / "numbers.json"
    assert [ControlNumbers(path).next("interchange") for _ in range(3)] == [1, 2, 3]
    assert ControlNumbers(path).next("group") == 1
    path.write_text('{"interchange": 999999999}')
    assert ControlNumbers(path).next("interchange") == 1


def test_standard_detected_from_the_first_characters() -> None:
    assert detect(b"\xef\xbb\xbf  ISA*00*") == "x12"
    assert detect(b"UNA:+.? 'UNB+UNOC") == "edifact"
    assert detect(b"UNB+UNOA:3") == "edifact"
    assert detect(b"sku,qty\n") is None
