"""The landscape document as checked configuration models."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from mastersync.domain.landscape.delivery import DeliveryConfig, SubscriptionConfig
from mastersync.domain.mapping.spec import MappingSpec
from mastersync.domain.matching.config import MatchConfig
from mastersync.domain.quality import QualityRule
from mastersync.domain.survivorship import Rule

NAME_PATTERN = r"^[a-z][a-z0-9_]{0,39}$"


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SystemKind(StrEnum):
    """What kind of application a system is."""

    ERP = "erp"
    CRM = "crm"
    PIM = "pim"
    WMS = "wms"
    ECOMMERCE = "ecommerce"
    PROCUREMENT = "procurement"
    EDI = "edi"
    FILES = "files"
    OTHER = "other"


class SystemConfig(_Config):
    """One connected system."""

    kind: SystemKind
    description: str | None = None
    # Connector settings, checked by the connector itself; secrets only as references.
    connector: dict[str, Any] = Field(default_factory=dict)
    # domain -> mapping (a file path relative to the landscape, or inline).
    inbound: dict[str, MappingSpec] = Field(default_factory=dict)
    # subscription name -> what this system receives (it is then a consumer).
    outbound: dict[str, SubscriptionConfig] = Field(default_factory=dict)
    # Default delivery settings of this system's subscriptions.
    delivery: DeliveryConfig = Field(default_factory=DeliveryConfig)


class SurvivorshipConfig(_Config):
    """How an unowned field (or group) picks its value."""

    rule: Rule = Rule.SOURCE_PRIORITY
    systems: list[str] | None = None


class DomainConfig(_Config):
    """Ownership, survivorship, identity and quality rules of one domain."""

    natural_keys: list[list[str]] | None = None
    field_groups: dict[str, list[str]] = Field(default_factory=dict)
    # field or group -> authoritative systems in priority order.
    ownership: dict[str, list[str]] = Field(default_factory=dict)
    # field, group or "default" -> rule for fields no system owns.
    survivorship: dict[str, SurvivorshipConfig] = Field(default_factory=dict)
    quality: list[QualityRule] = Field(default_factory=list)
    # Duplicate detection (docs/matching.md); None: the built-in default of customer, supplier
    # and item; false: off.
    matching: MatchConfig | Literal[False] | None = None


class Landscape(_Config):
    """The whole declarative configuration of one hub."""

    version: int = Field(default=1, ge=1, le=1)
    name: str
    description: str | None = None
    # Store URL; the command line and MASTERSYNC_STORE override it.
    store: str | None = None
    # Message bus for distribution at scale (nats:// or tls://host:port, a cluster's servers
    # comma-separated); none: the outbox itself.
    bus: str | None = None
    systems: dict[str, SystemConfig]
    domains: dict[str, DomainConfig] = Field(default_factory=dict)
