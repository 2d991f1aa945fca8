"""Who may see and change what: scopes per domain and action, restricted field groups,
object-level rules. Pure: the API layer asks these questions, the answers are data."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from mastersync.domain.canonical import DOMAINS

ACTIONS = ("read", "write")
# Scopes that are not per domain: confirm four-eyes changes and process steps; run the hub
# (inbox actions, deliveries, audit, replay).
GLOBAL_SCOPES = ("approve", "admin")
# Field groups a consumer sees and writes only with their own scope (on top of the domain's).
RESTRICTED_GROUPS: dict[str, dict[str, tuple[str, ...]]] = {
    "customer": {"customer:credit": ("credit_terms", "credit_limit")},
    "supplier": {"supplier:finance": ("bank_account", "tax_id")},
}


def known_scopes() -> tuple[str, ...]:
    """Every scope there is, in a stable order."""
    per_domain = [f"{d}:{a}" for d in DOMAINS for a in ACTIONS]
    groups = [g for groups in RESTRICTED_GROUPS.values() for g in groups]
    return (*per_domain, *groups, *GLOBAL_SCOPES)


class ScopeError(ValueError):
    """A scope that does not exist."""


def check_scopes(scopes: Iterable[str]) -> list[str]:
    """The scopes, deduplicated and sorted, or a ScopeError naming the unknown one."""
    known = set(known_scopes())
    out = sorted(set(scopes))
    for scope in out:
        if scope not in known:
            raise ScopeError(
                f"unknown scope {scope!r}; scopes are <domain>:read, <domain>:write, "
                f"{', '.join(g for gs in RESTRICTED_GROUPS.values() for g in gs)}, approve, admin"
            )
    return out


def restricted_fields(domain: str, scopes: Collection[str]) -> frozenset[str]:
    """Fields of ``domain`` a holder of ``scopes`` may neither see nor write."""
    hidden: set[str] = set()
    for group, fields in RESTRICTED_GROUPS.get(domain, {}).items():
        if group not in scopes:
            hidden.update(fields)
    return frozenset(hidden)


def visible(domain: str, attributes: Mapping[str, Any], scopes: Collection[str]) -> dict[str, Any]:
    """The attributes without the restricted fields the scopes do not open."""
    hidden = restricted_fields(domain, scopes)
    return {k: v for k, v in attributes.items() if k not in hidden}


def forbidden_writes(domain: str, values: Mapping[str, Any], scopes: Collection[str]) -> list[str]:
    """Fields in a write the scopes do not allow (no mass assignment), sorted."""
    hidden = restricted_fields(domain, scopes)
    return sorted(k for k in values if k in hidden)


@dataclass(frozen=True)
class ObjectRule:
    """Which records of a domain a consumer reaches.

    A channel partner (``partner_channel`` set on its consumer record) sees only the
    customers its own system is linked to and the items assigned to its channel
    (``channels`` of the item); it sees no suppliers, prices of other items or inventory.
    """

    domain: str
    # Only records this system has a cross-reference for.
    linked_system: str | None = None
    # Only records whose `channels` list holds this channel.
    channel: str | None = None
    # No record at all.
    nothing: bool = False


@dataclass(frozen=True)
class Principal:
    """An authenticated consumer, as the API sees it on each request."""

    consumer: str
    person: str
    scopes: frozenset[str]
    system: str | None = None
    partner_channel: str | None = None
    auth: str = "api_key"
    extra: dict[str, str] = field(default_factory=dict)

    def may(self, scope: str) -> bool:
        """Whether the principal holds a scope."""
        return scope in self.scopes

    def rule(self, domain: str) -> ObjectRule:
        """The object-level rule of this principal for a domain."""
        if self.partner_channel is None:
            return ObjectRule(domain)
        if domain == "customer":
            return ObjectRule(domain, linked_system=self.system or "", nothing=self.system is None)
        if domain in ("item", "price", "inventory"):
            # Prices and stock are reached through items of the channel (experience APIs).
            return ObjectRule(domain, channel=self.partner_channel, nothing=domain != "item")
        return ObjectRule(domain, nothing=True)

    def sees(self, domain: str, attributes: Mapping[str, Any], linked: Collection[str]) -> bool:
        """Whether one record (with the systems linked to it) is within reach."""
        rule = self.rule(domain)
        if rule.nothing:
            return False
        if rule.linked_system is not None and rule.linked_system not in linked:
            return False
        if rule.channel is not None:
            channels = attributes.get("channels") or []
            return rule.channel in channels
        return True
