"""Akeneo's CloudEvents: parsed into product events, verified by signature and age, and the
subscription that asks for them."""

from __future__ import annotations

import json

import pytest

from mastersync.connectors.akeneo.events import (
    TYPES,
    BadEvent,
    parse_event,
    subscription,
    verify,
)
from mastersync.connectors.webhook.signatures import Rejected
from tests.connectors.akeneo.support import body, signature, time_of

SECRET = "primary-secret-0001"
OLD = "secondary-secret-0002"


def headers(content: bytes, secret: str = SECRET, header: str = "primary") -> dict[str, str]:
    return {
        f"x-akeneo-signature-{header}": signature(secret, content),
        "x-akeneo-signature-algorithm": "HmacSHA256",
    }


def test_an_updated_event_names_its_product() -> None:
    event = parse_event(body("event_updated.json"))
    assert event.id == "0190d6c4-3b1e-7a55-9e0c-6c2b9f1d0a01"
    assert event.action == "updated"
    assert event.uuid == "0b7f0a52-5c3e-4d0e-9d7e-2f1f6a0c9a11"
    assert event.identifier == "HX-220"
    assert event.product == "HX-220"
    assert parse_event(body("event_deleted.json")).action == "deleted"


def test_an_event_without_identifier_is_named_by_its_uuid() -> None:
    document = json.loads(body("event_updated.json"))
    del document["data"]["product"]["identifier"]
    event = parse_event(json.dumps(document).encode())
    assert event.identifier is None
    assert event.product == "0b7f0a52-5c3e-4d0e-9d7e-2f1f6a0c9a11"


def test_other_event_types_are_parsed_but_not_taken() -> None:
    event = parse_event(body("event_family.json"))
    assert event.action is None
    assert event.type == "com.akeneo.pim.v1.family.updated"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"not json", "not JSON"),
        (b"[]", "not an object"),
        (b'{"type": "com.akeneo.pim.v1.product.updated"}', "'type' and 'id'"),
        (b'{"id": "1", "type": "com.akeneo.pim.v1.product.updated", "data": {}}', "no product"),
        (
            b'{"id": "1", "type": "com.akeneo.pim.v1.product.deleted", "data": {"product": {}}}',
            "neither uuid nor identifier",
        ),
    ],
)
def test_bodies_that_are_not_product_events_are_refused(content: bytes, message: str) -> None:
    with pytest.raises(BadEvent, match=message):
        parse_event(content)


def test_a_signed_fresh_event_is_verified_with_its_id_and_time() -> None:
    content = body("event_updated.json")
    now = time_of("event_updated.json") + 2
    verified = verify(headers(content), content, [SECRET], now, 300)
    assert verified.message_id == "0190d6c4-3b1e-7a55-9e0c-6c2b9f1d0a01"
    assert verified.timestamp == time_of("event_updated.json")


def test_either_signature_and_either_secret_verify_during_a_rotation() -> None:
    content = body("event_updated.json")
    now = time_of("event_updated.json")
    # Akeneo still signs with the old secret as primary: the previous secret verifies it.
    assert verify(headers(content, OLD), content, [SECRET, OLD], now, 300).message_id
    # The primary header is someone else's secret, the secondary is ours.
    mixed = {**headers(content, "another-secret"), **headers(content, SECRET, "secondary")}
    assert verify(mixed, content, [SECRET], now, 300).message_id


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"x-akeneo-signature-primary": "00" * 32}, "does not match"),
        ({"x-akeneo-signature-primary": "not hex"}, "does not match"),
    ],
)
def test_a_wrong_signature_is_rejected(change: dict[str, str], message: str) -> None:
    content = body("event_updated.json")
    with pytest.raises(Rejected, match=message):
        verify(
            {**headers(content), **change}, content, [SECRET], time_of("event_updated.json"), 300
        )


def test_an_unsigned_event_is_rejected() -> None:
    content = body("event_updated.json")
    with pytest.raises(Rejected, match="missing header X-AKENEO-SIGNATURE-PRIMARY"):
        verify({}, content, [SECRET], time_of("event_updated.json"), 300)


def test_a_changed_body_is_rejected() -> None:
    content = body("event_updated.json")
    tampered = content.replace(b"HX-220", b"HX-999")
    with pytest.raises(Rejected, match="does not match"):
        verify(headers(content), tampered, [SECRET], time_of("event_updated.json"), 300)


def test_an_old_event_is_a_replay_and_rejected() -> None:
    content = body("event_updated.json")
    later = time_of("event_updated.json") + 301
    with pytest.raises(Rejected, match="301 s from now"):
        verify(headers(content), content, [SECRET], later, 300)


def test_an_event_without_a_time_cannot_be_checked_and_is_rejected() -> None:
    document = json.loads(body("event_updated.json"))
    del document["time"]
    content = json.dumps(document).encode()
    with pytest.raises(Rejected, match="no time"):
        verify(headers(content), content, [SECRET], 0, 300)
    document["time"] = "yesterday"
    content = json.dumps(document).encode()
    with pytest.raises(Rejected, match="not RFC 3339"):
        verify(headers(content), content, [SECRET], 0, 300)


def test_a_signed_body_that_is_not_json_is_a_bad_event_not_a_forgery() -> None:
    with pytest.raises(BadEvent):
        verify(headers(b"oops"), b"oops", [SECRET], 0, 300)


def test_the_subscription_asks_for_product_events_with_identifiers_and_both_secrets() -> None:
    body_ = subscription("http://hub:8088/hooks/akeneo", SECRET, OLD, "mastersync-products")
    assert body_["events"] == list(TYPES)
    assert body_["send_product_identifier"] is True
    assert body_["status"] == "active"
    assert body_["config"] == {
        "url": "http://hub:8088/hooks/akeneo",
        "secret": {"primary": SECRET, "secondary": OLD},
    }
    assert "secondary" not in subscription("u", SECRET, None, "s")["config"]["secret"]
