"""EDIFACT reader: UNA and defaults, release character, groups, counts, references, charsets."""

from __future__ import annotations

from mastersync.connectors.edi import EdiError, parse_edifact, parse_edifact_bytes

WITH_UNA = (
    "UNA:+,? '\n"
    "UNB+UNOC:3+SENDER:14+RECV:14+240501:1200+IC1'\n"
    "UNH+M1+PRICAT:D:96A:UN:EAN008'\n"
    "BGM+9+CAT?+1+9'\n"
    "LIN+1++4006381333931:EN'\n"
    "IMD+F++:::A?+B?:C?'D??E'\n"
    "PRI+AAA:12,50::::PCE'\n"
    "UNT+6+M1'\n"
    "UNZ+1+IC1'\n"
)


def _messages(text: str) -> str:
    return "".join(text.splitlines(keepends=True)[2:-2])


def _without_una(body: str, syntax: str = "UNOA:3", ref: str = "IC1", count: int = 1) -> str:
    return f"UNB+{syntax}+SENDER:14+RECV:14+240501:1200+{ref}'{body}UNZ+{count}+{ref}'"


def test_una_comma_decimal_and_release_character() -> None:
    doc = parse_edifact(WITH_UNA)
    assert doc.all_errors == []
    ic = doc.interchanges[0]
    d = ic.delimiters
    assert ic.una
    assert (d.component, d.element, d.decimal, d.release, d.segment) == (":", "+", ",", "?", "'")
    assert (ic.syntax_id, ic.syntax_version, ic.sender_id, ic.sender_qualifier) == (
        "UNOC",
        "3",
        "SENDER",
        "14",
    )
    assert (ic.recipient_id, ic.date, ic.time, ic.control_reference) == (
        "RECV",
        "240501",
        "1200",
        "IC1",
    )
    [msg] = doc.messages
    assert (msg.reference, msg.type, msg.version, msg.release, msg.agency, msg.association) == (
        "M1",
        "PRICAT",
        "D",
        "96A",
        "UN",
        "EAN008",
    )
    bgm, lin, imd, pri = msg.segments[1:5]
    assert bgm.get(2) == "CAT+1"
    assert imd.get(3, 4) == "A+B:C'D?E"
    assert pri.get(1, 2) == "12,50"  # raw element; records normalise it
    assert (lin.position, lin.file_position) == (3, 4)
    item = doc.records("item")[0]
    assert item["description"] == "A+B:C'D?E"
    assert doc.records("price")[0]["price"] == "12.50"


def test_defaults_without_una() -> None:
    body = "UNH+1+PRICAT:D:96A:UN'BGM+9+C?'1'PRI+AAA:7.5'UNT+4+1'"
    doc = parse_edifact(_without_una(body))
    assert doc.all_errors == []
    ic = doc.interchanges[0]
    assert not ic.una
    assert ic.delimiters.una == "UNA:+.? '"
    msg = next(doc.messages)
    assert msg.segments[1].get(2) == "C'1"
    assert msg.segments[2].get(1, 2) == "7.5"


def test_other_service_characters_and_syntax_4_repetition() -> None:
    text = (
        "UNA|*,\\~!\r\n"
        "UNB*UNOC|4*S*R*20240501|1200*X9!\r\n"
        "UNH*1*PRICAT|D|96A|UN!\r\n"
        "BGM*9*A\\*B\\!C\\\\D\\~E!\r\n"
        "RFF*ZZ|R1~ZZ|R2!\r\n"
        "UNT*4*1!\r\n"
        "UNZ*1*X9!\r\n"
    )
    doc = parse_edifact(text)
    assert doc.all_errors == []
    msg = next(doc.messages)
    assert msg.segments[1].get(2) == "A*B!C\\D~E"
    rff = msg.segments[2].element(1)
    assert [rep[1] for rep in rff.repetitions] == ["R1", "R2"]


def test_syntax_4_without_una_uses_asterisk_for_repetitions() -> None:
    body = "UNH+1+INVRPT:D:96A:UN'RFF+ZZ:A*ZZ:B'UNT+3+1'"
    doc = parse_edifact(_without_una(body, "UNOC:4"))
    assert doc.interchanges[0].delimiters.repetition == "*"
    assert len(next(doc.messages).segments[1].element(1).repetitions) == 2
    # Version 3 has no repetitions: the asterisk is data.
    doc3 = parse_edifact(_without_una(body, "UNOC:3"))
    assert next(doc3.messages).segments[1].get(1, 2) == "A*ZZ"


def test_unob_information_separators_without_una() -> None:
    text = (
        "UNB\x1dUNOB\x1f3\x1dS\x1dR\x1d240501\x1f1200\x1dX1\x1c"
        "UNH\x1d1\x1dPRICAT\x1fD\x1f96A\x1fUN\x1cBGM\x1d9\x1dcat+1'x\x1c"
        "UNT\x1d3\x1d1\x1cUNZ\x1d1\x1dX1\x1c"
    )
    doc = parse_edifact(text)
    assert doc.all_errors == []
    assert next(doc.messages).segments[1].get(2) == "cat+1'x"


def test_groups() -> None:
    body = (
        "UNG+PRICAT+APPS:ZZ+APPR:ZZ+240501:1200+G1+UN+D:96A'"
        "UNH+1+PRICAT:D:96A:UN'BGM+9+A'UNT+3+1'"
        "UNH+2+PRICAT:D:96A:UN'BGM+9+B'UNT+3+2'"
        "UNE+2+G1'"
        "UNG+INVRPT+APPS:ZZ+APPR:ZZ+240501:1200+G2+UN+D:96A'"
        "UNH+3+INVRPT:D:96A:UN'BGM+35+C'UNT+3+3'"
        "UNE+1+G2'"
    )
    doc = parse_edifact(_without_una(body, count=2))
    assert doc.all_errors == []
    ic = doc.interchanges[0]
    assert [(g.group_id, g.reference, g.sender_id, len(g.messages)) for g in ic.groups] == [
        ("PRICAT", "G1", "APPS", 2),
        ("INVRPT", "G2", "APPS", 1),
    ]
    assert ic.messages == []
    assert [m.reference for m in ic.all_messages] == ["1", "2", "3"]


def test_group_trailer_errors() -> None:
    body = "UNG+ORDERS+A+B+240501:1200+G1+UN+D:96A'UNH+1+ORDERS:D:96A:UN'UNT+2+1'UNE+2+G9'"
    errors = parse_edifact(_without_una(body)).all_errors
    assert [(e.rule, e.segment_id, e.element_index, e.group_control) for e in errors] == [
        ("set_count", "UNE", 1, "G1"),
        ("control_number_mismatch", "UNE", 2, "G1"),
    ]


def test_wrong_unt_count_rejects_only_that_message() -> None:
    body = (
        "UNH+1+PRICAT:D:96A:UN'BGM+9+A'UNT+3+1'"
        "UNH+2+PRICAT:D:96A:UN'BGM+9+B'LIN+1++4006381333931:EN'UNT+3+2'"
    )
    doc = parse_edifact(_without_una(body, count=2))
    [err] = doc.all_errors
    assert err.rule == "segment_count"
    assert (err.interchange_control, err.set_control, err.set_id) == ("IC1", "2", "PRICAT")
    assert (err.segment_id, err.element_index, err.segment_position, err.file_position) == (
        "UNT",
        1,
        4,
        8,
    )
    assert [m.status for m in doc.messages] == ["A", "R"]


def test_wrong_unt_reference() -> None:
    [err] = parse_edifact(_without_una("UNH+1+ORDERS:D:96A:UN'UNT+2+7'")).all_errors
    assert (err.rule, err.segment_id, err.element_index, err.value) == (
        "control_number_mismatch",
        "UNT",
        2,
        "7",
    )


def test_wrong_unz_reference_and_count() -> None:
    text = "UNB+UNOA:3+S+R+240501:1200+IC1'UNH+1+ORDERS:D:96A:UN'UNT+2+1'UNZ+3+IC2'"
    doc = parse_edifact(text)
    errors = doc.all_errors
    assert [(e.rule, e.segment_id, e.element_index, e.value) for e in errors] == [
        ("set_count", "UNZ", 1, "3"),
        ("control_number_mismatch", "UNZ", 2, "IC2"),
    ]
    assert all(e.interchange_control == "IC1" and e.file_position == 4 for e in errors)
    assert next(doc.messages).status == "A"  # interchange trailer errors reject no message


def test_missing_unt_and_unz() -> None:
    doc = parse_edifact("UNB+UNOA:3+S+R+240501:1200+IC1'UNH+1+PRICAT:D:96A:UN'BGM+9+A'")
    assert sorted((e.rule, e.segment_id) for e in doc.all_errors) == [
        ("missing_segment", "UNT"),
        ("missing_segment", "UNZ"),
    ]
    unt = next(e for e in doc.all_errors if e.segment_id == "UNT")
    assert (unt.set_control, unt.segment_position) == ("1", 3)
    # The UNZ is missing where it was due, after the last segment, not at the UNB.
    unz = next(e for e in doc.all_errors if e.segment_id == "UNZ")
    assert unz.file_position == 4
    assert "end of input" in unz.message


def test_a_new_unb_or_una_without_unz_closes_the_previous_interchange_there() -> None:
    first = "UNB+UNOA:3+S+R+240501:1200+IC1'UNH+1+PRICAT:D:96A:UN'BGM+9+A'UNT+3+1'"
    second = "UNB+UNOA:3+S+R+240501:1200+IC2'UNH+1+PRICAT:D:96A:UN'BGM+9+A'UNT+3+1'UNZ+1+IC2'"
    doc = parse_edifact(first + second)
    [err] = doc.all_errors
    assert (err.rule, err.segment_id, err.interchange_control) == ("missing_segment", "UNZ", "IC1")
    assert (err.file_position, err.offset) == (5, len(first))
    assert "ended by UNB at segment 5" in err.message
    doc = parse_edifact(first + "UNA:+.? '" + second)
    [err] = doc.all_errors
    assert (err.file_position, err.offset) == (5, len(first))
    assert "ended by a UNA" in err.message


def test_unoa_bad_character() -> None:
    body = "UNH+1+ORDERS:D:96A:UN'IMD+F++:::Widget'UNT+3+1'"
    text = _without_una(body)
    doc = parse_edifact(text)
    [err] = doc.all_errors
    assert (err.rule, err.severity, err.segment_id, err.value) == (
        "bad_character",
        "error",
        "IMD",
        "i",
    )
    assert (err.element_index, err.component_index, err.segment_position) == (3, 4, 2)
    assert err.offset is not None and text[err.offset] == "i"
    assert next(doc.messages).status == "R"
    lenient = parse_edifact(text, strict_charset=False)
    assert [e.severity for e in lenient.all_errors] == ["warning"]
    assert next(lenient.messages).status == "E"


def test_character_repertoires() -> None:
    body = "UNH+1+ORDERS:D:96A:UN'IMD+F++:::Caf\u00e9 #1'UNT+3+1'"

    def rules(syntax: str) -> list[tuple[str, str]]:
        return [(e.rule, e.value) for e in parse_edifact(_without_una(body, syntax)).all_errors]

    assert rules("UNOA:3") == [("bad_character", "a")]
    assert rules("UNOB:3") == [("bad_character", "\u00e9")]
    assert rules("UNOC:3") == []
    assert rules("UNOW:4") == []
    assert rules("UNOX:3") == [("unsupported_syntax", "UNOX")]


def test_bytes_in_the_declared_codec() -> None:
    body = "UNH+1+ORDERS:D:96A:UN'IMD+F++:::\u0141\u00f3d\u017a'UNT+3+1'"
    doc = parse_edifact_bytes(_without_una(body, "UNOD:3").encode("iso8859_2"))
    assert doc.all_errors == []
    assert next(doc.messages).segments[1].get(3, 4) == "\u0141\u00f3d\u017a"
    latin = parse_edifact_bytes(("\ufeff" + WITH_UNA).encode("utf-8"))
    assert latin.all_errors == []


def test_several_interchanges_each_with_its_own_una() -> None:
    second = WITH_UNA.replace("UNA:+,? '", "UNA:*.? !").replace("'", "!").replace("+", "*")
    second = second.replace("IC1", "IC2").replace("12,50", "3.25").replace("?*", "?+")
    doc = parse_edifact(
        WITH_UNA + second + _without_una("UNH+1+ORDERS:D:96A:UN'UNT+2+1'", ref="IC3")
    )
    assert doc.all_errors == []
    assert [(ic.control_reference, ic.delimiters.element, ic.una) for ic in doc.interchanges] == [
        ("IC1", "+", True),
        ("IC2", "*", True),
        ("IC3", "+", False),
    ]
    assert [r["price"] for r in doc.records("price")] == ["12.50", "3.25"]


def test_tag_duplicates_and_stray_segments() -> None:
    body = "UNH+1+ORDERS:D:96A:UN'bgm+9'UNT+3+1'FTX+AAA'UNH+1+ORDERS:D:96A:UN'UNT+2+1'"
    doc = parse_edifact(_without_una(body, "UNOB:3", count=2))
    got = [(e.rule, e.segment_id, e.set_control) for e in doc.all_errors]
    assert ("invalid_segment_id", "bgm", "1") in got
    assert ("unexpected_segment", "FTX", "") in got
    assert ("duplicate_control_number", "UNH", "1") in got
    assert parse_edifact("").all_errors == [
        EdiError("no_interchange", "the input holds no UNB segment")
    ]
