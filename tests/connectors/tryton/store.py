"""A small writable Tryton for the writer's tests, reachable directly (as a Transport) or
through Tryton's REST routes (an httpx mock), with the behaviour of trytond 8.2 the writer
depends on:

- ``active_test``: a search leaves out records whose ``active`` is false unless the context
  says ``active_test: False`` or the domain names ``active``
  (``ModelStorage._search_domain_active``); a One2Many's value is a search on its target, so
  it leaves archived children out the same way (``fields.One2Many.get``).
- REST ``PUT /model/<name>/<id>`` finds the record with ``search([('id', '=', id)])`` under
  the request's ``X-Tryton-Context``: 404 when that search does not find it
  (``protocols/rest.py``, ``update``); a ConcurrencyException is HTTP 423
  (``protocols/jsonrpc.py``, ``JSONProtocol.response``).
"""

from __future__ import annotations

import base64
from typing import Any

import httpx
import orjson

from mastersync.connectors.tryton.rpc import Rest

# model -> field -> (ttype, relation)
FIELDS: dict[str, dict[str, tuple[str, str | None]]] = {
    "party.party": {
        "code": ("char", None),
        "name": ("char", None),
        "active": ("boolean", None),
        "addresses": ("one2many", "party.address"),
        "contact_mechanisms": ("one2many", "party.contact_mechanism"),
    },
    "party.address": {
        "party": ("many2one", "party.party"),
        "street": ("char", None),
        "city": ("char", None),
        "active": ("boolean", None),
    },
    "party.contact_mechanism": {
        "party": ("many2one", "party.party"),
        "type": ("selection", None),
        "value": ("char", None),
        "active": ("boolean", None),
    },
}
# (model, One2Many) -> the target's Many2One back to the model
PARENTS = {
    ("party.party", "addresses"): "party",
    ("party.party", "contact_mechanisms"): "party",
}


class ConcurrencyError(Exception):
    """Tryton's ConcurrencyException: the records were modified meanwhile."""


class TrytonStore:
    """Records per model, created, written and searched as Tryton does. Records every write
    with its context."""

    def __init__(self) -> None:
        self.tables: dict[str, dict[int, dict[str, Any]]] = {m: {} for m in FIELDS}
        self.next_id = 100
        self.writes: list[tuple[str, list[int], dict[str, Any], dict[str, Any]]] = []
        self.locked = False  # writes fail with a ConcurrencyException

    def add(self, model: str, **values: Any) -> int:
        """A new record (active unless told otherwise); its id."""
        self.next_id += 1
        self.tables[model][self.next_id] = {"id": self.next_id, "active": True, **values}
        return self.next_id

    def _holds(self, row: dict[str, Any], clause: list[Any]) -> bool:
        name, op, value = clause
        have = row.get(name)
        if op == "=":
            return bool(have == value)
        if op == "in":
            return have in value
        raise AssertionError(f"the store knows no operator {op!r}")

    def search(self, model: str, domain: list[Any], context: dict[str, Any]) -> list[int]:
        """Ids matching a domain of leaves, in id order, with Tryton's active_test."""
        active_test = context.get("active_test", True) is not False
        if "active" in FIELDS[model] and not any(c[0] == "active" for c in domain):
            domain = [*domain, ["active", "=", True]] if active_test else domain
        rows = sorted(self.tables[model].values(), key=lambda r: int(r["id"]))
        return [int(r["id"]) for r in rows if all(self._holds(r, c) for c in domain)]

    def _value(self, model: str, record_id: int, name: str, context: dict[str, Any]) -> Any:
        relation = FIELDS[model].get(name, ("", None))[1]
        if (model, name) in PARENTS and relation is not None:
            return self.search(relation, [[PARENTS[(model, name)], "=", record_id]], context)
        return self.tables[model][record_id].get(name)

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
        """Matching records with the fields asked for (and the id)."""
        if model == "ir.model.field":
            [[_, _, wanted]] = domain
            return [
                {"id": i, "name": n, "ttype": t, "relation": r}
                for i, (n, (t, r)) in enumerate(FIELDS.get(wanted, {}).items(), 1)
            ]
        out = [
            {"id": i, **{f: self._value(model, i, f, context) for f in fields if f != "id"}}
            for i in self.search(model, domain, context)
        ]
        return out[:limit] if limit is not None else out

    def _apply(self, model: str, record_id: int, values: dict[str, Any]) -> None:
        for name, value in values.items():
            if (model, name) not in PARENTS:
                self.tables[model][record_id][name] = value
                continue
            relation, parent = FIELDS[model][name][1], PARENTS[(model, name)]
            assert relation is not None
            for op in value:
                if op[0] == "write":
                    for i in op[1]:
                        self.tables[relation][i].update(op[2])
                elif op[0] == "create":
                    for v in op[1]:
                        self.add(relation, **{parent: record_id, **v})
                elif op[0] == "delete":
                    for i in op[1]:
                        del self.tables[relation][i]
                else:
                    raise AssertionError(f"the store knows no operation {op[0]!r}")

    def create(self, model: str, values: dict[str, Any], context: dict[str, Any]) -> int:
        """A new record with its children; its id."""
        new = self.add(model)
        self._apply(model, new, values)
        return new

    def write(
        self, model: str, ids: list[int], values: dict[str, Any], context: dict[str, Any]
    ) -> None:
        """Change records (JSON-RPC's write takes the ids as given, archived or not)."""
        if self.locked:
            raise ConcurrencyError("Records were modified in the meanwhile")
        self.writes.append((model, list(ids), values, context))
        for i in ids:
            self._apply(model, i, values)

    def preferences(self) -> dict[str, Any]:
        """No preferences."""
        return {}

    def close(self) -> None:
        """Nothing to close."""


def _decode(text: str) -> Any:
    return orjson.loads(base64.urlsafe_b64decode(text))


def rest_routes(store: TrytonStore) -> httpx.MockTransport:
    """Tryton's REST routes the connector uses (search, create, update) over the store."""

    def handler(request: httpx.Request) -> httpx.Response:
        header = request.headers.get("X-Tryton-Context")
        context = _decode(header) if header else {}
        path = request.url.path.split("/rest", 1)[1]
        parts = path.strip("/").split("/")
        if parts[0] != "model" or len(parts) not in (2, 3):
            return httpx.Response(404)
        model = parts[1]
        if request.method == "GET" and len(parts) == 2:
            params = request.url.params
            limit = int(params["s"]) if "s" in params else None
            rows = store.search_read(
                model, _decode(params["d"]), params.get_list("f"), context, limit=limit
            )
            return httpx.Response(200, json=[{**r, "__name__": model} for r in rows])
        if request.method == "POST" and len(parts) == 2:
            new = store.create(model, orjson.loads(request.content), context)
            return httpx.Response(201, json={"id": new, "__name__": model})
        if request.method == "PUT" and len(parts) == 3:
            record_id = int(parts[2])
            if not store.search(model, [["id", "=", record_id]], context):
                return httpx.Response(404)  # record, = Model.search([('id', '=', id)])
            try:
                store.write(model, [record_id], orjson.loads(request.content), context)
            except ConcurrencyError as exc:
                return httpx.Response(423, text=str(exc))
            return httpx.Response(200, json={"id": record_id, "__name__": model})
        return httpx.Response(405)

    return httpx.MockTransport(handler)


def rest_client(store: TrytonStore) -> Rest:
    """The connector's REST transport, talking to the store."""
    rest = Rest("http://erp.invalid", "db", "key", 5)
    rest._client.close()
    rest._client = httpx.Client(
        base_url="http://erp.invalid/db/rest",
        transport=rest_routes(store),
        headers={"Accept": "application/json", "Authorization": "bearer key"},
    )
    return rest
