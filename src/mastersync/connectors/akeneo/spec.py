"""Settings and registry entry of the Akeneo PIM connector (light: imports no HTTP client).

Products are read and written in Akeneo's standard format through its REST API
(``/api/rest/v1``, OAuth tokens from ``/api/oauth/v1/token``); changes arrive as CloudEvents
from its Event Platform (``/api/v1`` subscribers and subscriptions), and a full listing
reconciles what events missed.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from mastersync.connectors.registry import ConnectorSettings, ConnectorSpec
from mastersync.ports.connector import Capability


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AkeneoRead(_Model):
    """How one domain's products are listed."""

    # Akeneo's product search filter (the `search` parameter), e.g.
    # {"family": [{"operator": "IN", "value": ["gloves"]}]}; none: every product.
    search: dict[str, Any] = Field(default_factory=dict)
    # Only these attributes' values are read (the `attributes` parameter); none: all.
    attributes: list[str] = Field(default_factory=list)

    def enabled_only(self) -> bool:
        """Whether the search admits enabled products only (Akeneo lists disabled ones too)."""
        rules = self.search.get("enabled") or []
        # Rules on one property are ANDed, so one that asks for enabled products decides;
        # Akeneo gives the property the operators = and != with a boolean.
        return any(
            isinstance(rule, dict)
            and (rule.get("operator"), rule.get("value")) in (("=", True), ("!=", False))
            and isinstance(rule.get("value"), bool)
            for rule in (rules if isinstance(rules, list) else [rules])
        )


class AkeneoWrite(_Model):
    """How one subscription's records are written: PATCH /products/{identifier}."""

    # The family of the products written, unless the outbound mapping gives `family`.
    family: str | None = None


class AkeneoEvents(_Model):
    """Akeneo's Event Platform: a subscriber and a subscription whose CloudEvents are posted
    to the hub's webhook receiver (`mastersync run --listen`)."""

    # Where Akeneo posts events: the receiver as Akeneo reaches it, /hooks/SYSTEM[/DOMAIN].
    url: str
    # Akeneo signs each event with it (X-AKENEO-SIGNATURE-PRIMARY, HMAC-SHA256 of the body).
    secret: str = Field(min_length=8)
    # During a rotation both verify (registered as the subscription's secondary secret).
    previous_secret: str | None = None
    subscriber: str = "mastersync"
    subscription: str = "mastersync-products"
    # The Event Platform's API; none: the PIM's own /api/v1 (as akeneo-mock-server serves it).
    api_url: str | None = None
    # The domain product events feed; none: the only domain under `read`.
    domain: str | None = None
    # Seconds an event's (signed) time may differ from now; replays older are refused.
    tolerance: float = Field(default=300, gt=0)
    max_body: int = Field(default=1 << 20, gt=0)


class AkeneoSettings(ConnectorSettings):
    """type: akeneo."""

    type: Literal["akeneo"]
    # The PIM's base URL, without /api: http://pim.internal
    url: str
    # A connection's client id and secret, and its API user (the password grant).
    client_id: str
    client_secret: str
    username: str
    password: str
    # Sent with every request (akeneo-mock-server's X-AkeneoMockDB, say).
    headers: dict[str, str] = Field(default_factory=dict)
    # Values are read for, and written to, this locale and channel (`scope`); values of other
    # locales and channels are left alone. No scope: only values not scoped by channel.
    locale: str = "en_US"
    scope: str | None = None
    timeout: float = Field(default=30.0, gt=0)
    # Reads: how often a 429, 5xx or network error is tried again (Retry-After honoured up
    # to max_wait). Deliveries are retried by the delivery engine instead.
    retries: int = Field(default=4, ge=0, le=20)
    max_wait: float = Field(default=60.0, gt=0)
    read: dict[str, AkeneoRead] = Field(default_factory=dict)
    # subscription name (under the system's outbound) -> how its products are written
    write: dict[str, AkeneoWrite] = Field(default_factory=dict)
    events: AkeneoEvents | None = None
    # How often the hub asks whether a full listing is due. Without events every poll is
    # one; with events one at the hub's start and then every reconcile_every seconds.
    poll_every: float = Field(default=60.0, ge=0.05)
    reconcile_every: float = Field(default=3600.0, gt=0)
    # Akeneo lists at most 100 products a page.
    page_size: int = Field(default=100, ge=1, le=100)

    @model_validator(mode="after")
    def _events_domain(self) -> AkeneoSettings:
        if self.events is None:
            return self
        domain = self.events.domain
        if domain is None and len(self.read) != 1:
            raise ValueError("events: give 'domain' (the domain product events feed)")
        if domain is not None and domain not in self.read:
            raise ValueError(f"events.domain: {domain!r} is not under 'read'")
        return self

    @property
    def events_domain(self) -> str | None:
        """The domain product events feed (None without events)."""
        if self.events is None:
            return None
        return self.events.domain or next(iter(self.read))


SPEC = ConnectorSpec(
    name="akeneo",
    description="Akeneo PIM: products in the standard format, events as CloudEvents, "
    "PATCH upserts out",
    capabilities=frozenset(
        {
            Capability.READ_FULL,
            Capability.READ_INCREMENTAL,
            Capability.RECEIVE_PUSH,
            Capability.WRITE_UPSERT,
            Capability.WRITE_DEACTIVATE,
            Capability.READ_STATE,
        }
    ),
    settings=AkeneoSettings,
    factory="mastersync.connectors.akeneo.connector:AkeneoConnector",
    writes="write",
)
