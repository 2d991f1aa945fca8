"""Reading a BottleCRM resource in full and handing over what changed.

A poll lists the resource (and, for accounts with embedded contacts, the contacts too),
shapes each record to the configured fields, and hands over the records whose fingerprint
differs from the cursor's, a page at a time. The listing of a pass is held in memory between
its pages; after a restart the cursor names a pass nobody holds, so the next poll lists again
and hands over what the cursor does not have yet. Nothing is lost: the cursor is saved only
after its page was ingested.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from mastersync.connectors.bottlecrm.client import Api
from mastersync.connectors.bottlecrm.diff import Cursor, Listed, changed, forget_missing
from mastersync.connectors.bottlecrm.spec import BottleCrmContacts, BottleCrmRead
from mastersync.ports.connector import Page, ReadFailure, SourceRecord


def _pick(row: dict[str, Any], names: list[str]) -> dict[str, Any]:
    """The named fields of a row (a field the row lacks is null: the API left it out)."""
    return {name: row.get(name) for name in names}


def linked_accounts(contact: dict[str, Any]) -> set[str]:
    """The accounts a contact belongs to: its primary account and the accounts listing it."""
    out = {str(a["id"]) for a in contact.get("linked_accounts") or [] if a.get("id")}
    if contact.get("account"):
        out.add(str(contact["account"]))
    return out


def embed_contacts(
    accounts: list[dict[str, Any]], contacts: list[dict[str, Any]], spec: BottleCrmContacts
) -> dict[str, list[dict[str, Any]]]:
    """Each account's contacts, in the order they were made (then by id): a contact added
    later comes last, so the others keep their places."""
    wanted = {str(a["id"]) for a in accounts}
    by_account: dict[str, list[dict[str, Any]]] = {key: [] for key in wanted}
    ordered = sorted(contacts, key=lambda c: (str(c.get("created_at") or ""), str(c["id"])))
    for contact in ordered:
        if not spec.inactive and contact.get("is_active") is False:
            continue
        for account in sorted(linked_accounts(contact) & wanted):
            by_account[account].append({"id": str(contact["id"]), **_pick(contact, spec.fields)})
    return by_account


def shape(
    rows: list[dict[str, Any]], spec: BottleCrmRead, contacts: list[dict[str, Any]]
) -> list[Listed]:
    """The records handed over: id, the configured fields, embedded contacts; ordered by key
    so that a pass's pages do not depend on the API's order."""
    names = spec.field_names()
    embedded = embed_contacts(rows, contacts, spec.contacts) if spec.contacts is not None else {}
    out = []
    for row in rows:
        key = str(row["id"])
        record = {"id": key, **_pick(row, names)}
        if spec.contacts is not None:
            record["contacts"] = embedded.get(key, [])
        out.append(Listed.of(key, record))
    return sorted(out, key=lambda item: item.key)


@dataclass
class _Pass:
    """A listing being handed over page by page."""

    id: str
    pending: list[Listed]
    listed: set[str] = field(default_factory=set)
    # The cursor the last page handed out: the pass goes on only from exactly there.
    handed: str | None = None


class ListingReader:
    """Reads the domains of one BottleCRM organisation; holds each domain's pass under way."""

    def __init__(self, api: Api, page_size: int) -> None:
        self.api = api
        self.page_size = page_size
        self._passes: dict[str, _Pass] = {}
        self._lock = threading.Lock()

    def listing(self, spec: BottleCrmRead) -> list[Listed]:
        """Every record of the domain as handed over."""
        rows = self.api.list_all(
            spec.resource, dict(spec.filter), self.page_size, inactive=spec.inactive
        )
        contacts: list[dict[str, Any]] = []
        if spec.contacts is not None:
            contacts = self.api.list_all(
                "contacts", {}, self.page_size, inactive=spec.contacts.inactive
            )
        return shape(rows, spec, contacts)

    def page(self, domain: str, spec: BottleCrmRead, cursor: str | None, limit: int) -> Page:
        """The next page of new or changed records after the saved cursor."""
        cur = Cursor.parse(cursor)
        with self._lock:
            current = self._passes.get(domain)
        # A cursor other than the one the pass handed out last (its page was not ingested,
        # or the process restarted): list again, and hand over what the cursor lacks.
        if current is None or cursor != current.handed:
            listing = self.listing(spec)
            current = _Pass(uuid.uuid4().hex, changed(listing, cur.seen), {i.key for i in listing})
            with self._lock:
                self._passes[domain] = current
        batch, current.pending = current.pending[:limit], current.pending[limit:]
        records: list[SourceRecord | ReadFailure] = []
        for item in batch:
            cur.seen[item.key] = item.print
            records.append(SourceRecord(item.record, f"{spec.resource}:{item.key}"))
        more = bool(current.pending)
        if more:
            cur.pass_id = current.id
            current.handed = cur.dump()
            return Page(records, current.handed, more)
        cur.seen = forget_missing(cur.seen, current.listed)
        cur.pass_id = None
        with self._lock:
            self._passes.pop(domain, None)
        return Page(records, cur.dump(), more)

    def state(self, spec: BottleCrmRead) -> Iterator[tuple[str, dict[str, Any]]]:
        """Every record the domain holds, by BottleCRM id."""
        for item in self.listing(spec):
            yield item.key, item.record
