"""Acknowledgements answer business data only, once per content, in a valid envelope.

A partner's 997, 999 or CONTRL is never answered (the standards forbid it: two hubs that both
answered acknowledgements would send them back and forth forever); a 997 names a valid X12
version in its ISA even when the interchange it answers does not; and the same file dropped
again is set aside without a second acknowledgement.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest

from mastersync.connectors.edi import (
    EdiWriteError,
    build_997,
    build_contrl,
    parse_edifact,
    parse_x12,
)
from mastersync.connectors.edi.connector import EdiClaim, EdiConnector
from mastersync.connectors.edi.spec import EdiSettings
from mastersync.connectors.registry import ConnectorContext
from tests.connectors.edi.builders import interchange

WHEN = datetime(2024, 5, 2, 8, 15)

# A partner's 997 for a catalog the hub sent: group FA, one 997 set.
FA_997 = [
    "GS*FA*SENDER*RECEIVER*20240501*1200*555*X*004010",
    "ST*997*0001",
    "AK1*SC*12",
    "AK9*A*1*1*1",
    "SE*4*0001",
    "GE*1*555",
]
# A 999 (implementation acknowledgement), also sent in an FA group.
FA_999 = [
    "GS*FA*SENDER*RECEIVER*20240501*1200*556*X*005010X231A1",
    "ST*999*0001*005010X231A1",
    "AK1*SC*13*005010",
    "AK9*A*1*1*1",
    "SE*4*0001",
    "GE*1*556",
]
CATALOG = [
    "GS*SC*SENDER*RECEIVER*20240501*1200*7*X*004010",
    "ST*832*0001",
    "BCT*PC*C1",
    "LIN*1*UP*012345678905",
    "CTP**CAT*12.50*1*EA",
    "SE*5*0001",
    "GE*1*7",
]

# A partner's CONTRL for an interchange the hub sent (reference 900 of DISTRIB).
CONTRL_MESSAGE = "UNH+1+CONTRL:D:3:UN'UCI+900+DISTRIB:14+ACME:14+7'UNT+3+1'"
ORDERS_MESSAGE = "UNH+2+ORDERS:D:96A:UN:EAN008'BGM+220+PO1'UNT+3+2'"


def _segments(text: str) -> list[list[str]]:
    return [line.rstrip("~").split("*") for line in text.strip().split("\n")]


def _edifact(body: str, count: int, reference: str = "IC1") -> str:
    unb = f"UNB+UNOC:3+ACME:14+DISTRIB:14+240501:1200+{reference}'"
    return f"UNA:+.? '{unb}{body}UNZ+{count}+{reference}'"


# -- X12: 997 and 999 ---------------------------------------------------------------------


def test_a_997_answers_the_business_groups_and_leaves_out_the_fa_groups() -> None:
    doc = parse_x12(interchange([*FA_997, *CATALOG, *FA_999, "IEA*3*000000001"]))
    ack = build_997(doc.interchanges[0], interchange_control=1, group_control=40, created=WHEN)
    segs = _segments(ack)
    assert [s[1:3] for s in segs if s[0] == "AK1"] == [["SC", "7"]]
    assert [s for s in segs if s[0] == "AK2"] == [["AK2", "832", "0001"]]
    # One FA group of its own, numbered from the first number given.
    assert [s[6] for s in segs if s[0] == "GS"] == ["40"]
    assert segs[-1] == ["IEA", "1", "000000001"]
    assert parse_x12(ack).all_errors == []


def test_a_group_of_997_sets_is_an_acknowledgement_whatever_its_gs01() -> None:
    # GS01 mistyped: the sets in it are still acknowledgements, and still not answered.
    mislabelled = [FA_997[0].replace("GS*FA*", "GS*SC*"), *FA_997[1:]]
    doc = parse_x12(interchange([*mislabelled, *CATALOG, "IEA*2*000000001"]))
    ack = build_997(doc.interchanges[0], interchange_control=1, group_control=1, created=WHEN)
    assert [s[1:3] for s in _segments(ack) if s[0] == "AK1"] == [["SC", "7"]]


def test_a_997_set_misfiled_in_a_business_group_gets_no_ak2_but_is_counted() -> None:
    misfiled_set = [seg.replace("*0001", "*0002") for seg in FA_997[1:5]]
    misfiled = [*CATALOG[:-1], *misfiled_set, "GE*2*7", "IEA*1*000000001"]
    doc = parse_x12(interchange(misfiled))
    ack = build_997(doc.interchanges[0], interchange_control=1, group_control=1, created=WHEN)
    segs = _segments(ack)
    assert [s for s in segs if s[0] == "AK2"] == [["AK2", "832", "0001"]]
    assert [s for s in segs if s[0] == "AK9"] == [["AK9", "A", "2", "2", "2"]]


def test_build_997_refuses_an_interchange_of_acknowledgements_only() -> None:
    doc = parse_x12(interchange([*FA_997, *FA_999, "IEA*2*000000001"]))
    with pytest.raises(EdiWriteError, match="no functional group"):
        build_997(doc.interchanges[0], interchange_control=1, group_control=1)


# -- EDIFACT: CONTRL -----------------------------------------------------------------------


def test_a_contrl_reports_on_the_business_messages_only() -> None:
    doc = parse_edifact(_edifact(CONTRL_MESSAGE + ORDERS_MESSAGE, 2))
    contrl = build_contrl(doc.interchanges[0], control_reference="CR1", created=WHEN)
    ucms = [s for s in contrl.replace("\n", "").split("'") if s.startswith("UCM")]
    assert ucms == ["UCM+2+ORDERS:D:96A:UN:EAN008+7"]
    assert parse_edifact(contrl).all_errors == []


def test_a_group_of_contrl_messages_gets_no_ucf() -> None:
    groups = (
        f"UNG+CONTRL+ACME:14+DISTRIB:14+240501:1200+G1+UN+D:3'{CONTRL_MESSAGE}UNE+1+G1'"
        f"UNG+ORDERS+ACME:14+DISTRIB:14+240501:1200+G2+UN+D:96A'{ORDERS_MESSAGE}UNE+1+G2'"
    )
    doc = parse_edifact(_edifact(groups, 2))
    assert doc.all_errors == []
    contrl = build_contrl(doc.interchanges[0], control_reference="CR1", created=WHEN)
    segments = contrl.replace("\n", "").split("'")
    assert [s for s in segments if s.startswith("UCF")] == ["UCF+G2+ACME:14+DISTRIB:14+7"]
    assert [s for s in segments if s.startswith("UCM")] == ["UCM+2+ORDERS:D:96A:UN:EAN008+7"]
    assert parse_edifact(contrl).all_errors == []


def test_build_contrl_refuses_an_interchange_of_contrl_messages_only() -> None:
    doc = parse_edifact(_edifact(CONTRL_MESSAGE, 1))
    with pytest.raises(EdiWriteError, match="only CONTRL"):
        build_contrl(doc.interchanges[0], control_reference="CR1")


# -- the connector ---------------------------------------------------------------------------


def _connector(tmp_path: Path) -> EdiConnector:
    settings = EdiSettings.model_validate(
        {"type": "edi", "folder": "in", "domains": ["item"], "settle": 0}
    )
    (tmp_path / "in").mkdir(exist_ok=True)
    return EdiConnector(settings, ConnectorContext("acme", tmp_path))


def _ingest(claims: list[EdiClaim]) -> None:
    """What the inbound poller does with content it has not seen: read it, then settle it."""
    for claim in claims:
        list(claim.records())
        claim.done([])


def _acks(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "in" / "acks").glob("*"))


def _taken(tmp_path: Path) -> dict[str, int]:
    path = tmp_path / "in" / ".control-numbers.json"
    return dict(json.loads(path.read_text())) if path.exists() else {}


def test_a_partners_acknowledgements_get_no_answer_and_take_no_number(tmp_path: Path) -> None:
    connector = _connector(tmp_path)
    (tmp_path / "in" / "997.x12").write_text(interchange([*FA_997, "IEA*1*000000001"]))
    (tmp_path / "in" / "999.x12").write_text(
        interchange(
            [*FA_999, "IEA*1*000000002"], control="000000002", version="00501", repetition="^"
        )
    )
    (tmp_path / "in" / "contrl.edi").write_text(_edifact(CONTRL_MESSAGE, 1, "900"))
    claims = connector.claim()
    assert len(claims) == 3
    _ingest(claims)
    assert _acks(tmp_path) == []
    assert _taken(tmp_path) == {}
    # The files themselves are archived like any other (they are no duplicates).
    assert len(list((tmp_path / "in" / "archive").rglob("*.*"))) == 3

    # The partner's next catalog is answered with the first control number.
    (tmp_path / "in" / "catalog.x12").write_text(
        interchange([*CATALOG, "IEA*1*000000003"], control="000000003")
    )
    _ingest(connector.claim())
    [ack] = _acks(tmp_path)
    assert parse_x12(ack.read_text()).interchanges[0].control_number == "000000001"


def test_an_interchange_of_business_and_fa_groups_numbers_only_what_it_answers(
    tmp_path: Path,
) -> None:
    connector = _connector(tmp_path)
    (tmp_path / "in" / "mixed.x12").write_text(
        interchange([*FA_997, *CATALOG, *FA_999, "IEA*3*000000001"])
    )
    _ingest(connector.claim())
    [ack] = _acks(tmp_path)
    assert [g.functional_id for g in parse_x12(ack.read_text()).interchanges[0].groups] == ["FA"]
    assert _taken(tmp_path) == {"interchange": 1, "group": 1}


# -- ISA12 -----------------------------------------------------------------------------------


def test_a_997_never_copies_an_isa12_the_reader_rejects() -> None:
    for bad in ("00040", "99999", "00900"):
        doc = parse_x12(interchange([*CATALOG, "IEA*1*000000001"], version=bad))
        assert any(e.rule == "invalid_qualifier" and "ISA12" in str(e) for e in doc.all_errors)
        ack = build_997(doc.interchanges[0], interchange_control=1, group_control=1)
        assert _segments(ack)[0][12] == "00401", bad
        assert parse_x12(ack).all_errors == []


def test_a_997_keeps_a_valid_isa12() -> None:
    doc = parse_x12(interchange([*CATALOG, "IEA*1*000000001"], version="00300"))
    ack = build_997(doc.interchanges[0], interchange_control=1, group_control=1)
    assert _segments(ack)[0][12] == "00300"
    assert parse_x12(ack).all_errors == []


# -- duplicates ------------------------------------------------------------------------------


def test_the_same_file_dropped_again_is_not_acknowledged_again(tmp_path: Path) -> None:
    connector = _connector(tmp_path)
    text = interchange([*CATALOG, "IEA*1*000000001"])
    (tmp_path / "in" / "catalog.x12").write_text(text)
    _ingest(connector.claim())
    assert len(_acks(tmp_path)) == 1

    (tmp_path / "in" / "catalog-again.x12").write_text(text)
    for claim in connector.claim():
        claim.duplicate()  # the poller found this content ingested before
    assert len(_acks(tmp_path)) == 1
    assert _taken(tmp_path) == {"interchange": 1, "group": 1}
    assert (tmp_path / "in" / "duplicates" / "catalog-again.x12").exists()


def test_a_file_left_half_done_is_acknowledged_once(tmp_path: Path) -> None:
    connector = _connector(tmp_path)
    (tmp_path / "in" / "catalog.x12").write_text(interchange([*CATALOG, "IEA*1*000000001"]))
    [claim] = connector.claim()
    list(claim.records())  # acknowledged as it is read, then the poller crashed
    assert len(_acks(tmp_path)) == 1
    _ingest(_connector(tmp_path).resume())
    assert len(_acks(tmp_path)) == 1
    assert not list((tmp_path / "in").rglob(".*.acked"))

    (tmp_path / "in" / "other.x12").write_text(
        interchange([*CATALOG, "IEA*1*000000002"], control="000000002")
    )
    connector.claim()  # claimed, then the poller crashed before reading it
    assert len(_acks(tmp_path)) == 1
    _ingest(_connector(tmp_path).resume())
    assert len(_acks(tmp_path)) == 2
