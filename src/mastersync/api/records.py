"""Golden records as a consumer may see them: restricted fields left out, object rules kept."""

from __future__ import annotations

from typing import Any

from mastersync.api.errors import ApiError
from mastersync.domain.canonical import DOMAINS
from mastersync.domain.golden import GoldenRecord
from mastersync.domain.governance.access import Principal, visible
from mastersync.domain.words import a_or_an
from mastersync.ports.governance import Governance
from mastersync.ports.store import Store

PLURALS = {
    "item": "items",
    "customer": "customers",
    "supplier": "suppliers",
    "location": "locations",
    "price": "prices",
    "inventory": "inventory",
}


def render(
    record: GoldenRecord,
    principal: Principal,
    linked: list[str],
    *,
    payment_blocked: bool | None = None,
) -> dict[str, Any]:
    """The consumer's view of a golden record (v1 shape)."""
    attributes = visible(record.domain, record.attributes, principal.scopes)
    out: dict[str, Any] = {
        "master_id": record.master_id,
        "domain": record.domain,
        "version": record.version,
        "attributes": attributes,
        "provenance": {k: v for k, v in record.provenance.items() if k in attributes},
        "quality": record.quality,
        "updated_at": record.updated_at,
        "systems": linked,
    }
    if payment_blocked is not None:
        out["payment_blocked"] = payment_blocked
    return out


def master_id_of(store: Store, domain: str, ref: str) -> str:
    """A master id from a master id or ``system:key`` (404 naming the reference)."""
    prefix = DOMAINS[domain].id_prefix
    if ref.startswith(f"{prefix}_"):
        return ref
    system, colon, key = ref.partition(":")
    if not colon or not system or not key:
        raise ApiError(
            404, f"{ref!r} is neither {a_or_an(domain)} master id ({prefix}_...) nor system:key"
        )
    with store.unit_of_work(write=False) as uow:
        found = uow.find_master(domain, system, key)
    if found is None:
        raise ApiError(404, f"no {domain} record {ref}")
    return found


def load_visible(
    store: Store, governance: Governance, principal: Principal, domain: str, ref: str
) -> tuple[GoldenRecord, list[str]]:
    """A golden record the caller may see, with its linked systems; 404 otherwise (the same
    answer whether it does not exist or belongs to someone else)."""
    master = master_id_of(store, domain, ref)
    with store.unit_of_work(write=False) as uow:
        record = uow.golden(master)
    if record is None or record.domain != domain or record.merged_into is not None:
        raise ApiError(404, f"no {domain} record {ref}")
    linked = governance.linked_systems([master])[master]
    if not principal.sees(domain, record.attributes, linked):
        raise ApiError(404, f"no {domain} record {ref}")
    return record, linked
