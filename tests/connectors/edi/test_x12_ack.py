"""One bad set among good ones: the good ones give records, the 997 rejects only the bad one."""

from __future__ import annotations

from datetime import datetime

from mastersync.connectors.edi import X12Delimiters, build_997, parse_x12
from tests.connectors.edi.builders import interchange

WHEN = datetime(2024, 5, 2, 8, 15)

MIXED = [
    "GS*SC*SENDER*RECEIVER*20240501*1200*7*X*004010",
    "ST*832*0001",
    "BCT*PC*C1",
    "LIN*1*UP*012345678905",
    "CTP**CAT*12.50*1*EA",
    "SE*5*0001",
    "ST*832*0002",  # bad: a lower-case tag, an unknown qualifier, and a wrong count
    "BCT*PC*C1",
    "LIN*1*U P*012345678912",
    "lin*2*UP*012345678929",
    "SE*9*0002",
    "ST*832*0003",
    "BCT*PC*C1",
    "LIN*1*EN*4006381333931",
    "CTP**CAT*abc*1*EA",  # a warning: accepted with errors
    "SE*5*0003",
    "GE*3*7",
    "IEA*1*000000001",
]


def _segments(text: str) -> list[list[str]]:
    return [line.rstrip("~").split("*") for line in text.strip().split("\n")]


def test_bad_set_rejected_good_sets_kept() -> None:
    doc = parse_x12(interchange(MIXED))
    first, bad, third = doc.sets
    assert [first.status, bad.status, third.status] == ["A", "R", "E"]
    assert [r["set_control"] for r in doc.records("item")] == ["0001", "0003"]
    assert [r["price"] for r in doc.records("price")] == ["12.50", "abc"]
    assert {(e.rule, e.segment_id, e.segment_position) for e in bad.errors} == {
        ("invalid_qualifier", "LIN", 3),
        ("invalid_segment_id", "lin", 4),
        ("segment_count", "SE", 5),
    }


def test_997_content() -> None:
    doc = parse_x12(interchange(MIXED))
    ack = build_997(doc.interchanges[0], interchange_control=42, group_control=900, created=WHEN)
    segs = _segments(ack)
    assert segs[0][5:9] == ["ZZ", "RECEIVER       ", "ZZ", "SENDER         "]
    assert segs[0][9:14] == ["240502", "0815", "U", "00401", "000000042"]
    assert segs[1] == ["GS", "FA", "RECEIVER", "SENDER", "20240502", "0815", "900", "X", "004010"]
    assert segs[2:] == [
        ["ST", "997", "0001"],
        ["AK1", "SC", "7"],
        ["AK2", "832", "0001"],
        ["AK5", "A"],
        ["AK2", "832", "0002"],
        ["AK3", "LIN", "3", "", "8"],
        ["AK4", "2", "", "7", "U P"],
        ["AK3", "lin", "4", "", "1"],
        ["AK5", "R", "5", "4"],
        ["AK2", "832", "0003"],
        ["AK3", "CTP", "4", "", "8"],
        ["AK4", "3", "", "6", "abc"],
        ["AK5", "E", "5"],
        ["AK9", "P", "3", "3", "2"],
        ["SE", "15", "0001"],
        ["GE", "1", "900"],
        ["IEA", "1", "000000042"],
    ]
    # The acknowledgement is itself a valid interchange.
    assert parse_x12(ack).all_errors == []


def test_997_for_group_errors_and_all_accepted() -> None:
    body = [*MIXED[:6], "GE*2*8", "IEA*1*000000001"]
    doc = parse_x12(interchange(body))
    ack = build_997(doc.interchanges[0], interchange_control=1, group_control=1, created=WHEN)
    assert ["AK9", "E", "2", "1", "1", "5", "4"] in _segments(ack)


def test_997_all_rejected_and_custom_delimiters() -> None:
    gs = MIXED[0].replace("004010", "005010")
    body = [gs, *MIXED[6:11], "GE*1*7", "IEA*1*000000001"]
    doc = parse_x12(interchange(body, repetition="^", version="00501"))
    d = X12Delimiters(element="|", component=">", repetition="!", segment="\\", suffix="\r\n")
    ack = build_997(
        doc.interchanges[0],
        interchange_control=5,
        group_control=5,
        set_control=77,
        created=WHEN,
        delimiters=d,
    )
    assert ack.startswith("ISA|00|")
    assert "|!|00501|000000005|" in ack
    assert "AK1|SC|7|005010\\\r\n" in ack  # AK103 carries the version from 005010 on
    assert "AK9|R|1|1|0\\\r\n" in ack
    assert "ST|997|0077\\\r\n" in ack
    again = parse_x12(ack)
    assert again.all_errors == []
    assert again.interchanges[0].delimiters.repetition == "!"


def test_997_names_missing_trailers() -> None:
    body = [
        MIXED[0],
        "ST*832*0001",
        "BCT*PC",
        "ST*832*0002",
        "BCT*PC",
        "SE*3*0002",
        "GE*2*7",
        "IEA*1*000000001",
    ]
    doc = parse_x12(interchange(body))
    ack = build_997(doc.interchanges[0], interchange_control=2, group_control=2, created=WHEN)
    segs = _segments(ack)
    assert ["AK5", "R", "2"] in segs
    assert ["AK9", "P", "2", "2", "1"] in segs


def test_a_997_answering_an_invalid_usage_indicator_says_production_and_is_valid() -> None:
    """Review: a 997 copied the partner's ISA15 as it came (a blank, say), so the hub's own
    acknowledgement broke the rule its reader warns of (P, T or I). A valid one is mirrored."""
    for usage, expected in ((" ", "P"), ("X", "P"), ("T", "T"), ("I", "I")):
        received = interchange(MIXED).replace("*P*:~", f"*{usage}*:~", 1)
        doc = parse_x12(received)
        assert doc.interchanges[0].usage_indicator == usage
        ack = build_997(doc.interchanges[0], interchange_control=1, group_control=1)
        assert _segments(ack)[0][15] == expected
        assert parse_x12(ack).all_errors == []
