"""The EDI connector's exports: bad records fail alone, control numbers count up."""

from __future__ import annotations

import asyncio
import dataclasses
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
    # The record the writer refused took no control number: the file is the partner's first.
    assert parse_x12(written.read_text()).interchanges[0].control_number == "000000001"
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


def _x12(sender: str, groups: int, control: int) -> str:
    isa = (
        f"ISA*00*{'':10}*00*{'':10}*ZZ*{sender:15}*ZZ*{'DISTRIB':15}*261127*1200*U*00401*"
        f"{control:09d}*0*P*>~\n"
    )
    body = "".join(
        f"GS*SC*{sender}*DISTRIB*20261127*1200*{g}*X*004010~\nST*832*0001~\nBCT*PC*C{g}~\n"
        f"LIN*1*EN*4006381333931~\nCTT*1~\nSE*5*0001~\nGE*1*{g}~\n"
        for g in range(1, groups + 1)
    )
    return isa + body + f"IEA*{groups}*{control:09d}~\n"


def test_an_interchange_no_997_can_answer_stops_neither_its_file_nor_the_folder(
    tmp_path: Path,
) -> None:
    # Review: a partner's 16-character sender id (its ISA 107 characters long) made the 997
    # unwritable, and the error stopped every claim of the folder, this file's and later
    # ones', at every poll.
    settings = EdiSettings.model_validate(
        {"type": "edi", "folder": "in", "domains": ["item"], "settle": 0}
    )
    connector = EdiConnector(settings, ConnectorContext("acme", tmp_path))
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a-long.x12").write_text(_x12("ACME-LONG-ID-16C", 1, 7))
    (folder / "b-good.x12").write_text(_x12("ACME", 2, 8))
    claims = connector.claim()
    assert {c.file.name for c in claims} == {"a-long.x12", "b-good.x12"}
    for claim in claims:
        list(claim.records())  # a file is acknowledged when the poller reads it
    [ack] = (tmp_path / "in" / "acks").glob("997-*.x12")
    first = parse_x12(ack.read_text()).interchanges[0]
    assert first.receiver_id == "ACME"
    # One group number per group acknowledged, and the next 997 goes on after them.
    (folder / "c-good.x12").write_text(_x12("ACME", 2, 9))
    for claim in connector.claim():
        list(claim.records())
    numbers = [
        [g.header.elements[5].value for g in parse_x12(f.read_text()).interchanges[0].groups]
        for f in sorted((tmp_path / "in" / "acks").glob("997-*.x12"))
    ]
    assert sorted(numbers) == [["1", "2"], ["3", "4"]]


def test_control_numbers_hand_out_runs(tmp_path: Path) -> None:
    numbers = ControlNumbers(tmp_path / "numbers.json")
    assert (numbers.next("group", 3), numbers.next("group")) == (1, 4)
    (tmp_path / "numbers.json").write_text('{"group": 999999998}')
    assert numbers.next("group", 3) == 1  # a run that would wrap starts again at 1
    assert numbers.next("group") == 4


def test_a_cleared_field_leaves_its_element_out_never_the_text_none(tmp_path: Path) -> None:
    """A field cleared at the hub comes as null, in an update (the hub holds the key) or not:
    the line has no such element (an 832 or PRICAT carries what is), and a value the message
    needs fails the record naming the field."""
    for message, suffix in (("832", "x12"), ("PRICAT", "edi")):
        connector = _connector(tmp_path / message, message)
        item = {"gtin": "4006381333931", "description": None, "price": "1.50", "currency": "EUR"}
        held = dataclasses.replace(_request("m1", item), target_key="m1")
        new = _request("m2", {**item, "gtin": "8712345678906", "price": None, "uom": None})
        results = asyncio.run(connector.send_batch([held, new]))
        assert all(isinstance(r, DeliveryAck) for r in results), results
        [written] = (tmp_path / message / "out").glob(f"stock-*.{suffix}")
        text = written.read_text()
        assert "None" not in text
        parse = parse_x12 if suffix == "x12" else parse_edifact
        rows = parse(text).records("item")
        assert [r["gtin"] for r in rows] == ["4006381333931", "8712345678906"]
        assert all(not r.get("description") for r in rows)
    stock = _connector(tmp_path / "846", "846")
    cleared = _request("m3", {"gtin": "4006381333931", "quantity": None})
    [failure] = asyncio.run(stock.send_batch([cleared]))
    assert isinstance(failure, TerminalFailure)
    assert "quantity" in str(failure)
