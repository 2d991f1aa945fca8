"""Akeneo's product events: CloudEvents (``com.akeneo.pim.v1.product.created|updated|
deleted``) signed with HMAC-SHA256 of the body, and the subscription that asks for them.

An event names a product (its uuid, and its identifier when the subscription asks for it);
it does not carry the product's values, so the receiver reads the product itself.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from mastersync.connectors.webhook import signatures
from mastersync.connectors.webhook.signatures import Rejected, Verified

PREFIX = "com.akeneo.pim.v1.product."
ACTIONS = ("created", "updated", "deleted")
TYPES = tuple(PREFIX + a for a in ACTIONS)
SIGNATURE_HEADERS = ("X-AKENEO-SIGNATURE-PRIMARY", "X-AKENEO-SIGNATURE-SECONDARY")


class BadEvent(Exception):
    """A verified body that is not a usable CloudEvent; the message says why."""


@dataclass(frozen=True)
class ProductEvent:
    """One product event (``action`` None: an event type the connector does not take)."""

    id: str
    type: str
    action: str | None
    uuid: str | None
    identifier: str | None
    document: dict[str, Any]

    @property
    def product(self) -> str:
        """How the product is named for people: its identifier, else its uuid."""
        return self.identifier or self.uuid or "?"


def _document(body: bytes) -> dict[str, Any]:
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadEvent(f"body is not JSON: {exc.msg}") from None
    if not isinstance(document, dict):
        raise BadEvent("body is not a CloudEvent (not an object)")
    return document


def parse_event(body: bytes) -> ProductEvent:
    """The product event in a CloudEvent body."""
    document = _document(body)
    kind, event_id = document.get("type"), document.get("id")
    if not isinstance(kind, str) or not isinstance(event_id, str) or not event_id:
        raise BadEvent("a CloudEvent needs 'type' and 'id'")
    action = kind.removeprefix(PREFIX) if kind in TYPES else None
    data = document.get("data")
    product = data.get("product") if isinstance(data, Mapping) else None
    if action is not None and not isinstance(product, Mapping):
        raise BadEvent(f"{kind} {event_id} names no product (data.product)")
    uuid = product.get("uuid") if isinstance(product, Mapping) else None
    identifier = product.get("identifier") if isinstance(product, Mapping) else None
    if action is not None and not uuid and not identifier:
        raise BadEvent(f"{kind} {event_id}: data.product has neither uuid nor identifier")
    return ProductEvent(
        event_id,
        kind,
        action,
        str(uuid) if uuid else None,
        str(identifier) if identifier else None,
        document,
    )


def _instant(text: Any) -> float:
    if not isinstance(text, str):
        raise Rejected("the event has no time (CloudEvents 'time'): its age cannot be checked")
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise Rejected(f"event time {text[:40]!r} is not RFC 3339") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.timestamp()


def verify(
    headers: Mapping[str, str],
    body: bytes,
    secrets: Sequence[str],
    now: float,
    tolerance: float,
) -> Verified:
    """The event's id and time once a signature matches one of the secrets.

    Akeneo signs the body only, so the time that stops replays is the event's own (inside
    the signed body), and its id is remembered for as long as that time is acceptable.
    """
    present = [h for h in SIGNATURE_HEADERS if headers.get(h.lower())]
    if not present:
        raise Rejected(f"missing header {SIGNATURE_HEADERS[0]}")
    for header in present:
        try:
            signatures.generic(
                headers,
                body,
                secrets,
                now,
                tolerance,
                signature_header=header,
                encoding="hex",
                prefix="",
                timestamp_header=None,
                id_header=None,
            )
        except Rejected:
            continue
        break
    else:
        raise Rejected("signature does not match")
    document = _document(body)  # BadEvent: signed, but not a CloudEvent
    stamp = _instant(document.get("time"))
    if abs(now - stamp) > tolerance:
        raise Rejected(
            f"event time is {abs(now - stamp):.0f} s from now (tolerance {tolerance:g} s)"
        )
    event_id = document.get("id")
    return Verified(str(event_id) if event_id else None, stamp)


def subscription(
    url: str, secret: str, previous: str | None, subscription_id: str
) -> dict[str, Any]:
    """The subscription's body: product events, the identifier in each, posted to ``url``."""
    keys = {"primary": secret}
    if previous:
        keys["secondary"] = previous
    return {
        "id": subscription_id,
        "source": "pim",
        "type": "https",
        "status": "active",
        "events": list(TYPES),
        # Without it a deleted product's event names only a uuid, which the hub never saw.
        "send_product_identifier": True,
        "config": {"url": url, "secret": keys},
    }
