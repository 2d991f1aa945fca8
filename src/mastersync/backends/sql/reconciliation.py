"""The store's side of reconciliation on SQL: xrefs in key order, the newest events of
records and their open dead letters (what a repair sends again and settles), and run
summaries."""

from __future__ import annotations

from collections.abc import Collection, Iterator
from typing import Any

import sqlalchemy as sa

from mastersync.backends.sql import rows
from mastersync.backends.sql.tables import exceptions, outbox, reconciliation_runs, xref
from mastersync.domain.golden import ChangeEvent, Contribution
from mastersync.domain.problems import ProblemKind
from mastersync.domain.reconciliation import ReconciliationRun, Role
from mastersync.domain.records import ExceptionEntry, ExceptionStatus

# IN-lists of master ids worth a query each when looking for open dead letters; a replay of
# more records reads its subscription's open dead letters in one pass instead.
_DEAD_LETTER_CHUNKS = 10


def _run(row: Any) -> ReconciliationRun:
    return ReconciliationRun(
        row["run_id"],
        row["system"],
        row["domain"],
        Role(row["role"]),
        rows.instant(row["started_at"]),
        row["subscription"],
        rows.instant(row["finished_at"]),
        dict(rows.json_value(row["counts"])),
        dict(rows.json_value(row["repair"])),
    )


class SqlReconciliationRepository:
    """Mixed into the SQL unit of work (it provides ``conn``)."""

    conn: sa.Connection

    def scan_xrefs(self, domain: str, system: str, batch: int = 5000) -> Iterator[Contribution]:
        """Every cross-reference of a system's records of a domain, by source key.

        Keyset pages (the primary key's order) keep each query short however many records
        the system has, and nothing is held but the page being read.
        """
        x = xref.c
        after = ""
        while True:
            q = (
                sa.select(xref)
                .where(x.domain == domain, x.system == system, x.source_key > after)
                .order_by(x.source_key)
                .limit(batch)
            )
            found = [rows.contribution(r) for r in self.conn.execute(q).mappings()]
            yield from found
            if len(found) < batch:
                return
            after = found[-1].key

    def newest_events(
        self, domain: str, master_ids: Collection[str]
    ) -> dict[str, tuple[int, ChangeEvent]]:
        """master id -> (outbox position, event) of the newest event of each record (records
        without one are left out); what a repair sends again.

        One query per ``rows.IN_CHUNK`` records: a repair asked for each record's events one
        query at a time, and read every older version's too.
        """
        o = outbox.c
        ids = sorted(set(master_ids))
        out: dict[str, tuple[int, ChangeEvent]] = {}
        for part in rows.in_chunks(ids):
            # The unique (master_id, version) index finds each record's rows; the newest
            # is then read by its primary key.
            newest = (
                sa.select(sa.func.max(o.position))
                .where(o.domain == domain, o.master_id.in_(part))
                .group_by(o.master_id)
            )
            q = sa.select(outbox).where(o.position.in_(newest))
            for r in self.conn.execute(q).mappings():
                out[r["master_id"]] = (int(r["position"]), rows.event(r))
        return out

    def open_dead_letters(
        self, domain: str, subscription: str, master_ids: Collection[str]
    ) -> list[ExceptionEntry]:
        """The open dead letters of these records' deliveries in a subscription, oldest
        first; what a replay or repair of them settles.

        One query per ``rows.IN_CHUNK`` records: a repair read every open dead letter of the
        domain (up to 100,000, each payload decoded) to settle those of its batch. Master ids
        are not indexed there, so each query passes over the open entries: for a replay of
        more records than ``_DEAD_LETTER_CHUNKS`` IN-lists hold, one pass over the
        subscription's open dead letters is cheaper, and only its records' are decoded.
        """
        x = exceptions.c
        ids = sorted(set(master_ids))
        if not ids:
            return []
        q = sa.select(exceptions).where(
            x.kind == ProblemKind.DEAD_LETTER.value,
            x.status == ExceptionStatus.OPEN.value,
            x.domain == domain,
            # A dead letter's key is its subscription and delivery ("shop.items#42").
            x.source_key.startswith(f"{subscription}#", autoescape=True),
        )
        found: list[ExceptionEntry] = []
        if len(ids) > _DEAD_LETTER_CHUNKS * rows.IN_CHUNK:
            wanted = set(ids)
            found.extend(
                rows.exception(r)
                for r in self.conn.execute(q).mappings()
                if r["master_id"] in wanted
            )
        else:
            for part in rows.in_chunks(ids):
                scoped = q.where(x.master_id.in_(part))
                found.extend(rows.exception(r) for r in self.conn.execute(scoped).mappings())
        return sorted(found, key=lambda entry: entry.id or 0)

    def save_reconciliation(self, run: ReconciliationRun) -> None:
        """Record a reconciliation run (insert, or update by run id)."""
        values = {
            "system": run.system,
            "domain": run.domain,
            "role": run.role.value,
            "subscription": run.subscription,
            "started_at": run.started_at,
            "finished_at": run.finished_at,
            "counts": run.counts,
            "repair": run.repair,
        }
        r = reconciliation_runs
        done = self.conn.execute(sa.update(r).where(r.c.run_id == run.run_id).values(**values))
        if done.rowcount == 0:
            self.conn.execute(sa.insert(r).values(run_id=run.run_id, **values))

    def reconciliations(
        self, system: str | None = None, domain: str | None = None, limit: int = 20
    ) -> list[ReconciliationRun]:
        """Recent runs, newest first."""
        r = reconciliation_runs.c
        q = sa.select(reconciliation_runs)
        if system is not None:
            q = q.where(r.system == system)
        if domain is not None:
            q = q.where(r.domain == domain)
        q = q.order_by(r.started_at.desc(), r.run_id.desc()).limit(limit)
        return [_run(row) for row in self.conn.execute(q).mappings()]
