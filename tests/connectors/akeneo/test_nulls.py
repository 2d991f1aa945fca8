"""A field cleared at the hub comes as null, against akeneo-mock-server (the testbed of
tests/e2e/real): a product the PIM has gets the value's data null (Akeneo erases the value)
and an empty list for a list property (Akeneo refuses null there); a product the PATCH
creates gets no null at all, so the PIM's defaults apply."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from mastersync.domain.subscriptions import Operation
from mastersync.ports.outbound import TerminalFailure
from tests.connectors.akeneo.conftest import Pim
from tests.connectors.akeneo.test_reactivation import connector, send

# One worker runs them all: one mock server (scripts/test uses --dist loadgroup).
pytestmark = pytest.mark.xdist_group("akeneo")


def test_a_null_erases_the_value_and_empties_a_list_of_a_product_the_pim_has(
    pim: Pim, tmp_path: Path
) -> None:
    """Review: a null list property went out as null, which Akeneo refuses (422)."""
    pim.post("/categories", {"code": "gloves", "parent": None})
    c = connector(pim, tmp_path)
    made = {"identifier": "N-1", "categories": ["gloves"], "values": {"name": "Gloves"}}
    assert send(c, Operation.UPSERT, made, None, 1, reactivate=False) == "N-1"
    cleared = {"identifier": "N-1", "categories": None, "values": {"name": None}}
    assert send(c, Operation.UPSERT, cleared, "N-1", 2, reactivate=False) == "N-1"
    product = pim.product("N-1")
    assert product is not None
    assert product["categories"] == []
    assert [entry["data"] for entry in product["values"].get("name", [])] in ([], [None])
    assert (product["enabled"], product["family"]) == (True, "mro")
    asyncio.run(c.close())


def test_a_product_the_patch_creates_gets_no_null(pim: Pim, tmp_path: Path) -> None:
    """Review: the create carried the nulls, a null list and a value whose data is null."""
    c = connector(pim, tmp_path)
    payload = {"identifier": "N-2", "categories": None, "values": {"name": None}}
    assert send(c, Operation.UPSERT, payload, None, 1, reactivate=False) == "N-2"
    product = pim.product("N-2")
    assert product is not None
    assert product.get("categories", []) == []  # the mock lists no property it was not given
    assert "name" not in (product.get("values") or {})
    asyncio.run(c.close())


def test_a_null_the_pim_refuses_fails_for_good_naming_the_property(
    pim: Pim, tmp_path: Path
) -> None:
    """An object property has no null in Akeneo (it merges objects key by key): sent as it
    is, its refusal says which property."""
    c = connector(pim, tmp_path)
    made = {"identifier": "N-3", "associations": {"X_SELL": {"products": []}}}
    assert send(c, Operation.UPSERT, made, None, 1, reactivate=False) == "N-3"
    with pytest.raises(TerminalFailure) as refused:
        send(c, Operation.UPSERT, {"identifier": "N-3", "associations": None}, "N-3", 2, False)
    assert refused.value.status == 422
    assert "Property `associations`" in refused.value.message
    asyncio.run(c.close())
