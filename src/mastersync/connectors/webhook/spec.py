"""Settings and registry entry of the webhook connector (light: imports nothing heavy)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from mastersync.connectors.registry import ConnectorSettings, ConnectorSpec
from mastersync.ports.connector import Capability

Scheme = Literal["standard", "stripe", "shopify", "hmac"]


class WebhookSettings(ConnectorSettings):
    """type: webhook. Pushes arrive at POST /hooks/SYSTEM (topics name the domain) or
    POST /hooks/SYSTEM/DOMAIN."""

    type: Literal["webhook"] = "webhook"
    # standard: Standard Webhooks (webhook-id, webhook-timestamp, webhook-signature v1);
    # stripe: Stripe-Signature t=,v1=; shopify: X-Shopify-Hmac-Sha256 over the body;
    # hmac: any HMAC-SHA256 of the body (GitHub style), described by the *_header keys.
    scheme: Scheme = "standard"
    secret: str = Field(min_length=8)
    # During a rotation both secrets verify.
    previous_secret: str | None = None
    # Seconds a signed timestamp may differ from now (replays older than this are refused).
    tolerance: float = Field(default=300, gt=0)
    # Seconds a message id is remembered (a re-sent id is acknowledged and ignored), and
    # for shopify and hmac, whose signatures do not cover the id, the digest of the signed
    # content too (the same content under another id is ignored as well). At least twice
    # the tolerance.
    remember: float = Field(default=7 * 86400, gt=0)
    # Domains this system may push (each needs an inbound mapping).
    domains: list[str] = Field(min_length=1)
    # Event type (topic) -> domain, for pushes to /hooks/SYSTEM; unlisted topics are
    # acknowledged and ignored.
    topics: dict[str, str] = Field(default_factory=dict)
    # JMESPath to the record (or list of records) in the body; default per scheme:
    # standard "data", stripe "data.object", shopify and hmac the body itself.
    records: str | None = None
    max_body: int = Field(default=1 << 20, gt=0)
    # hmac scheme only
    signature_header: str = "X-Signature"
    signature_encoding: Literal["hex", "base64"] = "hex"
    signature_prefix: str = ""
    timestamp_header: str | None = None
    id_header: str | None = None
    topic_header: str | None = None

    @model_validator(mode="after")
    def _topics_in_domains(self) -> WebhookSettings:
        for topic, domain in self.topics.items():
            if domain not in self.domains:
                raise ValueError(f"topics.{topic}: domain {domain!r} is not in domains")
        return self


SPEC = ConnectorSpec(
    name="webhook",
    description="Signed pushes over HTTP (Standard Webhooks, Stripe, Shopify, HMAC), "
    "acknowledged once stored",
    capabilities=frozenset({Capability.RECEIVE_PUSH}),
    settings=WebhookSettings,
    factory="mastersync.connectors.webhook.receiver:WebhookConnector",
)
