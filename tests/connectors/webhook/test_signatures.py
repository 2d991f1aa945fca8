"""Signature schemes: the published vector, tampering, staleness, rotation, bad headers."""

from __future__ import annotations

import pytest

from mastersync.connectors.webhook import signatures
from mastersync.connectors.webhook.signatures import Rejected
from tests.connectors.webhook import signing

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def _lower(headers: dict[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


def test_standard_webhooks_published_vector() -> None:
    # The example of the Standard Webhooks specification, verified independently of our
    # own signing helper.
    headers = {
        "webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
        "webhook-timestamp": "1614265330",
        "webhook-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
    }
    body = b'{"test": 2432232314}'
    verified = signatures.standard(headers, body, [SECRET], 1614265330 + 10, 300)
    assert verified.message_id == "msg_p5jXN8AQM9LWM0D4loKWxJek"
    assert verified.timestamp == 1614265330
    with pytest.raises(Rejected, match="does not match"):
        signatures.standard(headers, body + b" ", [SECRET], 1614265330, 300)
    with pytest.raises(Rejected, match="from now"):
        signatures.standard(headers, body, [SECRET], 1614265330 + 301, 300)


def test_standard_several_signatures_and_rotation() -> None:
    old, new = SECRET, "whsec_" + "QUJDREVGR0hJSktMTU5PUA=="
    body = b'{"a":1}'
    signed = signing.standard(old, "m1", 1000, body)
    signed["webhook-signature"] = "v1,bm90IGl0 " + signed["webhook-signature"]
    assert signatures.standard(signed, body, [new, old], 1000, 300).message_id == "m1"
    with pytest.raises(Rejected, match="does not match"):
        signatures.standard(signed, body, [new], 1000, 300)
    with pytest.raises(Rejected, match="missing header webhook-id"):
        signatures.standard({}, body, [new], 1000, 300)
    bad = {**signed, "webhook-signature": "v2,abc"}
    with pytest.raises(Rejected, match="no v1"):
        signatures.standard(bad, body, [old], 1000, 300)
    # An old message re-sent with a fresh timestamp no longer matches its signature.
    with pytest.raises(Rejected, match="does not match"):
        signatures.standard({**signed, "webhook-timestamp": "2000"}, body, [old], 2000, 300)


def test_stripe() -> None:
    body = b'{"id":"evt_1","type":"customer.updated"}'
    headers = _lower(signing.stripe("whsec_stripe_test", 5000, body))
    assert signatures.stripe(headers, body, ["whsec_stripe_test"], 5100, 300).timestamp == 5000
    with pytest.raises(Rejected, match="from now"):
        signatures.stripe(headers, body, ["whsec_stripe_test"], 5400, 300)
    with pytest.raises(Rejected, match="does not match"):
        signatures.stripe(headers, body, ["another-secret"], 5000, 300)
    with pytest.raises(Rejected, match="needs t= and"):
        signatures.stripe({"stripe-signature": "v0=abc"}, body, ["s"], 5000, 300)


def test_shopify_and_generic_hmac() -> None:
    body = b'{"id":7}'
    headers = _lower(signing.shopify("shpss_secret", body, "products/update", "e-1"))
    assert signatures.shopify(headers, body, ["shpss_secret"], 0, 300).message_id == "e-1"
    with pytest.raises(Rejected, match="does not match"):
        signatures.shopify(headers, b'{"id":8}', ["shpss_secret"], 0, 300)
    import hashlib
    import hmac

    mac = hmac.new(b"gh-secret", body, hashlib.sha256).hexdigest()
    github = {"x-hub-signature-256": f"sha256={mac}", "x-github-delivery": "d-1"}
    options = {
        "signature_header": "X-Hub-Signature-256",
        "encoding": "hex",
        "prefix": "sha256=",
        "timestamp_header": None,
        "id_header": "X-GitHub-Delivery",
    }
    verified = signatures.generic(github, body, ["gh-secret"], 0, 300, **options)  # type: ignore[arg-type]
    assert verified.message_id == "d-1" and verified.timestamp is None
    with pytest.raises(Rejected, match="does not start with"):
        signatures.generic(
            {"x-hub-signature-256": mac},
            body,
            ["gh-secret"],
            0,
            300,
            **options,  # type: ignore[arg-type]
        )


def test_a_digest_of_the_signed_material_stands_in_for_an_unsigned_id() -> None:
    """Shopify and hmac sign no id: a captured request re-sent with a new id was a new
    push. The digest of what they do sign is the same however the headers are changed."""
    import hashlib
    import hmac

    body = b'{"id":7,"title":"Old title"}'
    signed = _lower(signing.shopify("shpss_secret", body, "products/update", "e-1"))
    first = signatures.shopify(signed, body, ["shpss_secret"], 0, 300)
    forged = {**signed, "x-shopify-event-id": "e-forged", "x-shopify-webhook-id": "w-forged"}
    replay = signatures.shopify(forged, body, ["shpss_secret"], 0, 300)
    assert replay.message_id == "e-forged"
    assert first.digest == replay.digest == hashlib.sha256(body).hexdigest()
    without_id = {"x-shopify-hmac-sha256": signed["x-shopify-hmac-sha256"]}
    assert signatures.shopify(without_id, body, ["shpss_secret"], 0, 300).digest == first.digest

    mac = hmac.new(b"ops-secret", b"1000." + body, hashlib.sha256).hexdigest()
    options = {
        "signature_header": "X-Signature",
        "encoding": "hex",
        "prefix": "",
        "timestamp_header": "X-Timestamp",
        "id_header": "X-Delivery",
    }
    one = {"x-signature": mac, "x-timestamp": "1000", "x-delivery": "d-1"}
    two = {**one, "x-delivery": "d-forged"}
    a = signatures.generic(one, body, ["ops-secret"], 1000, 300, **options)
    b = signatures.generic(two, body, ["ops-secret"], 1000, 300, **options)
    # The timestamp is signed, so it is part of what the digest covers.
    assert a.digest == b.digest == hashlib.sha256(b"1000." + body).hexdigest()
    # Schemes that sign their id need no digest: a new id does not verify.
    standard = signing.standard(SECRET, "m1", 1000, body)
    assert signatures.standard(standard, body, [SECRET], 1000, 300).digest is None
    stripe = _lower(signing.stripe("whsec_stripe_test", 1000, body))
    assert signatures.stripe(stripe, body, ["whsec_stripe_test"], 1000, 300).digest is None
