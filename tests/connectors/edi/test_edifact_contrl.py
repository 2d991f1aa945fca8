"""CONTRL reports on a received interchange: UCI, and UCM 7 or 4 with UCS/UCD pointers."""

from __future__ import annotations

from datetime import datetime

from mastersync.connectors.edi import build_contrl, parse_edifact

WHEN = datetime(2024, 5, 2, 8, 15)

RECEIVED = (
    "UNB+UNOA:3+SENDER:14+RECV:14+240501:1200+IC1'"
    "UNH+1+ORDERS:D:96A:UN:EAN008'BGM+220+PO1'UNT+3+1'"
    "UNH+2+ORDERS:D:96A:UN:EAN008'BGM+220+po2'FTX+AAA+++OK'UNT+9+2'"
    "UNH+3+ORDERS:D:96A:UN'UNT+2+4'"
    "UNZ+3+IC1'"
)


def _segments(text: str) -> list[str]:
    return [s.strip() for s in text.split("'") if s.strip()]


def test_contrl_accepts_good_messages_and_rejects_bad_ones() -> None:
    doc = parse_edifact(RECEIVED)
    assert [m.status for m in doc.messages] == ["A", "R", "R"]
    contrl = build_contrl(doc.interchanges[0], control_reference="CR1", created=WHEN)
    assert _segments(contrl) == [
        "UNA:+.?",  # the UNA's own space is stripped by the split above
        "UNB+UNOA:3+RECV:14+SENDER:14+240502:0815+CR1",
        "UNH+1+CONTRL:D:3:UN",
        "UCI+IC1+SENDER:14+RECV:14+7",
        "UCM+1+ORDERS:D:96A:UN:EAN008+7",
        "UCM+2+ORDERS:D:96A:UN:EAN008+4+29+UNT+1",
        "UCS+2",
        "UCD+21+2",
        "UCM+3+ORDERS:D:96A:UN+4+28+UNT+2",
        "UNT+8+1",
        "UNZ+1+CR1",
    ]
    assert parse_edifact(contrl).all_errors == []


def test_contrl_reports_interchange_and_group_errors() -> None:
    text = (
        "UNB+UNOC:3+S+R+240501:1200+IC1'"
        "UNG+ORDERS+AS:ZZ+AR:ZZ+240501:1200+G1+UN+D:96A'"
        "UNH+1+ORDERS:D:96A:UN'UNT+2+1'"
        "UNE+2+G1'"
        "UNZ+1+IC9'"
    )
    doc = parse_edifact(text)
    contrl = build_contrl(doc.interchanges[0], control_reference="CR2", created=WHEN)
    segs = _segments(contrl)
    assert "UCI+IC1+S+R+7+28+UNZ+2" in segs
    assert "UCF+G1+AS:ZZ+AR:ZZ+7+29+UNE+1" in segs
    assert "UCM+1+ORDERS:D:96A:UN+7" in segs
