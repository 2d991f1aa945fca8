"""A stand-in for a Tryton server's search_read: tables of plain rows and the few domain
operators the readers use (tests/e2e/real runs the readers against the real server)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mastersync.connectors.tryton.codec import plain


@dataclass
class FakeTryton:
    """Rows per model; product quantities per (product, location), as a location's context
    asks for them. Records every call."""

    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    quantities: dict[tuple[int, int], float] = field(default_factory=dict)
    calls: list[tuple[str, list[Any], dict[str, Any]]] = field(default_factory=list)

    def _ancestors(self, model: str, ids: list[int]) -> set[int]:
        parents = {int(r["id"]): r.get("parent") for r in self.tables[model]}
        out: set[int] = set()
        for i in ids:
            current: int | None = i
            while current is not None:
                out.add(current)
                current = parents.get(current)
        return out

    def _holds(self, model: str, row: dict[str, Any], clause: list[Any]) -> bool:
        if clause and clause[0] == "OR":
            return any(self._holds(model, row, c) for c in clause[1:])
        if clause and isinstance(clause[0], list):
            return all(self._holds(model, row, c) for c in clause)
        name, op, value = clause[:3]
        have, value = row.get(name), plain(value)
        if op == "=":
            return bool(have == value)
        if op == "!=":
            return bool(have != value)
        if op == "in":
            return have in value
        if op == ">=":
            return have is not None and str(have) >= str(value)
        if op == "parent_of":
            return int(row["id"]) in self._ancestors(model, list(value))
        raise AssertionError(f"the fake knows no operator {op!r}")

    def search_read(
        self,
        model: str,
        domain: list[Any],
        fields: list[str],
        context: dict[str, Any],
        *,
        order: list[tuple[str, str]] | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """Matching rows with the fields asked for (dotted names: not supported)."""
        self.calls.append((model, domain, context))
        rows = []
        for source in self.tables.get(model, []):
            row = dict(source)
            if model == "product.product" and "locations" in context:
                [location] = context["locations"]
                row["quantity"] = self.quantities.get((int(row["id"]), location), 0.0)
            if all(self._holds(model, row, c) for c in domain):
                rows.append(row)
        for name, direction in reversed(order or []):
            rows.sort(key=lambda r: str(r.get(name) or ""), reverse=direction.startswith("DESC"))
        rows = rows[:limit] if limit is not None else rows
        return [{k: v for k, v in r.items() if k in fields or k == "id"} for r in rows]

    def create(self, model: str, values: dict[str, Any], context: dict[str, Any]) -> int:
        """Not used by readers."""
        raise AssertionError("readers do not create")

    def write(
        self, model: str, ids: list[int], values: dict[str, Any], context: dict[str, Any]
    ) -> None:
        """Not used by readers."""
        raise AssertionError("readers do not write")

    def preferences(self) -> dict[str, Any]:
        """No preferences."""
        return {}

    def close(self) -> None:
        """Nothing to close."""
