"""Akeneo's events at the hub's webhook receiver (POST /hooks/SYSTEM[/DOMAIN]).

A push is taken like any webhook's: verified, ingested durably, then acknowledged, each
event id once. What differs is the body: a CloudEvent naming a product. For created and
updated events the product is read from the PIM (its current state: a later change is read
early, and the event that follows it changes nothing) through the domain's listing, with its
search and attributes: a product the listing would not give is not taken either. A deleted
event cannot be read: it becomes an entry in the exceptions inbox (rule ``deleted_in_akeneo``,
the event as its raw payload), so a person decides what the deletion means for the golden
record and the other systems; nothing is changed by itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from mastersync.connectors.akeneo import events
from mastersync.connectors.akeneo.events import BadEvent
from mastersync.connectors.webhook.receiver import BadPush, Push, WebhookConnector
from mastersync.connectors.webhook.signatures import Verified
from mastersync.connectors.webhook.spec import WebhookSettings
from mastersync.ports.connector import ReadFailure, SourceRecord

if TYPE_CHECKING:
    from mastersync.connectors.akeneo.connector import AkeneoConnector

DELETED_RULE = "deleted_in_akeneo"


def deletion(event: events.ProductEvent, system: str) -> ReadFailure:
    """What a deleted event leaves in the inbox."""
    return ReadFailure(
        f"{system} product {event.product}",
        DELETED_RULE,
        f"product {event.product} was deleted in {system} (event {event.id}); the golden "
        "record and the other systems are unchanged, and the next delivery of the item "
        "to this system creates the product again",
        event.document,
    )


class AkeneoReceiver(WebhookConnector):
    """Verifies Akeneo's signatures and turns product events into records."""

    def __init__(self, connector: AkeneoConnector) -> None:
        settings = connector.settings.events
        domain = connector.settings.events_domain
        assert settings is not None
        assert domain is not None
        super().__init__(
            WebhookSettings(
                type="webhook",
                scheme="hmac",
                secret=settings.secret,
                previous_secret=settings.previous_secret,
                tolerance=settings.tolerance,
                domains=[domain],
                topics=dict.fromkeys(events.TYPES, domain),
                max_body=settings.max_body,
                signature_header=events.SIGNATURE_HEADERS[0],
            ),
            connector.context,
        )
        self.connector = connector
        self.domain = domain

    @property
    def guarded_headers(self) -> tuple[str, ...]:
        """Both signature headers (primary and, during a secret's rotation, secondary): of
        two values of either, which one was checked would be anybody's guess."""
        return tuple(h.lower() for h in events.SIGNATURE_HEADERS)

    @property
    def id_lifetime(self) -> float:
        """An event older than the tolerance is refused, so its id need not be kept longer."""
        return 2 * self.settings.tolerance

    def verify(self, headers: Mapping[str, str], body: bytes, now: float) -> Verified:
        """The event's id and time, once its signature and age are right (Rejected if not)."""
        try:
            return events.verify(headers, body, self.secrets, now, self.settings.tolerance)
        except BadEvent as exc:
            raise BadPush(str(exc)) from None

    def parse(
        self,
        headers: Mapping[str, str],
        body: bytes,
        verified: Verified,
        domain: str | None,
    ) -> Push:
        """The product an event names, read from the PIM, as a record of the events' domain
        (a deleted product: an inbox entry). Reads raise ConnectorError when the PIM fails."""
        try:
            event = events.parse_event(body)
        except BadEvent as exc:
            raise BadPush(str(exc)) from None
        if event.action is None:
            return Push(event.id, None, event.type)  # acknowledged, nothing to take
        if domain is not None and domain != self.domain:
            raise BadPush(f"{self.system} pushes {self.domain}, not {domain}")
        records: list[SourceRecord | ReadFailure] = []
        if event.action == "deleted":
            records.append(deletion(event, self.system))
        else:
            record = self.connector.fetch(self.domain, uuid=event.uuid, identifier=event.identifier)
            # None: deleted since (its own event follows), or not in the domain (another
            # family, say): acknowledged, nothing taken.
            if record is not None:
                record.locator = f"akeneo event {event.id}: product {event.product}"
                records.append(record)
        return Push(event.id, self.domain, event.type, records)
