"""Writing to Tryton: create or update a record (children matched by position) and leave
it active, or deactivate it. Values are typed by the model's field definitions
(ir.model.field), links (a country code, a unit symbol) are turned into the ids Tryton
wants."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from mastersync.connectors.tryton.codec import ValueProblem, plain, typed
from mastersync.connectors.tryton.rpc import Transport
from mastersync.connectors.tryton.spec import TrytonLink, TrytonWrite, TrytonWriteChild
from mastersync.ports.connector import TerminalError
from mastersync.ports.outbound import without_nulls

_TO_MANY = ("one2many", "many2many")
# Creates whose answer the hub may not have had, remembered at most this many (the oldest
# are forgotten first): an abandoned attempt is retried within minutes, not after thousands.
_UNSETTLED = 10_000


@dataclass
class Unsettled:
    """A create the hub has no acknowledgement of (it timed out, or the hub stopped waiting):
    the record's id once Tryton gave it; else the values sent (plain fields) and the model's
    highest id before, so that a retry can look for the record among those made since."""

    made: int | None = None
    below: int | None = None
    sent: dict[str, Any] = field(default_factory=dict)


def _same(current: Any, new: Any, ttype: str) -> bool:
    """Whether Tryton already holds the value (as read: plain; as to write: typed)."""
    if ttype in _TO_MANY:
        # Links added with ["add", ids]: nothing to do when all are there already. Never
        # removed, so a null (cleared at the hub) adds none and leaves the links alone.
        have = set(current or [])
        return all(set(op[1]) <= have for op in new or [] if op and op[0] == "add")
    wanted = plain(new)
    if current is None or wanted is None:
        return current is None and wanted is None
    if ttype == "numeric":
        try:
            return Decimal(str(current)) == Decimal(str(wanted))
        except InvalidOperation:
            return False
    if ttype == "boolean":
        return bool(current) == bool(wanted)
    if isinstance(current, dict):  # a Many2One read through a dotted path
        current = current.get("id")
    return bool(current == wanted)


def changed(
    current: dict[str, Any], values: dict[str, Any], types: dict[str, str]
) -> dict[str, Any]:
    """The values that differ from what the record holds: an unchanged field is not
    written (Tryton refuses some once set, a party's code, and every write moves the
    record's write_date, which would read it back as a change)."""
    return {k: v for k, v in values.items() if not _same(current.get(k), v, types.get(k, ""))}


class Fields:
    """Field definitions per model (name -> (type, relation)), read once."""

    def __init__(self, transport: Transport) -> None:
        self.transport = transport
        self._known: dict[str, dict[str, tuple[str, str | None]]] = {}
        self._lock = threading.Lock()

    def of(self, model: str) -> dict[str, tuple[str, str | None]]:
        """The model's fields."""
        with self._lock:
            if model not in self._known:
                rows = self.transport.search_read(
                    "ir.model.field", [["model", "=", model]], ["name", "ttype", "relation"], {}
                )
                if not rows:
                    raise TerminalError(f"Tryton has no model {model!r}")
                self._known[model] = {
                    str(r["name"]): (str(r["ttype"]), r.get("relation")) for r in rows
                }
            return self._known[model]


class RecordWriter:
    """Turns mapped records into Tryton values and writes them."""

    def __init__(self, transport: Transport, context: dict[str, Any]) -> None:
        self.transport = transport
        self.context = context
        self.fields = Fields(transport)
        self._links: dict[tuple[str, str, str], int] = {}
        # delivery (subscription and master id) -> its create whose outcome the hub lacks.
        self._unsettled: dict[str, Unsettled] = {}
        self._unsettled_lock = threading.Lock()

    def _link(self, link: TrytonLink, value: Any, field: str) -> int:
        key = (link.model, link.by, str(value))
        if key not in self._links:
            rows = self.transport.search_read(
                link.model, [[link.by, "=", value]], ["id"], self.context, limit=2
            )
            if len(rows) != 1:
                found = "no" if not rows else "more than one"
                raise TerminalError(f"{field}: {found} {link.model} with {link.by} = {value!r}")
            self._links[key] = int(rows[0]["id"])
        return self._links[key]

    def values(
        self,
        model: str,
        payload: dict[str, Any],
        links: dict[str, TrytonLink],
        where: str,
    ) -> dict[str, Any]:
        """A mapped record as Tryton values (without its children)."""
        known = self.fields.of(model)
        unknown = sorted(set(payload) - set(known))
        if unknown:
            raise TerminalError(f"{where}: {model} has no field(s) {', '.join(unknown)}")
        out: dict[str, Any] = {}
        for name, value in payload.items():
            ttype = known[name][0]
            if name in links and value is not None:
                link = links[name]
                if ttype in _TO_MANY:
                    ids = [self._link(link, v, f"{where}.{name}") for v in value]
                    out[name] = [["add", ids]]
                else:
                    out[name] = self._link(link, value, f"{where}.{name}")
                continue
            try:
                out[name] = typed(value, ttype, f"{where}.{name}")
            except ValueProblem as exc:
                raise TerminalError(str(exc)) from None
        return out

    def _exists(self, model: str, record_id: int) -> bool:
        rows = self.transport.search_read(
            model, [["id", "=", record_id]], ["id"], {**self.context, "active_test": False}
        )
        return bool(rows)

    def _match(self, spec: TrytonWrite, values: dict[str, Any]) -> int | None:
        if not spec.match or any(values.get(f) is None for f in spec.match):
            return None
        rows = self.transport.search_read(
            spec.model,
            [[f, "=", values[f]] for f in spec.match],
            ["id"],
            {**self.context, "active_test": False},
            limit=2,
        )
        if len(rows) > 1:
            described = ", ".join(f"{f} = {values[f]!r}" for f in spec.match)
            raise TerminalError(f"more than one {spec.model} with {described}")
        return int(rows[0]["id"]) if rows else None

    def settle(self, delivery: str) -> None:
        """The hub has the acknowledgement of the delivery's record: nothing to recall."""
        with self._unsettled_lock:
            self._unsettled.pop(delivery, None)

    def _remember(self, delivery: str, unsettled: Unsettled) -> None:
        with self._unsettled_lock:
            self._unsettled.pop(delivery, None)  # re-inserted: newest last
            self._unsettled[delivery] = unsettled
            while len(self._unsettled) > _UNSETTLED:
                del self._unsettled[next(iter(self._unsettled))]

    def _recall(self, spec: TrytonWrite, delivery: str) -> int | None:
        """The record an earlier create of this delivery made, when its outcome never
        reached the hub (None: it made none that can be found)."""
        with self._unsettled_lock:
            unsettled = self._unsettled.get(delivery)
        if unsettled is None:
            return None
        if unsettled.made is not None:
            return unsettled.made if self._exists(spec.model, unsettled.made) else None
        if unsettled.below is None or not unsettled.sent:
            return None
        # No match fields to find it by: a record made since, holding every value sent.
        domain = [["id", ">", unsettled.below]] + [[k, "=", v] for k, v in unsettled.sent.items()]
        rows = self.transport.search_read(
            spec.model, domain, ["id"], {**self.context, "active_test": False}, limit=2
        )
        if len(rows) > 1:
            raise TerminalError(
                f"{spec.model}: a create for {delivery} timed out, and {len(rows)} records "
                "with the values it sent were made since; link the right one by hand (or set "
                "the write's 'match' fields)"
            )
        return int(rows[0]["id"]) if rows else None

    def _highest(self, model: str) -> int:
        rows = self.transport.search_read(
            model,
            [],
            ["id"],
            {**self.context, "active_test": False},
            order=[("id", "DESC")],
            limit=1,
        )
        return int(rows[0]["id"]) if rows else 0

    def _create(
        self, spec: TrytonWrite, values: dict[str, Any], full: dict[str, Any], delivery: str | None
    ) -> int:
        """Create the record, remembering the attempt for a retry whose hub never had its
        answer (a timeout may come after Tryton made the record)."""
        if delivery is None:
            return self.transport.create(spec.model, full, self.context)
        unsettled = Unsettled()
        if not spec.match:
            # Nothing else would find the record again: the values sent do, above this id.
            sent = {k: v for k, v in values.items() if isinstance(v, str | int | float | bool)}
            unsettled = Unsettled(below=self._highest(spec.model), sent=sent)
        self._remember(delivery, unsettled)
        try:
            made = self.transport.create(spec.model, full, self.context)
        except TerminalError:
            self.settle(delivery)  # refused: nothing was made
            raise
        # Kept until the hub has the acknowledgement (settle): it may have stopped waiting.
        self._remember(delivery, Unsettled(made=made))
        return made

    def _children(
        self, spec: TrytonWrite, payload: dict[str, Any], target: int | None
    ) -> dict[str, Any]:
        """One2Many values as operations: existing active children updated in order, extra
        ones created, surplus ones deleted; archived children are left alone."""
        known = self.fields.of(spec.model)
        # One2Many fields in the record are written as children, declared or not. A null
        # (cleared at the hub) leaves them alone: clearing would delete every active child,
        # and Tryton deletes a child record outright (an address with the documents that
        # point to it, or refused because they do), which no cleared field of the hub can
        # mean. An empty list still removes them.
        wanted_names = [
            n
            for n in dict.fromkeys([*spec.children, *payload])
            if payload.get(n) is not None
            and (n in spec.children or known.get(n, ("", None))[0] == "one2many")
        ]
        out: dict[str, Any] = {}
        existing: dict[str, list[int]] = {}
        if target is not None and wanted_names:
            # active_test False finds an archived record, but then its One2Many values hold
            # its archived children too: those are filtered out below.
            [row] = self.transport.search_read(
                spec.model,
                [["id", "=", target]],
                wanted_names,
                {**self.context, "active_test": False},
            ) or [{}]
            existing = {n: [int(i) for i in row.get(n) or []] for n in wanted_names}
        for name in wanted_names:
            child = spec.children.get(name) or TrytonWriteChild()
            relation = known.get(name, ("", None))[1]
            if relation is None:
                raise TerminalError(f"{spec.model}.{name} is not a One2Many")
            wanted = [
                self.values(relation, item, child.links, f"{name}[{i}]")
                for i, item in enumerate(payload[name])
            ]
            have = existing.get(name, [])
            ops: list[Any] = []
            if have:
                # Read under the reader's context (active only): the reader embeds the active
                # children only, so the payload's children line up with those. An archived
                # one would otherwise be overwritten, and an active one deleted as surplus.
                rows = self.transport.search_read(
                    relation,
                    [["id", "in", have]],
                    sorted({"id", *(k for w in wanted for k in w)}),
                    self.context,
                )
                current = {int(r["id"]): r for r in rows}
                have = [i for i in have if i in current]  # in the One2Many's order
                types = {k: v[0] for k, v in self.fields.of(relation).items()}
                for i, v in zip(have, wanted, strict=False):
                    delta = changed(current.get(i, {}), v, types)
                    if delta:
                        ops.append(["write", [i], delta])
            if len(wanted) > len(have):
                ops.append(["create", [without_nulls(w) for w in wanted[len(have) :]]])
            if len(have) > len(wanted):
                ops.append(["delete", have[len(wanted) :]])
            if ops:
                out[name] = ops
        return out

    def _activation(self, spec: TrytonWrite, payload: dict[str, Any]) -> dict[str, Any]:
        """The active flag an upsert may set (a record created, or one the hub deactivated
        and now selects again). Empty when the mapping gives the flag a value (null is
        none: the golden record lacks it), or the model has no such field."""
        name = spec.active_field
        if payload.get(name) is not None or name not in self.fields.of(spec.model):
            return {}
        return {name: True}

    def upsert(
        self,
        spec: TrytonWrite,
        payload: dict[str, Any],
        target_key: str | None,
        delivery: str | None = None,
        reactivate: bool = False,
    ) -> int:
        """Create or update one record (only what differs); its id. A record created is
        active, and so is one the hub deactivated (``reactivate``), unless the mapping gives
        its `active_field`; one a person archived stays so. ``delivery`` names the record
        across attempts (subscription and master id): a retry finds what an attempt whose
        answer was lost made, before ``match`` and before creating."""
        known = self.fields.of(spec.model)
        activation = self._activation(spec, payload)
        own = {
            k: v
            for k, v in payload.items()
            if k not in spec.children
            and known.get(k, ("", None))[0] != "one2many"
            # A null flag would be written as NULL: neither active nor archived to Tryton.
            and not (k in activation and v is None)
        }
        values = self.values(spec.model, own, spec.links, spec.model)
        target = int(target_key) if target_key and target_key.isdigit() else None
        if target is not None and not self._exists(spec.model, target):
            target = None  # deleted in Tryton: create it again
        if target is None and delivery is not None:
            target = self._recall(spec, delivery)
        if target is None:
            target = self._match(spec, values)
        children = self._children(spec, payload, target)
        if target is None:
            extra = self.values(spec.model, spec.on_create, spec.links, f"{spec.model} on_create")
            # Without its nulls (fields cleared at the hub): a None created would override
            # Tryton's default and `on_create`'s value.
            given = without_nulls(values)
            # Set on creation too: another `active_field` than `active` may default to false.
            full = {**extra, **activation, **given, **children}
            return self._create(spec, given, full, delivery)
        if reactivate:
            # Compared like the other values: written only to a record found archived
            # (every write moves write_date, which the reader would take as a change).
            values = {**values, **activation}
        if values:
            [current] = self.transport.search_read(
                spec.model,
                [["id", "=", target]],
                sorted(values),
                {**self.context, "active_test": False},
            )
            types = {k: v[0] for k, v in self.fields.of(spec.model).items()}
            values = changed(current, values, types)
        if values or children:
            # active_test False, as for the reads above: Tryton's REST API looks the record up
            # under the request's context, and would answer 404 for an archived one.
            try:
                self.transport.write(
                    spec.model,
                    [target],
                    {**values, **children},
                    {**self.context, "active_test": False},
                )
            except TerminalError as exc:
                # Tryton names a required field by its label ("Name"), not as the mapping
                # does: say which were cleared.
                nulls = sorted(k for k, v in values.items() if v is None)
                if not nulls:
                    raise
                raise TerminalError(
                    f"{exc.message} (sent as null, cleared at the hub: {', '.join(nulls)})",
                    status=exc.status,
                ) from None
        return target

    def deactivate(self, spec: TrytonWrite, target_key: str) -> None:
        """Archive a record (nothing to do when it is gone)."""
        if target_key.isdigit() and self._exists(spec.model, int(target_key)):
            # active_test False: over REST an archived record is not found (404) without it.
            self.transport.write(
                spec.model,
                [int(target_key)],
                {spec.active_field: False},
                {**self.context, "active_test": False},
            )
