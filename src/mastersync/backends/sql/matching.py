"""Matching on SQL: the candidate index, match decisions, fitted models and merge history."""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterator, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from mastersync.backends.sql import rows
from mastersync.backends.sql.tables import (
    golden,
    match_decisions,
    match_keys,
    match_models,
    merges,
    natural_key,
)
from mastersync.domain.golden import GoldenRecord
from mastersync.domain.matching.records import (
    SETTLED,
    DecisionStatus,
    MatchDecision,
    MergeRecord,
    MergeStatus,
    pair_key,
)
from mastersync.ports.matching import DecisionFilter, MatchChanges

_CHUNK = 500


def _chunks(items: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def _decision(r: Any) -> MatchDecision:
    return MatchDecision(
        r.domain,
        r.left_id,
        r.right_id,
        r.score,
        r.probability,
        r.outcome,
        DecisionStatus(r.status),
        r.origin,
        rows.json_value(r.explanation),
        rows.instant(r.created_at),
        rows.instant(r.decided_at),
        r.decided_by,
        r.note,
        r.trace_id,
        r.id,
    )


def _merge(r: Any) -> MergeRecord:
    return MergeRecord(
        r.domain,
        r.survivor_id,
        r.loser_id,
        r.actor,
        r.trace_id,
        rows.instant(r.merged_at),
        rows.json_value(r.snapshot),
        r.reason,
        MergeStatus(r.status),
        rows.instant(r.unmerged_at),
        r.id,
    )


def _decision_values(d: MatchDecision) -> dict[str, Any]:
    return {
        "domain": d.domain,
        "left_id": d.left_id,
        "right_id": d.right_id,
        "score": d.weight,
        "probability": d.probability,
        "outcome": d.outcome,
        "status": d.status.value,
        "origin": d.origin,
        "explanation": d.explanation,
        "created_at": d.created_at,
        "decided_at": d.decided_at,
        "decided_by": d.decided_by,
        "note": d.note,
        "trace_id": d.trace_id,
    }


def key_hash(domain: str, key: str) -> int:
    """A blocking key's stored form: 64 bits of BLAKE2b over domain and key, signed."""
    digest = hashlib.blake2b(f"{domain}\x1f{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


# Built once: ingest rewrites a changed record's keys at every chunk.
_DELETE_KEYS = sa.delete(match_keys).where(
    match_keys.c.master_id.in_(sa.bindparam("ids", expanding=True))
)
_INSERT_KEYS = sa.insert(match_keys)


class SqlMatchRepository:
    """See :class:`mastersync.ports.matching.MatchRepository`; mixed into the unit of work."""

    conn: sa.Connection

    def match_candidates(
        self, domain: str, keys: Collection[str], max_block: int
    ) -> tuple[dict[str, list[str]], int]:
        """(key -> master ids, ids skipped in blocks larger than ``max_block``)."""
        k = match_keys.c
        named = {key_hash(domain, key): key for key in keys}
        sizes: dict[int, int] = {}
        for part in _chunks(sorted(named)):
            q = sa.select(k.key, sa.func.count()).where(k.key.in_(part)).group_by(k.key)
            sizes.update({h: n for h, n in self.conn.execute(q)})  # noqa: C416
        small = sorted(h for h, n in sizes.items() if n <= max_block)
        skipped = sum(n for n in sizes.values() if n > max_block)
        found: dict[str, list[str]] = {}
        for part in _chunks(small):
            q2 = sa.select(k.key, k.master_id).where(k.key.in_(part)).order_by(k.master_id)
            for h, master in self.conn.execute(q2):
                found.setdefault(named[h], []).append(master)
        return found, skipped

    def write_matching(self, changes: MatchChanges) -> None:
        """Replace index keys and insert or update decisions (one row per pair; a settled
        decision is replaced only by another settled one)."""
        ids = sorted(changes.keys)
        for part in _chunks(ids):
            self.conn.execute(_DELETE_KEYS, {"ids": list(part)})
        fresh = [
            {"key": h, "master_id": master}
            for master, (domain, keys) in changes.keys.items()
            for h in {key_hash(domain, key) for key in keys}
        ]
        if fresh:
            self.conn.execute(_INSERT_KEYS, fresh)
        if changes.decisions:
            # One statement for the lot (ingest writes one per new record): a pair scored
            # again takes the new score, keeping its row and id.
            dialect = postgresql if self.conn.dialect.name == "postgresql" else sqlite
            stmt = dialect.insert(match_decisions)
            update = {
                c: stmt.excluded[c]
                for c in _decision_values(changes.decisions[0])
                if c not in ("domain", "left_id", "right_id", "created_at")
            }
            # A steward's decision stands: only another steward's (accepting, rejecting,
            # an unmerge) replaces it, never a score a later run wrote automatically.
            # (Comparisons, not IN: an expanding IN cannot go with executemany.)
            settled = sorted(s.value for s in SETTLED)
            keep = sa.or_(
                *(stmt.excluded.status == v for v in settled),
                sa.and_(*(match_decisions.c.status != v for v in settled)),
            )
            self.conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=["domain", "left_id", "right_id"], set_=update, where=keep
                ),
                [_decision_values(x) for x in changes.decisions],
            )

    def decisions_between(
        self, domain: str, pairs: Collection[tuple[str, str]]
    ) -> dict[tuple[str, str], MatchDecision]:
        """Stored decisions of these pairs (in stored order, see ``pair_key``)."""
        wanted = {pair_key(a, b) for a, b in pairs}
        lefts = sorted({a for a, _ in wanted})
        d = match_decisions.c
        out: dict[tuple[str, str], MatchDecision] = {}
        for part in _chunks(lefts):
            q = sa.select(match_decisions).where(d.domain == domain, d.left_id.in_(part))
            for r in self.conn.execute(q):
                if (r.left_id, r.right_id) in wanted:
                    out[(r.left_id, r.right_id)] = _decision(r)
        return out

    def decisions_of_domain(self, domain: str) -> dict[tuple[str, str], MatchDecision]:
        """Every stored decision of a domain whose status a steward set or must set."""
        d = match_decisions.c
        q = sa.select(match_decisions).where(
            d.domain == domain,
            d.status.in_([DecisionStatus.OPEN, DecisionStatus.ACCEPTED, DecisionStatus.REJECTED]),
        )
        return {(r.left_id, r.right_id): _decision(r) for r in self.conn.execute(q)}

    def match_decisions(self, filter: DecisionFilter) -> list[MatchDecision]:
        """Decisions, newest first."""
        d = match_decisions.c
        q = sa.select(match_decisions).order_by(d.id.desc()).limit(filter.limit)
        if filter.status is not None:
            q = q.where(d.status == filter.status.value)
        if filter.domain is not None:
            q = q.where(d.domain == filter.domain)
        return [_decision(r) for r in self.conn.execute(q)]

    def match_decision(self, decision_id: int) -> MatchDecision | None:
        """One decision."""
        q = sa.select(match_decisions).where(match_decisions.c.id == decision_id)
        row = self.conn.execute(q).first()
        return _decision(row) if row else None

    def match_model(self, domain: str) -> tuple[dict[str, Any], str] | None:
        """(parameters, fitted at) of a domain's fitted model, None before the first fit."""
        m = match_models.c
        row = self.conn.execute(
            sa.select(m.parameters, m.fitted_at).where(m.domain == domain)
        ).first()
        return (rows.json_value(row.parameters), rows.instant(row.fitted_at)) if row else None

    def save_match_model(
        self, domain: str, parameters: Mapping[str, Any], report: Mapping[str, Any], at: str
    ) -> None:
        """Keep a fitted model for ingest to score with."""
        values = {"parameters": dict(parameters), "report": dict(report), "fitted_at": at}
        m = match_models.c
        done = self.conn.execute(sa.update(match_models).where(m.domain == domain).values(**values))
        if done.rowcount == 0:
            self.conn.execute(sa.insert(match_models).values(domain=domain, **values))

    def scan_golden(
        self, domain: str, batch: int = 5000, after: str = ""
    ) -> Iterator[GoldenRecord]:
        """Every live (not merged away) golden record of a domain, by master id (those
        after ``after``)."""
        g = golden.c
        while True:
            q = (
                sa.select(golden)
                .where(g.domain == domain, g.merged_into.is_(None), g.master_id > after)
                .order_by(g.master_id)
                .limit(batch)
            )
            found = [rows.golden(r) for r in self.conn.execute(q).mappings()]
            yield from found
            if len(found) < batch:
                return
            after = found[-1].master_id

    def natural_keys_of(self, master_ids: Collection[str]) -> list[tuple[str, str, str, str]]:
        """(domain, name, value, master id) of the natural keys pointing at these records."""
        n = natural_key.c
        out: list[tuple[str, str, str, str]] = []
        for part in _chunks(sorted(set(master_ids))):
            q = (
                sa.select(n.domain, n.name, n.value, n.master_id)
                .where(n.master_id.in_(part))
                .order_by(n.domain, n.name, n.value)
            )
            out.extend((a, b, c, d) for a, b, c, d in self.conn.execute(q))
        return out

    def save_merge(self, merge: MergeRecord) -> int:
        """Record a merge; its id."""
        merge.id = self.conn.execute(
            sa.insert(merges)
            .values(
                domain=merge.domain,
                survivor_id=merge.survivor_id,
                loser_id=merge.loser_id,
                status=merge.status.value,
                actor=merge.actor,
                reason=merge.reason,
                snapshot=merge.snapshot,
                merged_at=merge.merged_at,
                unmerged_at=merge.unmerged_at,
                trace_id=merge.trace_id,
            )
            .returning(merges.c.id)
        ).scalar_one()
        return merge.id

    def merge_record(self, merge_id: int) -> MergeRecord | None:
        """One merge."""
        row = self.conn.execute(sa.select(merges).where(merges.c.id == merge_id)).first()
        return _merge(row) if row else None

    def merges_of(self, master_id: str) -> list[MergeRecord]:
        """Merges a record took part in (as survivor or loser), newest first."""
        m = merges.c
        q = (
            sa.select(merges)
            .where(sa.or_(m.survivor_id == master_id, m.loser_id == master_id))
            .order_by(m.id.desc())
        )
        return [_merge(r) for r in self.conn.execute(q)]

    def finish_unmerge(self, merge_id: int, at: str) -> None:
        """Mark a merge undone."""
        self.conn.execute(
            sa.update(merges)
            .where(merges.c.id == merge_id)
            .values(status=MergeStatus.UNMERGED.value, unmerged_at=at)
        )
