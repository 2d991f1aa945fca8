"""Compiling subscriptions: what the check refuses of a filter before it filters anything;
what a payload clears."""

from __future__ import annotations

import pytest

from mastersync.domain.canonical import DOMAINS
from mastersync.domain.landscape.delivery import DeliveryConfig, SubscriptionConfig
from mastersync.domain.problems import ConfigError
from mastersync.domain.subscriptions import (
    Subscription,
    cleared,
    compile_subscription,
    mark_cleared,
)


def compiled(domain: str, condition: str) -> Subscription:
    return compile_subscription(
        "shop",
        "subs",
        SubscriptionConfig.model_validate({"domain": domain, "filter": condition}),
        DeliveryConfig(),
        DOMAINS[domain].fields,
        DOMAINS[domain].references,
    )


@pytest.mark.parametrize(
    ("domain", "condition", "said"),
    [
        (
            "customer",
            "lifecycle_state != 'blockd'",
            "compares lifecycle_state with 'blockd', a value lifecycle_state never holds "
            "(it is one of: prospect, pending, active, blocked, inactive); "
            "did you mean 'blocked'?",
        ),
        (
            # A nested model's enumerated field, inside a function's arguments.
            "location",
            "kind == 'store' && contains(['shipping', 'bill'], address.type)",
            "compares address.type with 'bill', a value address.type never holds "
            "(it is one of: billing, shipping, registered, remit_to, other); "
            "did you mean 'billing'?",
        ),
    ],
)
def test_a_filter_comparing_an_enumerated_field_with_text_it_never_holds_is_refused(
    domain: str, condition: str, said: str
) -> None:
    """`lifecycle_state == 'actve'` compiled, and the subscription filtered out every record."""
    with pytest.raises(ConfigError) as exc:
        compiled(domain, condition)
    assert exc.value.loc == ("filter",)
    assert exc.value.message == f"{condition!r} {said}"


def test_a_filter_comparing_an_enumerated_field_with_its_values_filters_as_written() -> None:
    """Valid values compile and filter as before."""
    sub = compiled("customer", "lifecycle_state == 'active' || lifecycle_state == 'pending'")
    assert sub.matches({"lifecycle_state": "pending"})
    assert not sub.matches({"lifecycle_state": "blocked"})


def test_mark_cleared_says_null_for_what_the_consumer_holds_and_the_payload_lacks() -> None:
    """Fields, and fields of nested objects, the consumer was sent and the new payload
    lacks go out as null; what it never had, or had as null, stays out; lists are whole."""
    sent = {"sku": "A1", "brand": "Acme", "dims": {"w": 1, "h": 2}, "tags": [1], "gone": None}
    payload = {"sku": "A1", "dims": {"w": 1}, "tags": []}
    assert mark_cleared(payload, sent) == {
        "sku": "A1",
        "brand": None,
        "dims": {"w": 1, "h": None},
        "tags": [],
    }
    assert payload == {"sku": "A1", "dims": {"w": 1}, "tags": []}  # not changed in place
    # An object gone altogether: its fields, each null (a null object would wipe fields
    # the hub never sent).
    gone = mark_cleared({"sku": "A1"}, {"sku": "A1", "dims": {"w": 1, "in": {"x": 2}}})
    assert gone == {"sku": "A1", "dims": {"w": None, "in": {"x": None}}}


def test_cleared_reads_canonical_fields_and_changed_objects() -> None:
    """A state lacking a field another had may have cleared it, and so may an object field
    that changed (one of its fields may be gone); meta fields do not count."""
    assert cleared({"sku": "A1"}, {"sku": "A1", "brand": "Acme"})
    assert not cleared({"sku": "A1", "brand": "X"}, {"sku": "A1", "_version": 3})
    assert cleared({"dims": {"w": 1}}, {"dims": {"w": 1, "h": 2}})
    assert not cleared({"dims": {"w": 1}, "sku": "B"}, {"dims": {"w": 1}, "sku": "A"})
