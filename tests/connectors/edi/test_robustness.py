"""Damaged input never crashes a reader: it always comes back as structure plus errors."""

from __future__ import annotations

import contextlib

from hypothesis import given, settings
from hypothesis import strategies as st

from mastersync.connectors.edi import (
    EdiWriteError,
    build_997,
    build_contrl,
    parse_edifact,
    parse_x12,
)
from tests.connectors.edi.builders import CATALOG_SET, interchange
from tests.connectors.edi.test_edifact_records import INVRPT, PRICAT
from tests.connectors.edi.test_x12_records import INVENTORY_SET

X12 = interchange(
    ["GS*SC*SENDER*RECEIVER*20240501*1200*7*X*004010", *CATALOG_SET, "GE*1*7", "IEA*1*000000001"]
) + interchange(INVENTORY_SET, element="~", component=">", terminator="}")
EDIFACT = PRICAT + INVRPT
NOISE = "*~}>:+?'^|\n\r ISAGSSTSEGEIEAUNAUNBUNHUNTUNZ0129\x07é"


@st.composite
def damaged(draw: st.DrawFn, text: str) -> str:
    chars = list(text)
    for _ in range(draw(st.integers(min_value=1, max_value=10))):
        at = draw(st.integers(min_value=0, max_value=max(len(chars) - 1, 0)))
        action = draw(st.sampled_from(["delete", "insert", "cut"]))
        if action == "delete" and chars:
            del chars[at]
        elif action == "insert":
            chars.insert(at, draw(st.sampled_from(NOISE)))
        else:
            chars = chars[:at]
    return "".join(chars)


@settings(max_examples=150, deadline=None)
@given(damaged(X12))
def test_x12_reader_and_997_survive_damage(text: str) -> None:
    doc = parse_x12(text)
    assert all(ts.status in ("A", "E", "R") for ts in doc.sets)
    assert all(isinstance(v, str) for r in doc.records(include_rejected=True) for v in r.values())
    for ic in doc.interchanges:
        # EdiWriteError only when the received ISA ids cannot fit the fixed widths.
        with contextlib.suppress(EdiWriteError):
            assert parse_x12(build_997(ic, interchange_control=1, group_control=1)).interchanges


@settings(max_examples=150, deadline=None)
@given(damaged(EDIFACT))
def test_edifact_reader_and_contrl_survive_damage(text: str) -> None:
    doc = parse_edifact(text)
    assert all(m.status in ("A", "E", "R") for m in doc.messages)
    for ic in doc.interchanges:
        assert parse_edifact(build_contrl(ic, control_reference="C1")).interchanges


def test_undamaged_inputs_are_clean() -> None:
    assert parse_x12(X12).all_errors == []
    assert parse_edifact(EDIFACT).all_errors == []
