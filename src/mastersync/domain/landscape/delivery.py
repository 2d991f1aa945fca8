"""Subscriptions and delivery settings: what a consumer system receives, and how."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from mastersync.domain.mapping.spec import ValueSpec

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def _seconds(value: Any) -> Any:
    """'500ms', '10s', '5m', '1h' or a number of seconds -> seconds."""
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match is None:
            raise ValueError(f"{value!r} is not a duration (like 500ms, 10s, 5m, 1h)")
        return float(match.group(1)) * _UNITS[match.group(2)]
    return value


Duration = Annotated[float, BeforeValidator(_seconds), Field(ge=0)]
# A wait that must be some time: a timeout of 0 failed every delivery ("no answer within 0 s").
Timeout = Annotated[float, BeforeValidator(_seconds), Field(gt=0)]


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BackoffConfig(_Config):
    """Exponential backoff between delivery attempts, with jitter."""

    initial: Duration = 1.0
    max: Duration = 300.0
    multiplier: float = Field(default=2.0, ge=1.0, le=10.0)
    jitter: float = Field(default=0.2, ge=0.0, le=1.0)


class DeliveryConfig(_Config):
    """How deliveries to one consumer are attempted."""

    max_attempts: int = Field(default=8, ge=1, le=100)
    backoff: BackoffConfig = Field(default_factory=BackoffConfig)
    timeout: Timeout = 10.0
    batch_size: int = Field(default=100, ge=1, le=5000)
    # Deliveries of different records in flight at once (one per record at most).
    concurrency: int = Field(default=16, ge=1, le=512)

    def over(self, base: DeliveryConfig) -> DeliveryConfig:
        """These settings over ``base`` (a subscription's over its system's): only the keys
        written here replace, one level down for ``backoff`` too."""
        update: dict[str, Any] = {}
        for name in self.model_fields_set:
            value = getattr(self, name)
            if name == "backoff":
                given = {k: getattr(value, k) for k in value.model_fields_set}
                value = base.backoff.model_copy(update=given)
            update[name] = value
        return base.model_copy(update=update)


class OutboundMappingSpec(_Config):
    """Canonical record -> the consumer's native shape (targets are the consumer's fields)."""

    fields: dict[str, ValueSpec]


class SubscriptionConfig(_Config):
    """One consumer's interest in one domain."""

    domain: str
    # A condition on the golden record (JMESPath); records that stop matching are
    # deactivated at the consumer.
    filter: str | None = None
    # Canonical fields the consumer receives (default: all).
    fields: list[str] | None = None
    # Canonical -> native (a file path relative to the landscape, or inline). Without
    # one, the consumer receives the canonical record.
    mapping: OutboundMappingSpec | None = None
    delivery: DeliveryConfig | None = None
    # Send every version, even one whose payload is the one the consumer already holds
    # (a change to fields it does not receive). By default such a version is skipped.
    send_unchanged: bool = False
