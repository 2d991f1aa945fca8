"""Reading a Tryton model incrementally and in full.

A record has changed when its own write_date or create_date (write_date is empty on records
never updated), a child's (a party's address) or a related record's (a product's template)
is at or after the newest change Tryton held when the previous pass began, less a lookback:
records sharing a timestamp and late commits are read again, and ingest skips what it already
applied. A record deleted in Tryton leaves no trace: only a full listing (``read_state``)
shows it is gone.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from mastersync.connectors.tryton.codec import stamp
from mastersync.connectors.tryton.rpc import Transport
from mastersync.connectors.tryton.spec import TrytonChild, TrytonRead
from mastersync.ports.connector import Page, ReadFailure, SourceRecord

STAMPS = ("write_date", "create_date")


def changed_since(since: dt.datetime) -> list[Any]:
    """A Tryton domain: written or created at or after ``since``."""
    at = stamp(since)
    return ["OR", ["write_date", ">=", at], ["create_date", ">=", at]]


def latest(*values: Any) -> str | None:
    """The newest of some ISO 8601 dates (None when all are empty)."""
    found = [str(v) for v in values if v]
    return max(found) if found else None


@dataclass
class Cursor:
    """Where a reader is: the newest change Tryton held when the last pass searched, what
    was read within the lookback window before it (so that a re-read within the window is
    not handed over again), and the rest of a pass under way."""

    hw: str | None = None
    # id -> the _changed it was handed over with, for changes within the lookback window.
    recent: dict[str, str] = field(default_factory=dict)
    # During a pass: what is still to read (record ids; a stock read's [product, location]
    # pairs), what the pass handed over so far, and where the high-water mark moves when
    # the pass ends: the newest change its search could see. Not the newest change read:
    # records on later pages are read after the search, and a change made meanwhile to a
    # record on an earlier page is older than theirs.
    todo: list[Any] = field(default_factory=list)
    read: dict[str, str] = field(default_factory=dict)
    in_pass: bool = False
    mark: str | None = None

    @classmethod
    def parse(cls, text: str | None) -> Cursor:
        """The cursor saved after the last page (None: from the beginning)."""
        if not text:
            return cls()
        data = orjson.loads(text)
        return cls(
            data.get("hw"),
            dict(data.get("recent", {})),
            list(data.get("todo", [])),
            dict(data.get("read", {})),
            "todo" in data,
            # A pass saved without a mark (an older cursor) ends where it began: read again.
            data.get("mark"),
        )

    def dump(self) -> str | None:
        """The cursor to save."""
        data: dict[str, Any] = {"hw": self.hw, "recent": self.recent}
        if self.in_pass:
            data["todo"] = self.todo
            data["read"] = self.read
            data["mark"] = self.mark
        return orjson.dumps(data).decode()

    def finish(self, lookback: float) -> None:
        """End a pass: move the high-water mark to the pass's mark, keep what lies within
        the window (and what was read newer than the mark: it is read again next time)."""
        merged = {**self.recent, **self.read}
        self.hw = latest(self.hw, self.mark)
        if self.hw is not None:
            low = (dt.datetime.fromisoformat(self.hw) - dt.timedelta(seconds=lookback)).isoformat()
            merged = {k: v for k, v in merged.items() if v >= low}
        self.recent, self.read, self.todo, self.in_pass = merged, {}, [], False
        self.mark = None


class ModelReader:
    """Reads one domain's records from one Tryton model."""

    def __init__(self, transport: Transport, spec: TrytonRead, context: dict[str, Any]) -> None:
        self.transport = transport
        self.spec = spec
        self.context = {**context, "active_test": False} if spec.inactive else dict(context)
        # Children are watched whether archived or not, and embedded when active.
        self.watch_context = {**context, "active_test": False}
        self.child_context = dict(context)

    def _ids(self, domain: list[Any]) -> list[int]:
        rows = self.transport.search_read(
            self.spec.model, domain, ["id"], self.context, order=[("id", "ASC")]
        )
        return [int(r["id"]) for r in rows]

    def newest_change(self) -> str | None:
        """The newest write or create date of the model, its children and its related
        records, archived ones included."""
        models = [
            self.spec.model,
            *(c.model for c in self.spec.children.values()),
            *(r.model for r in self.spec.related),
        ]
        found: list[Any] = []
        for model in dict.fromkeys(models):
            for name in STAMPS:
                # Not null: Tryton sorts nulls first when descending.
                rows = self.transport.search_read(
                    model,
                    [[name, "!=", None]],
                    [name],
                    self.watch_context,
                    order=[(name, "DESC")],
                    limit=1,
                )
                found += [r.get(name) for r in rows]
        return latest(*found)

    def changed_ids(self, since: dt.datetime | None) -> list[int]:
        """Ids of the records changed at or after ``since`` (all of them for None)."""
        spec = self.spec
        if since is None:
            return self._ids(list(spec.filter))
        changed = changed_since(since)
        alternatives: list[Any] = [changed]
        for child in spec.children.values():
            rows = self.transport.search_read(
                child.model, [changed], [child.parent], self.watch_context
            )
            parents = sorted({int(ref(r.get(child.parent))) for r in rows if r.get(child.parent)})
            if parents:
                alternatives.append([child.via, "in", parents])
        for related in spec.related:
            rows = self.transport.search_read(related.model, [changed], ["id"], self.watch_context)
            if rows:
                alternatives.append([related.via, "in", sorted(int(r["id"]) for r in rows)])
        return self._ids([*spec.filter, ["OR", *alternatives]])

    def records(self, ids: list[int]) -> list[dict[str, Any]]:
        """The records with these ids (those that still exist), children embedded, each with
        ``_changed``: the newest write or create date of the record, its related records and
        its children (the source version of the whole)."""
        if not ids:
            return []
        spec = self.spec
        names = list(dict.fromkeys([*spec.fields, *STAMPS]))
        for related in spec.related:
            names += [f"{related.via}.{s}" for s in STAMPS]
        # A child's parent reached through another field of the record: read that field too,
        # and hand it over only if it was asked for.
        roots = {n.split(".")[0] for n in names}
        hidden = {c.via for c in spec.children.values() if c.via != "id"} - roots
        rows = self.transport.search_read(
            spec.model,
            [["id", "in", ids]],
            [*names, *sorted(hidden)],
            self.context,
            order=[("id", "ASC")],
        )
        by_id = {int(r["id"]): r for r in rows}
        changes = {i: latest(*(r.get(s) for s in STAMPS)) for i, r in by_id.items()}
        for i, row in by_id.items():
            for related in spec.related:
                linked = row.get(related.via)
                if isinstance(linked, dict):
                    changes[i] = latest(changes[i], *(linked.pop(s, None) for s in STAMPS))
                    if set(linked) == {"id"}:  # only read for its dates: keep the id
                        row[related.via] = linked["id"]
        for name, child in spec.children.items():
            self._embed(name, child, by_id, changes)
        for row in by_id.values():
            for via in hidden:
                row.pop(via, None)
        out = []
        for i in ids:
            if i in by_id:
                by_id[i]["_changed"] = changes[i]
                out.append(by_id[i])
        return out

    def _embed(
        self,
        name: str,
        child: TrytonChild,
        by_id: dict[int, dict[str, Any]],
        changes: dict[int, str | None],
    ) -> None:
        """Put each record's children under ``name`` and fold their dates into its change."""
        owners: dict[int, list[int]] = defaultdict(list)
        for i, row in by_id.items():
            row[name] = []
            value = i if child.via == "id" else row.get(child.via)
            if value:
                owners[int(ref(value))].append(i)
        if not owners:
            return
        parents = sorted(owners)
        only = [child.only_for] if child.only_for else []

        def belongs(c: dict[str, Any], i: int) -> bool:
            bound = c.get(child.only_for) if child.only_for else None
            return not bound or int(ref(bound)) == i

        watched = self.transport.search_read(
            child.model,
            [[child.parent, "in", parents]],
            [child.parent, *only, *STAMPS],
            self.watch_context,
        )
        for w in watched:
            for i in owners.get(int(ref(w[child.parent])), []):
                if belongs(w, i):
                    changes[i] = latest(changes[i], *(w.get(s) for s in STAMPS))
        embedded = self.transport.search_read(
            child.model,
            [*child.filter, [child.parent, "in", parents]],
            list(dict.fromkeys([*child.fields, child.parent, *only, *STAMPS])),
            self.child_context,
            order=list(child.order),
        )
        # Handed over: the fields asked for (a dotted one under its first name) and the id.
        keep = {f.split(".")[0] for f in child.fields} - {child.parent} | {"id"}
        for c in embedded:
            targets = [i for i in owners.get(int(ref(c[child.parent])), []) if belongs(c, i)]
            shown = {k: v for k, v in c.items() if k in keep}
            for i in targets:
                by_id[i][name].append(dict(shown))

    def page(self, cursor: str | None, limit: int) -> Page:
        """The next page of changed records after the saved cursor. Records re-read within
        the lookback window with the change already handed over are left out."""
        cur = Cursor.parse(cursor)
        if not cur.in_pass:
            since = None
            if cur.hw is not None:
                since = dt.datetime.fromisoformat(cur.hw) - dt.timedelta(seconds=self.spec.lookback)
            # The mark before the search: whatever it finds is at most that new, and a change
            # made after it (to a record of any page) is newer, so read by the next pass.
            cur.mark = self.newest_change()
            cur.todo, cur.read, cur.in_pass = self.changed_ids(since), {}, True
        batch, cur.todo = cur.todo[:limit], cur.todo[limit:]
        records: list[SourceRecord | ReadFailure] = []
        for row in self.records(batch):
            key, changed = str(row["id"]), row["_changed"]
            if changed is not None and cur.recent.get(key) == changed:
                continue  # read before, unchanged since
            if changed is not None:
                cur.read[key] = changed
            records.append(SourceRecord(row, f"{self.spec.model}:{key}"))
        more = bool(cur.todo)
        if not more:
            cur.finish(self.spec.lookback)
        return Page(records, cur.dump(), more)

    def state(self, page_size: int) -> Iterator[tuple[str, dict[str, Any]]]:
        """Every record the model holds under the filter, by id."""
        ids = self.changed_ids(None)
        for start in range(0, len(ids), page_size):
            for row in self.records(ids[start : start + page_size]):
                yield str(row["id"]), row


def ref(value: Any) -> Any:
    """A Many2One as read: an id, or a dict with one when read through a dotted path."""
    return value["id"] if isinstance(value, dict) else value
