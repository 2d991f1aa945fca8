"""Reading stock quantities per product and location (the inventory domain).

Tryton keeps no quantity on a product: it sums the done stock moves into and out of a
location (and its children) whenever ``product.product``'s ``quantity`` field is read with
the location in the context (``{"locations": [id]}``). So a full read lists, per location,
the products whose quantity there is not zero (Tryton searches on the computed field); an
incremental read asks which stock moves were written or created since the last change seen
(a move's own dates: stock changes never touch the product's ``write_date``), and reads the
current quantity of each product those moves carry at each configured location holding one
of their ends. A position is its current quantity, not a change: it carries no source
version, the hub's arrival order decides.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Iterator
from decimal import Decimal
from typing import Any

from mastersync.connectors.tryton.reader import STAMPS, Cursor, changed_since, latest, ref
from mastersync.connectors.tryton.rpc import Transport
from mastersync.connectors.tryton.spec import TrytonStock
from mastersync.ports.connector import Page, ReadFailure, SourceRecord

Position = tuple[int, int]  # (product id, location id)


def position_key(product: int, location: int) -> str:
    """The source key of a position: product id @ location id."""
    return f"{product}@{location}"


def quantity_text(value: Any) -> str | None:
    """A quantity as Tryton sums it (a float) as decimal text without the float's noise
    (12.0 -> "12", 0.30000000000000004 -> "0.3")."""
    if value is None:
        return None
    number = Decimal(repr(round(float(value), 9)))
    if number == 0:
        return "0"
    return format(number.normalize(), "f")


def _bounds(row: dict[str, Any]) -> tuple[int, int]:
    return int(row["left"]), int(row["right"])


def touched_positions(
    moves: Iterable[dict[str, Any]],
    nested: dict[int, tuple[int, int]],
    locations: dict[int, tuple[int, int]],
) -> list[Position]:
    """The (product, location) pairs some moves change: a configured location counts the
    moves into and out of itself and of every location under it (bounds: Tryton's nested
    set, left and right, of the moves' locations and of the configured ones)."""
    out: set[Position] = set()
    for move in moves:
        product = move.get("product")
        if not product:
            continue
        for end in ("from_location", "to_location"):
            value = move.get(end)
            if not value or int(ref(value)) not in nested:
                continue
            left, right = nested[int(ref(value))]
            for location, (low, high) in locations.items():
                if low <= left and right <= high:
                    out.add((int(ref(product)), location))
    return sorted(out)


class StockReader:
    """Reads the quantities of products at a set of stock locations."""

    def __init__(self, transport: Transport, spec: TrytonStock, context: dict[str, Any]) -> None:
        self.transport = transport
        self.spec = spec
        # Archived products and locations still hold stock.
        self.context = {**context, "active_test": False}
        self.quantity_context = {**self.context, "stock_skip_warehouse": spec.storage_only}

    def locations(self, domain: list[Any] | None = None) -> dict[int, dict[str, Any]]:
        """The configured locations (further limited by ``domain``), by id, with their
        fields and nested-set bounds."""
        rows = self.transport.search_read(
            "stock.location",
            [*self.spec.locations, *(domain or [])],
            list(dict.fromkeys([*self.spec.location_fields, "left", "right"])),
            self.context,
            order=[("id", "ASC")],
        )
        return {int(r["id"]): r for r in rows}

    def positions(self) -> list[Position]:
        """Every position whose quantity is not zero, location by location."""
        out: list[Position] = []
        for location in self.locations():
            rows = self.transport.search_read(
                "product.product",
                [*self.spec.products, ["quantity", "!=", 0]],
                ["id"],
                {**self.quantity_context, "locations": [location]},
                order=[("id", "ASC")],
            )
            out += [(int(r["id"]), location) for r in rows]
        return out

    def newest_move(self) -> str | None:
        """The newest write or create date of any stock move."""
        found: list[Any] = []
        for name in STAMPS:
            rows = self.transport.search_read(
                "stock.move",
                [[name, "!=", None]],
                [name],
                self.context,
                order=[(name, "DESC")],
                limit=1,
            )
            found += [r.get(name) for r in rows]
        return latest(*found)

    def _moves(self, since: dt.datetime) -> tuple[list[dict[str, Any]], dict[str, str]]:
        """The stock moves written or created at or after ``since``, and their dates."""
        moves = self.transport.search_read(
            "stock.move",
            [changed_since(since)],
            ["product", "from_location", "to_location", *STAMPS],
            self.context,
        )
        return moves, {str(m["id"]): latest(*(m.get(s) for s in STAMPS)) or "" for m in moves}

    def moved(
        self, since: dt.datetime, seen: dict[str, str]
    ) -> tuple[list[Position], dict[str, str]]:
        """The positions changed by the stock moves written or created at or after
        ``since`` that were not seen with the same date before, and the dates of all of
        those moves (by move id)."""
        moves, dates = self._moves(since)
        fresh = [m for m in moves if seen.get(str(m["id"])) != dates[str(m["id"])]]
        ends = sorted(
            {
                int(ref(m[end]))
                for m in fresh
                for end in ("from_location", "to_location")
                if m.get(end)
            }
        )
        if not ends:
            return [], dates
        # Only the configured locations that hold one of the moves' ends (or are one).
        holding = self.locations([["parent", "parent_of", ends]])
        rows = self.transport.search_read(
            "stock.location", [["id", "in", ends]], ["left", "right"], self.context
        )
        nested = {int(r["id"]): _bounds(r) for r in rows}
        configured = {i: _bounds(r) for i, r in holding.items()}
        return touched_positions(fresh, nested, configured), dates

    def records(self, positions: list[Position]) -> list[dict[str, Any]]:
        """The current quantity of each position (of products and locations still there and
        still configured), with the product's and the location's fields."""
        if not positions:
            return []
        by_location: dict[int, list[int]] = defaultdict(list)
        for product, location in positions:
            by_location[location].append(product)
        places = self.locations([["id", "in", sorted(by_location)]])
        found: dict[Position, dict[str, Any]] = {}
        for location, products in by_location.items():
            place = places.get(location)
            if place is None:
                continue
            shown = {k: v for k, v in place.items() if k not in ("left", "right")}
            shown["id"] = location
            rows = self.transport.search_read(
                "product.product",
                [*self.spec.products, ["id", "in", sorted(set(products))]],
                list(dict.fromkeys([*self.spec.fields, "quantity"])),
                {**self.quantity_context, "locations": [location]},
                order=[("id", "ASC")],
            )
            for row in rows:
                quantity = row.pop("quantity", None)
                found[(int(row["id"]), location)] = {
                    "id": position_key(int(row["id"]), location),
                    "product": row,
                    "location": dict(shown),
                    "quantity": quantity_text(quantity),
                }
        return [found[p] for p in positions if p in found]

    def page(self, cursor: str | None, limit: int) -> Page:
        """The next page of positions changed since the saved cursor (every position with
        stock on the first read). Moves re-read within the lookback window with the dates
        already seen change nothing."""
        cur = Cursor.parse(cursor)
        if not cur.in_pass:
            lookback = dt.timedelta(seconds=self.spec.lookback)
            if cur.hw is None:
                # The moves up to now before listing (moves made meanwhile are read next
                # time); those within the window count as seen: the listing shows them.
                cur.hw, cur.read, cur.todo = self.newest_move(), {}, []
                cur.mark = cur.hw
                if cur.hw is not None:  # no move at all: no stock anywhere
                    cur.read = self._moves(dt.datetime.fromisoformat(cur.hw) - lookback)[1]
                    cur.todo = [list(p) for p in self.positions()]
            else:
                since = dt.datetime.fromisoformat(cur.hw) - lookback
                changed, cur.read = self.moved(since, cur.recent)
                cur.todo = [list(p) for p in changed]
                # The moves' dates are all from the search: the newest is how far it saw.
                cur.mark = latest(*cur.read.values())
            cur.in_pass = True
        batch, cur.todo = cur.todo[:limit], cur.todo[limit:]
        records: list[SourceRecord | ReadFailure] = [
            SourceRecord(row, f"stock:{row['id']}")
            for row in self.records([(int(p), int(loc)) for p, loc in batch])
        ]
        more = bool(cur.todo)
        if not more:
            cur.finish(self.spec.lookback)
        return Page(records, cur.dump(), more)

    def state(self, page_size: int) -> Iterator[tuple[str, dict[str, Any]]]:
        """Every position whose quantity is not zero, by product@location."""
        positions = self.positions()
        for start in range(0, len(positions), page_size):
            for row in self.records(positions[start : start + page_size]):
                yield str(row["id"]), row
