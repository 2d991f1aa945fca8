"""CSV and JSON Lines readers: bad lines become failures with a line number; reading goes on."""

from __future__ import annotations

from pathlib import Path

import pytest

from mastersync.connectors.files.readers import (
    MAX_RECORD_BYTES,
    count_records,
    read_csv,
    read_file,
    read_header,
    read_jsonl,
)
from mastersync.ports.connector import ReadFailure, SourceRecord


def records(items: list[SourceRecord | ReadFailure]) -> list[tuple[str | None, object]]:
    out: list[tuple[str | None, object]] = []
    for i in items:
        if isinstance(i, SourceRecord):
            out.append((i.locator, i.payload))
        else:
            out.append((i.locator, i.rule))
    return out


def test_csv_with_bom_quotes_multiline_fields_and_semicolons(tmp_path: Path) -> None:
    path = tmp_path / "items.csv"
    path.write_bytes(
        '\ufeffNO;NAME;PRICE\r\nA1;"Gloves; nitrile";1,50\r\n'
        'A2;"Two\nlines";2\r\n\r\nA3;Müller;3\r\n'.encode()
    )
    got = records(list(read_csv(path, delimiter=";")))
    assert got == [
        ("items.csv:2", {"NO": "A1", "NAME": "Gloves; nitrile", "PRICE": "1,50"}),
        ("items.csv:3", {"NO": "A2", "NAME": "Two\nlines", "PRICE": "2"}),
        ("items.csv:6", {"NO": "A3", "NAME": "Müller", "PRICE": "3"}),
    ]
    assert read_header(path, delimiter=";") == ["NO", "NAME", "PRICE"]
    assert count_records(path) == 5


def test_bad_lines_do_not_stop_the_file(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_bytes(b"a,b\n1,2\n1,2,3\n\xff\xfe,x\n3,4\n")
    got = records(list(read_csv(path)))
    assert got == [
        ("c.csv:2", {"a": "1", "b": "2"}),
        ("c.csv:3", "csv_columns"),
        ("c.csv:4", "encoding"),
        ("c.csv:5", {"a": "3", "b": "4"}),
    ]


def test_other_encodings(tmp_path: Path) -> None:
    path = tmp_path / "latin.csv"
    path.write_bytes("name\nSociété Générale\n".encode("cp1252"))
    assert records(list(read_csv(path, encoding="cp1252"))) == [
        ("latin.csv:2", {"name": "Société Générale"})
    ]


def test_duplicate_columns_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("a,b,a\n1,2,3\n")
    assert records(list(read_csv(path))) == [("d.csv:1", "csv_header")]


def test_csv_quoting_errors(tmp_path: Path) -> None:
    path = tmp_path / "q.csv"
    path.write_text('a,b\n"x"y,1\n2,3\n')
    got = records(list(read_csv(path)))
    assert got[0] == ("q.csv:2", "csv_syntax")
    assert got[-1] == ("q.csv:3", {"a": "2", "b": "3"})


def test_jsonl_lines(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    path.write_text('{"id": 1}\n\nnot json\n[1, 2]\n{"id": 2}\n')
    assert records(list(read_jsonl(path))) == [
        ("r.jsonl:1", {"id": 1}),
        ("r.jsonl:3", "json_syntax"),
        ("r.jsonl:4", "json_object"),
        ("r.jsonl:5", {"id": 2}),
    ]


def test_oversized_records_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl"
    path.write_text('{"a": "' + "x" * MAX_RECORD_BYTES + '"}\n{"a": 1}\n')
    assert records(list(read_jsonl(path))) == [
        ("big.jsonl:1", "too_large"),
        ("big.jsonl:2", {"a": 1}),
    ]


def test_file_types_by_suffix(tmp_path: Path) -> None:
    tsv = tmp_path / "t.tsv"
    tsv.write_text("a\tb\n1\t2\n")
    assert records(list(read_file(tsv))) == [("t.tsv:2", {"a": "1", "b": "2"})]
    with pytest.raises(ValueError, match=r"unsupported file type '\.xml'"):
        read_file(tmp_path / "x.xml")
