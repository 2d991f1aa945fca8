"""Compiling subscriptions: what the check refuses of a filter before it filters anything."""

from __future__ import annotations

import pytest

from mastersync.domain.canonical import DOMAINS
from mastersync.domain.landscape.delivery import DeliveryConfig, SubscriptionConfig
from mastersync.domain.problems import ConfigError
from mastersync.domain.subscriptions import Subscription, compile_subscription


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
