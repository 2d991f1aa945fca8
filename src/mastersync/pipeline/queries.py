"""The read side: golden records by any key, lineage timelines, per-domain summaries."""

from __future__ import annotations

from dataclasses import dataclass

from mastersync.domain.canonical import DOMAINS
from mastersync.domain.golden import ChangeEvent, Contribution, GoldenRecord
from mastersync.domain.records import LineageEntry
from mastersync.ports.store import Store, UnitOfWork


class NotFound(LookupError):
    """No record answers to the given reference."""


@dataclass
class RecordView:
    """A golden record with the source records linked to it."""

    golden: GoldenRecord
    members: list[Contribution]


def master_id_of(store: Store, domain: str | None, ref: str) -> str:
    """The master id a reference names: a master id as it is, ``system:key`` looked up."""
    if domain is not None and domain not in DOMAINS:
        raise NotFound(f"unknown domain {domain!r}; domains are {', '.join(DOMAINS)}")
    prefixes = {spec.id_prefix for spec in DOMAINS.values()}
    if ref.split("_", 1)[0] in prefixes:
        return ref
    if ":" not in ref:
        raise NotFound(f"{ref!r} is neither a master id (itm_..., cus_...) nor system:key")
    system, key = ref.split(":", 1)
    with store.unit_of_work(write=False) as uow:
        master = uow.find_master(domain, system, key)
        if master is None and domain is None:
            # One key can name records of several domains (ERP customer and supplier
            # 710000): say so, rather than that there is none.
            found = [d for d in DOMAINS if uow.find_master(d, system, key) is not None]
            if len(found) > 1:
                raise NotFound(
                    f"{system} key {key!r} names records in {' and '.join(found)}: "
                    "say which domain (--domain)"
                )
    if master is None:
        where = f" {domain}" if domain else ""
        raise NotFound(f"no{where} record with {system} key {key!r}")
    return master


def get_record(store: Store, domain: str | None, ref: str) -> RecordView:
    """A golden record by master id or by ``system:key``."""
    master = master_id_of(store, domain, ref)
    with store.unit_of_work(write=False) as uow:
        golden = uow.golden(master)
        if golden is None or (domain and golden.domain != domain):
            raise NotFound(f"no {domain or 'golden'} record {master}")
        return RecordView(golden, uow.members(master))


@dataclass
class Trace:
    """Everything that happened to one record, oldest first."""

    master_id: str
    lineage: list[LineageEntry]
    events: list[ChangeEvent]


def trace(store: Store, ref: str, domain: str | None = None) -> Trace:
    """The lineage timeline of a record (by master id or system:key)."""
    master = master_id_of(store, domain, ref)
    with store.unit_of_work(write=False) as uow:
        entries = uow.lineage(master_id=master)
        if not entries and uow.golden(master) is None:
            raise NotFound(f"no record {master}")
        return Trace(master, entries, uow.events(master))


def live_record(uow: UnitOfWork, master_id: str) -> GoldenRecord | None:
    """The live record ``master_id`` stands for now: itself, or the end of the chain of
    records it was merged into (None: no such record)."""
    seen: set[str] = set()
    golden = uow.golden(master_id)
    while golden is not None and golden.merged_into and golden.master_id not in seen:
        seen.add(golden.master_id)  # a cycle cannot be, but never loop on one
        golden = uow.golden(golden.merged_into)
    return golden
