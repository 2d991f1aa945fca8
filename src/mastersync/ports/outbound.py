"""The outbound connector port: what the delivery engine asks of a consumer system."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from mastersync.domain.subscriptions import Operation


@dataclass(slots=True)
class DeliveryRequest:
    """One version of one record for one consumer."""

    subscription: str
    system: str
    domain: str
    master_id: str
    version: int
    operation: Operation
    # master id + version: a consumer that honours it applies each version at most once.
    idempotency_key: str
    # The consumer's own key for the record, once it has acknowledged one.
    target_key: str | None
    payload: dict[str, Any]
    trace_id: str
    # An upsert of a record the hub deactivated at the consumer (what it holds there is
    # inactive): connectors that deactivate by a flag set it back. Otherwise they leave the
    # flag alone, since a person may have archived the record there.
    reactivate: bool = False
    # The consumer acknowledged a version of the record before, and holds it active: a null
    # in the payload is for a field it has (the hub sends none otherwise). A connector that
    # cannot tell a create from an update (an upsert by natural key, no key acknowledged)
    # may trust it.
    held: bool = False


def has_null(payload: Mapping[str, Any]) -> bool:
    """Whether a payload sends a field as null (cleared at the hub), nested ones too."""
    return any(v is None or (isinstance(v, Mapping) and has_null(v)) for v in payload.values())


def without_nulls(payload: Mapping[str, Any]) -> dict[str, Any]:
    """A payload for a record the consumer does not have yet: its nulls left out, nested
    ones too, so the consumer's defaults apply (the hub sends a cleared object as its
    fields, each null: one of nulls only goes altogether)."""
    out: dict[str, Any] = {}
    for k, v in payload.items():
        if isinstance(v, Mapping):
            inner = without_nulls(v)
            if inner or not v:
                out[k] = inner
        elif v is not None:
            out[k] = v
    return out


@dataclass(slots=True)
class DeliveryAck:
    """The consumer applied (or had already applied) the version."""

    target_key: str | None
    target_version: str | None = None
    # The consumer recognised the idempotency key: it had applied this version before.
    duplicate: bool = False
    response: dict[str, Any] = field(default_factory=dict)
    # Other keys the consumer gave for the record, by name: records that reference this
    # one may need them (a product's inventory item id, its URL).
    refs: dict[str, str] = field(default_factory=dict)


class DeliveryFailed(Exception):
    """The consumer did not apply the version."""

    transient = True

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        response: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.response = response
        self.retry_after = retry_after


class TransientFailure(DeliveryFailed):
    """Worth another try: a timeout, a 5xx, a 429 (after its Retry-After), an outage."""

    transient = True


class NotSent(TransientFailure):
    """Not sent at all: the connector's own pacing (a rate cap, a 429's pause) puts the
    request's turn ``retry_after`` seconds off. The consumer saw nothing, so the retry
    spends none of the delivery's attempts."""


class TerminalFailure(DeliveryFailed):
    """Never worth another try as it is: the consumer rejected the content (4xx)."""

    transient = False


class OutboundConnector(Protocol):
    """Sends deliveries to one consumer system."""

    async def send(self, request: DeliveryRequest) -> DeliveryAck:
        """Apply an upsert or a deactivation; raises DeliveryFailed."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


@runtime_checkable
class KeyedApplying(Protocol):
    """A consumer that says whether it applies each idempotency key once."""

    # True: a key it has applied is a duplicate to it (the sandbox target), so a replay may
    # send a version behind the one it holds again (it changes nothing there). Most systems
    # apply whatever comes: behind a newer version, such a replay would put the older one
    # back, and a consumer that does not say is taken to be one of them.
    applies_keys_once: bool


def applies_keys_once(connector: object) -> bool:
    """Whether a consumer applies each idempotency key once (see ``KeyedApplying``)."""
    return connector.applies_keys_once if isinstance(connector, KeyedApplying) else False


@runtime_checkable
class BatchSending(Protocol):
    """A consumer with a bulk endpoint: a round's records (one version each) in one call."""

    async def send_batch(
        self, requests: list[DeliveryRequest]
    ) -> list[DeliveryAck | DeliveryFailed]:
        """One outcome per request, in order; a failed call fails every request."""
        ...
