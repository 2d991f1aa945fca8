"""Deciding a delivery: what the consumer gets of a record's version, if anything (pure:
what the round planned is all it reads)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from mastersync.domain.delivery import (
    UNCHANGED,
    Applied,
    Delivery,
    DeliveryStatus,
    idempotency_key,
    resent_as,
)
from mastersync.domain.subscriptions import (
    Operation,
    OutboundMappingFailed,
    Subscription,
    cleared,
    mark_cleared,
)
from mastersync.domain.validation import digest
from mastersync.pipeline.distribution.rounds import Item, Round
from mastersync.ports.outbound import DeliveryRequest, TransientFailure


def decide(
    sub: Subscription,
    d: Delivery,
    state: dict[str, Any] | None,
    trace_id: str | None,
    applied: Applied | None,
    planned: Round,
    previous: Mapping[str, Any] | None = None,
) -> Item:
    """How one delivery goes this round: a request to send, a wait, or settled unsent
    (``previous``: the record's state at the version the consumer holds, if known)."""
    item = Item(d, trace_id, applied)
    if state is None or trace_id is None:
        item.settled, item.terminal = (DeliveryStatus.DEAD, "the event's history is gone"), True
        return item
    item.state = state
    if not d.replay and applied is not None and applied.version >= d.version:
        item.settled = (
            DeliveryStatus.SKIPPED,
            f"the consumer already has version {applied.version}",
        )
        return item
    again: str | None = None
    if d.replay:
        # Against what the consumer holds, not this round's earlier replayed versions.
        held = planned.held.get(d.master_id)
        newest = max(v.version for v in (held, applied) if v) if held or applied else None
        why, again = resent_as(
            d.version,
            d.replay,
            newest,
            planned.firsts.get(d.event_id),
            planned.decided.get(d.master_id),
            keyed=planned.keyed,
        )
        if why is not None:
            item.settled = (DeliveryStatus.SKIPPED, why)
            return item
    keys = planned.keys
    ref_keys: dict[str, dict[str, str]] | None = None
    missing: list[str] = []
    awaiting: dict[str, list[str]] = {}
    if sub.key_refs:
        ref_keys = {}
        for name, domain in sub.key_refs.items():
            target = state.get(name)
            if target is None:
                continue
            if keys and target in keys:
                ref_keys[name] = keys[target]
            else:
                missing.append(f"{name} {target}")
                awaiting.setdefault(domain, []).append(str(target))
                item.field = item.field or name
    forced = again in (Operation.UPSERT, Operation.DEACTIVATE)
    if missing and sub.filter_reads_keys and not forced:
        # The filter asks what the consumer holds: decided on a referenced record not
        # there yet, a record delivered in the same round was filtered out for good.
        item.wait = TransientFailure(
            f"waiting for {', '.join(missing)} to reach {sub.system} "
            "(the filter reads the consumer's key for it)"
        )
        return _awaits(item, awaiting, planned)
    view = sub.view(d.master_id, d.version, state, ref_keys)
    try:
        operation = (
            Operation(again)
            if forced and again is not None
            else sub.operation(view, applied.active if applied else False)
        )
    except OutboundMappingFailed as exc:  # a filter that cannot be evaluated on it
        return _unmappable(item, exc)
    if operation is Operation.SKIP:
        item.settled = (DeliveryStatus.SKIPPED, "filtered out by the subscription")
        item.field = None
        return item
    if missing and operation is Operation.UPSERT:
        # Per-entity order across domains: the referenced record must reach the consumer
        # first (its key goes into this payload); try again after a backoff.
        item.wait = TransientFailure(
            f"waiting for {', '.join(missing)} to reach {sub.system} "
            "(the consumer has no key for it yet)"
        )
        return _awaits(item, awaiting, planned)
    item.field = None  # only a wait names the reference
    try:
        payload = sub.payload(view)
    except OutboundMappingFailed as exc:
        return _unmappable(item, exc)
    if operation is Operation.UPSERT:
        item.digest = digest(payload)
        if (
            not d.replay
            and sub.skips_unchanged
            and applied is not None
            and applied.active
            and applied.digest == item.digest
        ):
            # A change to fields this consumer does not receive: sent, it would only
            # cost the consumer a write and a duplicate of what it shows.
            item.settled = (DeliveryStatus.SKIPPED, f"{UNCHANGED} {applied.version}")
            item.holds = dataclasses.replace(applied, version=d.version)
            return item
        if (
            applied is not None
            and previous is not None
            and applied.version < d.version
            and (sub.conditional or cleared(state, previous))
        ):
            payload = mark_cleared(payload, _sent(sub, d, applied, previous, keys))
    item.request = DeliveryRequest(
        sub.id,
        sub.system,
        d.domain,
        d.master_id,
        d.version,
        operation,
        idempotency_key(d.master_id, d.version, d.replay),
        applied.target_key if applied else None,
        payload,
        trace_id,
        # A replay or repair re-asserts the hub's state on purpose, and the consumer's
        # applied row does not follow a replayed deactivation (never moved back).
        reactivate=operation is Operation.UPSERT
        and (bool(d.replay) or (applied is not None and not applied.active)),
        held=applied is not None and applied.active,
    )
    return item


def _sent(
    sub: Subscription,
    d: Delivery,
    applied: Applied,
    previous: Mapping[str, Any],
    keys: Mapping[str, dict[str, str]] | None,
) -> dict[str, Any]:
    """The payload the consumer holds: the record at its version, shaped as it was sent
    (with the consumer's keys of the records it referenced then)."""
    ref_keys: dict[str, dict[str, str]] | None = None
    if sub.key_refs:
        ref_keys = {}
        for name in sub.key_refs:
            target = previous.get(name)
            if target is not None and keys and target in keys:
                ref_keys[name] = keys[target]
    try:
        return sub.payload(sub.view(d.master_id, applied.version, previous, ref_keys))
    except OutboundMappingFailed:
        return {}  # it was sent something else then; nothing to clear by name


def _awaits(item: Item, awaiting: dict[str, list[str]], planned: Round) -> Item:
    """A delivery that waits for referenced records: held without spending an attempt
    while every one of them is on its way to the consumer."""
    item.awaiting = awaiting
    item.coming = all(t in planned.coming for ids in awaiting.values() for t in ids)
    return item


def _unmappable(item: Item, exc: OutboundMappingFailed) -> Item:
    """A delivery the subscription cannot put in the consumer's shape: dead at once."""
    item.settled = (DeliveryStatus.DEAD, f"outbound mapping: {exc.field}: {exc.message}")
    item.terminal, item.field = True, exc.field
    return item
