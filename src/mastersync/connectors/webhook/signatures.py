"""Signature and timestamp checks of the webhook schemes: constant-time comparisons, every
candidate signature tried against every configured secret."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


class Rejected(Exception):
    """A push that must not be accepted; the message says why (never a secret)."""


@dataclass(frozen=True)
class Verified:
    """What a valid signature vouches for."""

    message_id: str | None
    timestamp: float | None
    # SHA-256 (hex) of the signed material, set where the signature does not cover the
    # message id: a captured request re-sent with a new id is caught by this instead.
    digest: str | None = None


def _digest(signed: bytes) -> str:
    return hashlib.sha256(signed).hexdigest()


def _mac(key: bytes, content: bytes) -> bytes:
    return hmac.new(key, content, hashlib.sha256).digest()


def _header(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name.lower())
    if not value:
        raise Rejected(f"missing header {name}")
    return value


def _fresh(timestamp: str, now: float, tolerance: float) -> float:
    try:
        ts = float(int(timestamp))
    except ValueError:
        raise Rejected(f"timestamp {timestamp[:32]!r} is not a Unix time") from None
    if abs(now - ts) > tolerance:
        raise Rejected(f"timestamp is {abs(now - ts):.0f} s from now (tolerance {tolerance:g} s)")
    return ts


def _any_matches(expected: Sequence[bytes], given: Sequence[bytes]) -> bool:
    # Compare every pair without stopping early, so timing says nothing about which one.
    found = False
    for e in expected:
        for g in given:
            found |= hmac.compare_digest(e, g)
    return found


def standard(
    headers: Mapping[str, str], body: bytes, secrets: Sequence[str], now: float, tolerance: float
) -> Verified:
    """Standard Webhooks: base64 HMAC-SHA256 of "id.timestamp.body", secret whsec_<base64>."""
    message_id = _header(headers, "webhook-id")
    stamp = _header(headers, "webhook-timestamp")
    given = []
    for part in _header(headers, "webhook-signature").split():
        version, _, value = part.partition(",")
        if version == "v1":
            try:
                given.append(base64.b64decode(value, validate=True))
            except binascii.Error:
                continue
    if not given:
        raise Rejected("webhook-signature holds no v1 signature")
    content = f"{message_id}.{stamp}.".encode() + body
    keys = []
    for secret in secrets:
        try:
            keys.append(base64.b64decode(secret.removeprefix("whsec_"), validate=True))
        except binascii.Error:
            raise Rejected("the configured secret is not whsec_<base64>") from None
    if not _any_matches([_mac(k, content) for k in keys], given):
        raise Rejected("signature does not match")
    return Verified(message_id, _fresh(stamp, now, tolerance))


def stripe(
    headers: Mapping[str, str], body: bytes, secrets: Sequence[str], now: float, tolerance: float
) -> Verified:
    """Stripe: Stripe-Signature "t=...,v1=<hex>,...", HMAC-SHA256 of "t.body"."""
    stamp, given = "", []
    for item in _header(headers, "Stripe-Signature").split(","):
        key, _, value = item.strip().partition("=")
        if key == "t":
            stamp = value
        elif key == "v1":
            try:
                given.append(bytes.fromhex(value))
            except ValueError:
                continue
    if not stamp or not given:
        raise Rejected("Stripe-Signature needs t= and at least one v1=")
    content = f"{stamp}.".encode() + body
    if not _any_matches([_mac(s.encode(), content) for s in secrets], given):
        raise Rejected("signature does not match")
    return Verified(None, _fresh(stamp, now, tolerance))


def shopify(
    headers: Mapping[str, str], body: bytes, secrets: Sequence[str], now: float, tolerance: float
) -> Verified:
    """Shopify: X-Shopify-Hmac-Sha256, base64 HMAC-SHA256 of the body with the app secret.

    The signature covers no header, so the triggered-at time proves nothing and neither
    does the event id (a replay can carry any): replays are stopped by remembering the
    body's digest, and the event id too (Shopify's retries keep both).
    """
    try:
        given = base64.b64decode(_header(headers, "X-Shopify-Hmac-Sha256"), validate=True)
    except binascii.Error:
        raise Rejected("X-Shopify-Hmac-Sha256 is not base64") from None
    if not _any_matches([_mac(s.encode(), body) for s in secrets], [given]):
        raise Rejected("signature does not match")
    message_id = headers.get("x-shopify-event-id") or headers.get("x-shopify-webhook-id")
    return Verified(message_id, None, _digest(body))


def generic(
    headers: Mapping[str, str],
    body: bytes,
    secrets: Sequence[str],
    now: float,
    tolerance: float,
    *,
    signature_header: str,
    encoding: str,
    prefix: str,
    timestamp_header: str | None,
    id_header: str | None,
) -> Verified:
    """HMAC-SHA256 of the body (or of "timestamp.body" when a timestamp header is set); the
    id header is not signed, so with a timestamp the digest of what is signed stops
    replays. Without one a replay cannot be told from the sender repeating itself (a name
    changed back): no digest, so nothing stops a captured request sent again under a new
    id (the id header catches the sender's own retries; versions in the body make ingest
    refuse an older one)."""
    raw = _header(headers, signature_header)
    if prefix and not raw.startswith(prefix):
        raise Rejected(f"{signature_header} does not start with {prefix!r}")
    raw = raw[len(prefix) :]
    try:
        given = bytes.fromhex(raw) if encoding == "hex" else base64.b64decode(raw, validate=True)
    except (ValueError, binascii.Error):
        raise Rejected(f"{signature_header} is not {encoding}") from None
    stamp = _header(headers, timestamp_header) if timestamp_header else None
    content = (f"{stamp}.".encode() + body) if stamp is not None else body
    if not _any_matches([_mac(s.encode(), content) for s in secrets], [given]):
        raise Rejected("signature does not match")
    message_id = headers.get(id_header.lower()) if id_header else None
    if stamp is None:
        return Verified(message_id, None)
    return Verified(message_id, _fresh(stamp, now, tolerance), _digest(content))
