"""X12 reader: delimiters per interchange, tolerance of layout, and precise envelope errors."""

from __future__ import annotations

import pytest

from mastersync.connectors.edi import EdiError, parse_x12, parse_x12_bytes
from tests.connectors.edi.builders import CATALOG_SET, interchange, isa

BODY = [
    "GS*IB*SENDER*RECEIVER*20240501*1200*7*X*004010",
    "ST*846*0001",
    "BIA*00*DD*R1*20240501",
    "LIN*1*UP*012345678905",
    "QTY*33*10*EA",
    "SE*5*0001",
    "GE*1*7",
    "IEA*1*000000001",
]


def _errors(text: str) -> list[EdiError]:
    return parse_x12(text).all_errors


@pytest.mark.parametrize(
    ("element", "component", "terminator", "suffix"),
    [
        ("*", ":", "~", "\n"),  # the usual
        ("*", ">", "~", "\r\n"),  # CRLF after each terminator
        ("^", ">", "~", ""),  # caret element separator, one long line
        ("~", ">", "}", "\n"),  # tilde as ELEMENT separator, brace terminator
        ("*", "~", "|", "\n"),  # tilde as component separator, pipe terminator
        ("*", ">", "^", "\n"),  # caret terminator
        ("|", "\\", "\n", ""),  # newline as the terminator
        ("\x1d", "\x1f", "\x1c", ""),  # information separators
    ],
)
def test_delimiters_are_read_from_each_isa(
    element: str, component: str, terminator: str, suffix: str
) -> None:
    text = interchange(
        BODY, element=element, component=component, terminator=terminator, suffix=suffix
    )
    doc = parse_x12(text)
    assert doc.all_errors == []
    ic = doc.interchanges[0]
    assert (ic.delimiters.element, ic.delimiters.component, ic.delimiters.segment) == (
        element,
        component,
        terminator,
    )
    assert ic.delimiters.repetition == ""  # 00401: ISA11 is the standards id
    assert ic.standards_id == "U"
    assert (ic.sender_id, ic.receiver_id, ic.control_number) == ("SENDER", "RECEIVER", "000000001")
    ts = next(doc.sets)
    assert (ts.id, ts.control_number, ts.status) == ("846", "0001", "A")
    qty = ts.segments[3]
    assert (qty.id, qty.get(1), qty.get(2), qty.get(3), qty.position) == (
        "QTY",
        "33",
        "10",
        "EA",
        4,
    )


def test_repetition_separator_from_version_00402_and_composites() -> None:
    body = [
        "GS*SC*S*R*20240501*1200*1*X*005010",
        "ST*832*0001",
        "BCT*PC",
        "REF*ZZ*A^B^C",
        "CTP**CAT*1*1*CA:12:EA",
        "SE*5*0001",
        "GE*1*1",
        "IEA*1*000000001",
    ]
    doc = parse_x12(interchange(body, repetition="^", version="00501"))
    ic = doc.interchanges[0]
    assert ic.delimiters.repetition == "^"
    assert ic.standards_id == ""
    ts = next(doc.sets)
    ref, ctp = ts.segments[2], ts.segments[3]
    assert [r[0] for r in ref.element(2).repetitions] == ["A", "B", "C"]
    assert ctp.element(5).components == ("CA", "12", "EA")
    assert ctp.get(5, 3) == "EA"


def test_bom_and_indentation_are_tolerated() -> None:
    text = interchange(BODY).replace("\nGS", "\n  GS").replace("\nST", "\n    ST")
    text = text.replace("\nLIN", "\n\t\tLIN")
    doc = parse_x12_bytes(("\ufeff" + text).encode("utf-8"))
    assert doc.all_errors == []
    assert next(doc.sets).segments[2].id == "LIN"
    # A BOM in an already decoded string is tolerated too.
    assert parse_x12("\ufeff" + text).all_errors == []


def test_latin1_bytes_fall_back() -> None:
    body = [*BODY]
    body[4] = "PID*F****CAF\u00c9"  # replaces QTY; still 5 segments
    doc = parse_x12_bytes(interchange(body).encode("latin-1"))
    assert next(doc.sets).segments[3].get(5) == "CAF\u00c9"


def test_several_interchanges_with_different_delimiters() -> None:
    first = interchange(BODY, control="000000001")
    body2 = [s.replace("000000001", "000000002") for s in BODY]
    second = interchange(body2, element="~", component=">", terminator="}", control="000000002")
    doc = parse_x12(first + second + first)
    assert doc.all_errors == []
    assert [ic.control_number for ic in doc.interchanges] == ["000000001", "000000002", "000000001"]
    assert [ic.delimiters.element for ic in doc.interchanges] == ["*", "~", "*"]
    assert [ts.segments[0].file_position for ts in doc.sets] == [3, 12, 21]


def test_a_new_isa_without_iea_closes_the_previous_interchange() -> None:
    truncated = interchange(BODY[:-1])  # no IEA
    doc = parse_x12(truncated + interchange(BODY))
    assert len(doc.interchanges) == 2
    [err] = doc.all_errors
    assert (err.rule, err.segment_id, err.interchange_control) == (
        "missing_segment",
        "IEA",
        "000000001",
    )
    # Located where the IEA was due: at the second ISA (segment 9 of the file), not at the
    # first interchange's header.
    assert err.file_position == 9
    assert err.offset == len(truncated)
    assert "ended by ISA at segment 9" in err.message


def _with(index: int, segment: str) -> str:
    body = list(BODY)
    body[index] = segment
    return interchange(body)


def test_se_count_mismatch() -> None:
    [err] = _errors(_with(5, "SE*6*0001"))
    assert err.rule == "segment_count"
    assert (err.interchange_control, err.group_control, err.set_control) == (
        "000000001",
        "7",
        "0001",
    )
    assert (err.segment_id, err.element_index, err.segment_position, err.file_position) == (
        "SE",
        1,
        5,
        7,
    )
    assert err.value == "6"


def test_se_control_mismatch() -> None:
    doc = parse_x12(_with(5, "SE*5*0002"))
    [err] = doc.all_errors
    assert (err.rule, err.segment_id, err.element_index) == ("control_number_mismatch", "SE", 2)
    assert next(doc.sets).status == "R"


def test_ge_count_and_control_mismatch() -> None:
    errors = _errors(_with(6, "GE*2*8"))
    assert [(e.rule, e.segment_id, e.element_index, e.file_position) for e in errors] == [
        ("set_count", "GE", 1, 8),
        ("control_number_mismatch", "GE", 2, 8),
    ]
    assert all(e.group_control == "7" and e.set_control == "" for e in errors)


def test_group_control_numbers_compare_as_numbers() -> None:
    assert _errors(_with(6, "GE*1*0007")) == []


def test_iea_count_and_control_mismatch() -> None:
    errors = _errors(_with(7, "IEA*2*000000009"))
    assert [(e.rule, e.segment_id, e.element_index, e.file_position) for e in errors] == [
        ("group_count", "IEA", 1, 9),
        ("control_number_mismatch", "IEA", 2, 9),
    ]


def test_missing_se_ge_and_iea() -> None:
    body = BODY[:5]  # GS, ST, BIA, LIN, QTY: the input just stops
    doc = parse_x12(interchange(body))
    errors = doc.all_errors
    assert sorted((e.rule, e.segment_id) for e in errors) == [
        ("missing_segment", "GE"),
        ("missing_segment", "IEA"),
        ("missing_segment", "SE"),
    ]
    se = next(e for e in errors if e.segment_id == "SE")
    assert (se.set_control, se.segment_position) == ("0001", 5)
    assert next(doc.sets).status == "R"
    iea = next(e for e in errors if e.segment_id == "IEA")
    assert (iea.file_position, iea.offset) == (7, len(interchange(body)))
    assert "end of input" in iea.message


def test_missing_se_before_next_st() -> None:
    body = [
        BODY[0],
        "ST*846*0001",
        "BIA*00*DD",
        "ST*846*0002",
        "BIA*00*DD",
        "SE*3*0002",
        "GE*2*7",
        "IEA*1*000000001",
    ]
    doc = parse_x12(interchange(body))
    first, second = doc.sets
    [err] = first.errors
    assert (err.rule, err.segment_id, err.file_position) == ("missing_segment", "SE", 5)
    assert "ended by ST" in err.message
    assert (first.status, second.status) == ("R", "A")


def test_invalid_segment_id_rejects_the_set() -> None:
    doc = parse_x12(_with(3, "li*1*UP*012345678905"))
    [err] = doc.all_errors
    assert (err.rule, err.segment_id, err.segment_position, err.set_control) == (
        "invalid_segment_id",
        "li",
        3,
        "0001",
    )
    assert next(doc.sets).status == "R"


def test_control_character_is_a_bad_character() -> None:
    doc = parse_x12(_with(3, "LIN*1*UP*0123\x0745678905"))
    [err] = doc.all_errors
    assert (err.rule, err.segment_id, err.element_index, err.value) == (
        "bad_character",
        "LIN",
        3,
        "\x07",
    )
    text = _with(3, "LIN*1*UP*0123\x0745678905")
    assert err.offset is not None and text[err.offset] == "\x07"


def test_wrapped_lines_are_joined() -> None:
    text = interchange(BODY).replace("LIN*1*UP*0123", "LIN*1*UP*0123\n")
    doc = parse_x12(text)
    assert doc.all_errors == []
    assert next(doc.sets).segments[2].get(3) == "012345678905"


def test_segments_outside_sets_and_garbage_outside_interchanges() -> None:
    body = [BODY[0], "REF*ZZ*X", *BODY[1:]]
    doc = parse_x12("JUNK\n" + interchange(body))
    rules = [(e.rule, e.segment_id) for e in doc.all_errors]
    assert ("unexpected_data", "") in rules
    assert ("unexpected_segment", "REF") in rules
    assert next(doc.sets).status == "A"


def test_unreadable_isa_and_empty_input() -> None:
    doc = parse_x12("ISA*00*short~")
    assert [e.rule for e in doc.all_errors] == ["invalid_envelope"]
    assert [e.rule for e in parse_x12("").all_errors] == ["no_interchange"]


def test_isa11_and_usage_indicator_warnings() -> None:
    text = isa(repetition=" ") + "\n" + "\n".join(s + "~" for s in BODY)
    doc = parse_x12(text)
    [err] = doc.all_errors
    assert (err.rule, err.severity, err.element_index) == ("invalid_qualifier", "warning", 11)
    assert next(doc.sets).status == "A"


def test_duplicate_set_control_number() -> None:
    body = [BODY[0], *BODY[1:6], *BODY[1:6], "GE*2*7", "IEA*1*000000001"]
    doc = parse_x12(interchange(body))
    first, second = doc.sets
    assert first.status == "A"
    [err] = second.errors
    assert (err.rule, err.segment_id, err.element_index) == ("duplicate_control_number", "ST", 2)


def test_error_text_names_the_place() -> None:
    [err] = _errors(_with(5, "SE*6*0001"))
    assert str(err) == (
        "error segment_count: SE01 says 6 segments, the set has 5 (ST and SE included) "
        "(interchange 000000001, group 7, set 846 0001, SE01, segment 5 of set, segment 7 of file)"
    )


@pytest.mark.parametrize("width", range(40, 100, 3))
def test_a_file_wrapped_at_a_fixed_width_reads_as_unwrapped(width: int) -> None:
    """Line breaks inside the ISA (a VAN's 80-column wrap, say) went into its fields (a
    sender id of 'SENDER\\r\\nX'), and a break inside a second ISA's tag lost that interchange."""
    gs = "GS*SC*SENDER*RECEIVER*20240501*1200*7*X*004010"
    one = interchange([gs, *CATALOG_SET, "GE*1*7", "IEA*1*000000001"], suffix="")
    two = interchange(
        [gs.replace("*7*", "*8*"), *CATALOG_SET, "GE*1*8", "IEA*1*000000002"],
        control="000000002",
        suffix="",
    )
    text = one + two
    wrapped = "\r\n".join(text[i : i + width] for i in range(0, len(text), width))
    plain, broken = parse_x12(text), parse_x12(wrapped)
    assert plain.all_errors == []
    assert broken.all_errors == []
    assert [
        (i.sender_id, i.receiver_id, i.control_number, i.time) for i in broken.interchanges
    ] == [(i.sender_id, i.receiver_id, i.control_number, i.time) for i in plain.interchanges]
    assert broken.records("item") == plain.records("item")


def test_a_line_break_just_before_the_isa_terminator_is_a_wrap() -> None:
    # Review: a wrap at the ISA's 106th character made the CR its terminator, and the
    # interchange had no IEA. A line end there is the terminator only when a segment
    # follows it, as in a file whose terminator is the line end.
    text = interchange(
        [
            "GS*SC*SENDER*RECEIVER*20240501*1200*7*X*004010",
            *CATALOG_SET,
            "GE*1*7",
            "IEA*1*000000001",
        ],
        suffix="",
    )
    wrapped = parse_x12(text[:105] + "\r\n" + text[105:])
    assert wrapped.all_errors == []
    assert wrapped.records("item") == parse_x12(text).records("item")
    by_line = parse_x12(text.replace("~", "\n"))
    assert by_line.all_errors == [] and by_line.interchanges[0].delimiters.segment == "\n"
