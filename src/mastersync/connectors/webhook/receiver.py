"""The webhook connector: verifies a push and turns its body into records of a domain."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import jmespath
import orjson

from mastersync.connectors.registry import ConnectorContext
from mastersync.connectors.webhook import signatures
from mastersync.connectors.webhook.signatures import Verified
from mastersync.connectors.webhook.spec import WebhookSettings
from mastersync.ports.connector import CheckResult, ReadFailure, SourceRecord

_DEFAULT_RECORDS = {"standard": "data", "stripe": "data.object"}
_TOPIC_HEADERS = {"shopify": "x-shopify-topic"}
# Headers each scheme reads its signature, id, timestamp and topic from (lower case).
_SCHEME_HEADERS = {
    "standard": ("webhook-id", "webhook-timestamp", "webhook-signature"),
    "stripe": ("stripe-signature",),
    "shopify": (
        "x-shopify-hmac-sha256",
        "x-shopify-event-id",
        "x-shopify-webhook-id",
        "x-shopify-topic",
    ),
}

log = logging.getLogger("mastersync.webhooks")


class BadPush(Exception):
    """A verified push whose body cannot be used; the message says why."""


@dataclass
class Push:
    """A verified push, ready to ingest (no domain: a topic nobody subscribed to)."""

    message_id: str | None
    domain: str | None
    topic: str | None
    # ReadFailure: input its receiver records without a record (an Akeneo deletion).
    records: list[SourceRecord | ReadFailure] = field(default_factory=list)
    # Verified.digest: what the signature covers, where it does not cover message_id.
    digest: str | None = None


class WebhookConnector:
    """Checks signatures, timestamps and size; extracts records."""

    def __init__(self, settings: WebhookSettings, context: ConnectorContext) -> None:
        self.settings = settings
        self.system = context.system
        self.secrets = [s for s in (settings.secret, settings.previous_secret) if s]
        self._records = jmespath.compile(
            settings.records or _DEFAULT_RECORDS.get(settings.scheme, "@")
        )
        if settings.scheme == "hmac":
            if settings.timestamp_header is None:
                log.warning(
                    "%s: hmac webhooks without timestamp_header cannot stop a replay (a "
                    "captured request sent again under a new id is taken); set "
                    "timestamp_header if the sender signs a time, or map a version",
                    context.system,
                )
            self._verify: Any = partial(
                signatures.generic,
                signature_header=settings.signature_header,
                encoding=settings.signature_encoding,
                prefix=settings.signature_prefix,
                timestamp_header=settings.timestamp_header,
                id_header=settings.id_header,
            )
        else:
            self._verify = getattr(signatures, settings.scheme)

    @property
    def id_lifetime(self) -> float:
        """Seconds a message id (and a signed content's digest) is remembered: long enough to
        stop a replay within the tolerance, and a sender's retry after a lost acknowledgement
        (re-signed with a fresh timestamp, so the tolerance does not stop it: kept only twice
        the tolerance, a retry an hour late applied an old version over a newer one)."""
        return max(self.settings.remember, 2 * self.settings.tolerance)

    @property
    def guarded_headers(self) -> tuple[str, ...]:
        """Headers (lower case) that must come at most once: the signature, id, timestamp
        and topic are read from them, and of two values one would be taken silently."""
        if self.settings.scheme != "hmac":
            return _SCHEME_HEADERS[self.settings.scheme]
        named = (
            self.settings.signature_header,
            self.settings.timestamp_header,
            self.settings.id_header,
            self.settings.topic_header,
        )
        return tuple(h.lower() for h in named if h)

    def verify(self, headers: Mapping[str, str], body: bytes, now: float) -> Verified:
        """The signature's promise, or Rejected; headers are lower-cased names."""
        verified: Verified = self._verify(headers, body, self.secrets, now, self.settings.tolerance)
        return verified

    def _topic(self, headers: Mapping[str, str], body: Any) -> str | None:
        name = _TOPIC_HEADERS.get(self.settings.scheme) or (
            self.settings.topic_header.lower() if self.settings.topic_header else None
        )
        if name:
            return headers.get(name)
        if isinstance(body, dict) and isinstance(body.get("type"), str):
            return str(body["type"])
        return None

    def parse(
        self,
        headers: Mapping[str, str],
        body: bytes,
        verified: Verified,
        domain: str | None,
    ) -> Push:
        """Records of a verified body, for the URL's domain or the topic's."""
        try:
            document = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise BadPush(f"body is not JSON: {exc.msg}") from None
        message_id = verified.message_id
        if (
            message_id is None
            and self.settings.scheme == "stripe"
            and isinstance(document, dict)
            and document.get("id")
        ):
            # Stripe's event id is in the body. Another scheme's body is the record itself:
            # its `id` is the record's key, and taking it for a delivery id dropped every
            # later update of the record as a duplicate.
            message_id = str(document["id"])
        topic = self._topic(headers, document)
        if domain is None:
            domain = self.settings.topics.get(topic or "")
            if domain is None:
                return Push(message_id, None, topic)
        elif domain not in self.settings.domains:
            raise BadPush(
                f"{self.system} does not push {domain}; it pushes "
                f"{', '.join(self.settings.domains)}"
            )
        found = self._records.search(document)
        if not isinstance(found, list | dict):
            # No record at all where the records are read: the push itself is malformed.
            raise BadPush(f"record 0 at {self._records.expression!r} is not an object")
        items = found if isinstance(found, list) else [found]
        records: list[SourceRecord | ReadFailure] = []
        for i, item in enumerate(items):
            where = f"webhook {message_id or '?'}" + (f"[{i}]" if len(items) > 1 else "")
            if not isinstance(item, dict):
                # One bad item of a batch goes to the inbox; the others are stored (a 400 for
                # the whole body lost them all, and the sender does not retry a 400).
                message = f"record {i} at {self._records.expression!r} is not an object"
                records.append(ReadFailure(where, "record", message, item))
                continue
            records.append(SourceRecord(item, locator=where))
        return Push(message_id, domain, topic, records, verified.digest)

    def check(self) -> CheckResult:
        """What a configured receiver accepts."""
        routes = [f"POST /hooks/{self.system}/{d}" for d in self.settings.domains]
        if self.settings.topics:
            routes.append(f"POST /hooks/{self.system} (topics: {', '.join(self.settings.topics)})")
        return CheckResult(True, [f"{self.settings.scheme} signatures", *routes])

    async def close(self) -> None:
        """Nothing to release."""
