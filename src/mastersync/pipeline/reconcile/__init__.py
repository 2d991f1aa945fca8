"""Reconciliation: read what a system holds, compare it with the hub, report and repair."""

from __future__ import annotations

from dataclasses import dataclass

from mastersync.domain.landscape.policy import CompiledLandscape
from mastersync.domain.problems import ConfigError
from mastersync.domain.reconciliation import Role
from mastersync.domain.subscriptions import Subscription
from mastersync.pipeline.reconcile.common import ReconcileOptions, Reconciliation
from mastersync.pipeline.reconcile.repair import queue_repairs
from mastersync.pipeline.reconcile.source import Ingest, reconcile_source
from mastersync.pipeline.reconcile.target import reconcile_target


@dataclass(frozen=True)
class Plan:
    """One reconciliation to run: a role, and for a target the subscription it serves."""

    role: Role
    subscription: Subscription | None = None


def plan(
    landscape: CompiledLandscape,
    system: str,
    domain: str,
    role: Role | None = None,
    subscription: str | None = None,
) -> list[Plan]:
    """The reconciliations a system's domain takes: as a target (one per subscription it
    has on the domain) and as a source (if it has an inbound mapping); ``role`` picks one."""
    if system not in landscape.config.systems:
        known = ", ".join(sorted(landscape.config.systems)) or "none"
        raise ConfigError(f"unknown system {system!r} (known: {known})")
    subs = [
        s for s in landscape.subscriptions.values() if s.system == system and s.domain == domain
    ]
    if subscription is not None:
        subs = [s for s in subs if subscription in (s.id, s.name)]
        if not subs:
            raise ConfigError(f"{system} has no subscription {subscription!r} on {domain}")
    plans: list[Plan] = []
    if role in (None, Role.SOURCE) and (system, domain) in landscape.mappers:
        plans.append(Plan(Role.SOURCE))
    if role in (None, Role.TARGET):
        plans.extend(Plan(Role.TARGET, s) for s in subs)
    if not plans:
        lacks = {
            None: "neither an inbound mapping nor a subscription",
            Role.SOURCE: "no inbound mapping",
            Role.TARGET: "no subscription",
        }[role]
        raise ConfigError(f"nothing to reconcile: {system} has {lacks} for {domain}")
    return plans


__all__ = [
    "Ingest",
    "Plan",
    "ReconcileOptions",
    "Reconciliation",
    "plan",
    "queue_repairs",
    "reconcile_source",
    "reconcile_target",
]
