"""Delivery rules: backoff, a record's state at any version, what a subscription sends."""

from __future__ import annotations

import json
import random
from decimal import Decimal

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mastersync.domain.delivery import (
    MAX_WAIT,
    DeliveryStatus,
    after_failure,
    backoff_delay,
    idempotency_key,
    resent_as,
    state_at,
    state_before,
    unwind,
)
from mastersync.domain.golden import ChangeEvent
from mastersync.domain.landscape.delivery import DeliveryConfig, SubscriptionConfig
from mastersync.domain.landscape.model import Landscape
from mastersync.domain.landscape.policy import compile_landscape
from mastersync.domain.mapping.objects import json_shaped
from mastersync.domain.mapping.paths import compile_condition
from mastersync.domain.problems import ConfigError
from mastersync.domain.subscriptions import (
    Operation,
    OutboundMappingFailed,
    compile_subscription,
)

ITEM_FIELDS = (
    "sku",
    "name",
    "gtin",
    "lifecycle_state",
    "list_price",
    "net_weight_kg",
    "description",
)


def event(version: int, **changes: object) -> ChangeEvent:
    return ChangeEvent(
        f"e{version}",
        "itm_1",
        "item",
        version,
        "updated",
        {k: {"before": None, "after": v} for k, v in changes.items()},
        "1.0",
        "t",
        "c",
        "now",
    )


def test_state_is_folded_from_events_up_to_a_version() -> None:
    events = [
        event(2, name="Pen 2", brand=None),
        event(1, name="Pen", brand="B"),
        event(3, lifecycle_state="active"),
    ]
    assert state_at(events, 1) == {"name": "Pen", "brand": "B"}
    assert state_at(events, 2) == {"name": "Pen 2"}
    assert state_at(events, 3) == {"name": "Pen 2", "lifecycle_state": "active"}
    assert state_at(events, 4) is None  # no such version


# A history: each version sets or clears some of a few fields.
histories = st.lists(
    st.dictionaries(st.sampled_from(["name", "brand", "price"]), st.none() | st.integers(0, 3)),
    min_size=1,
    max_size=8,
)


def _events(history: list[dict[str, int | None]]) -> list[ChangeEvent]:
    """Events with before/after as the merge writes them (only fields whose value changed)."""
    state: dict[str, int] = {}
    out = []
    for version, sets in enumerate(history, start=1):
        changes = {}
        for name, value in sets.items():
            if state.get(name) != value:
                changes[name] = {"before": state.get(name), "after": value}
                if value is None:
                    state.pop(name, None)
                else:
                    state[name] = value
        out.append(
            ChangeEvent(
                f"e{version}", "m", "item", version, "updated", changes, "1", "t", "c", "now"
            )
        )
    return out


@given(histories, st.data())
def test_unwinding_the_current_state_equals_folding_forward(
    history: list[dict[str, int | None]], data: st.DataObject
) -> None:
    events = _events(history)
    last = len(events)
    current = state_at(events, last)
    assert current is not None
    version = data.draw(st.integers(1, last))
    newer = [e for e in events if e.version > version]
    assert state_before(current, last, newer, version) == state_at(events, version)
    # Unwinding passes through every version between, each as folding forward gives it.
    assert unwind(current, last, newer, version) == {
        v: state_at(events, v) for v in range(version, last + 1)
    }


def test_unwinding_needs_every_version_after() -> None:
    events = _events([{"name": 1}, {"name": 2}, {"name": 3}])
    assert state_before({"name": 3}, 3, [events[2]], 1) is None  # version 2 is missing
    assert state_before({"name": 3}, 3, events[1:], 1) == {"name": 1}


def test_backoff_grows_is_jittered_capped_and_honours_retry_after() -> None:
    cfg = DeliveryConfig.model_validate(
        {"backoff": {"initial": "1s", "max": "10s", "multiplier": 2, "jitter": 0.2}}
    )
    rng = random.Random(1)
    delays = [backoff_delay(n, cfg, rng) for n in range(1, 8)]
    assert 0.8 <= delays[0] <= 1.2 and 1.6 <= delays[1] <= 2.4
    assert all(d <= 10 for d in delays) and delays[-1] >= 8
    assert backoff_delay(1, cfg, rng, retry_after=30) == 30  # Retry-After wins, even past max
    # ... up to a day: a year's wait overflowed the next attempt's time and failed the round.
    assert backoff_delay(1, cfg, rng, retry_after=float("inf")) == MAX_WAIT == 86_400
    assert backoff_delay(1, cfg, rng, retry_after=1e12) == MAX_WAIT
    assert 0.8 <= backoff_delay(1, cfg, rng, retry_after=float("nan")) <= 1.2


def test_durations_accept_units() -> None:
    cfg = DeliveryConfig.model_validate({"timeout": "250ms", "backoff": {"max": "5m"}})
    assert cfg.timeout == 0.25 and cfg.backoff.max == 300
    with pytest.raises(ValueError, match="not a duration"):
        DeliveryConfig.model_validate({"timeout": "soon"})
    # No time at all failed every delivery ("no answer within 0 s"); a zero backoff is fine.
    with pytest.raises(ValueError, match="greater than 0"):
        DeliveryConfig.model_validate({"timeout": "0s"})
    assert DeliveryConfig.model_validate({"backoff": {"initial": 0}}).backoff.initial == 0


def test_failures_retry_until_attempts_run_out_terminal_ones_die_at_once() -> None:
    cfg = DeliveryConfig(max_attempts=3)
    assert after_failure(1, cfg, terminal=False) is DeliveryStatus.RETRYING
    assert after_failure(3, cfg, terminal=False) is DeliveryStatus.DEAD
    assert after_failure(1, cfg, terminal=True) is DeliveryStatus.DEAD
    assert idempotency_key("itm_1", 7) == "itm_1:7"


def subscription(**cfg: object) -> object:
    return compile_subscription(
        "shop",
        "items",
        SubscriptionConfig.model_validate({"domain": "item", **cfg}),
        DeliveryConfig(),
        ITEM_FIELDS,
    )


def test_filter_projection_and_mapping() -> None:
    sub = compile_subscription(
        "shop",
        "items",
        SubscriptionConfig.model_validate(
            {
                "domain": "item",
                "filter": "lifecycle_state == 'active'",
                "fields": ["sku", "name", "lifecycle_state"],
                "mapping": {
                    "fields": {
                        "handle": "sku",
                        "title": {"from": "name", "case": "upper"},
                        "id": "_master_id",
                        "price": "list_price",
                    }
                },
            }
        ),
        DeliveryConfig(),
        ITEM_FIELDS,
    )
    state = {"sku": "A1", "name": "Pen", "lifecycle_state": "active", "list_price": "2"}
    view = sub.view("itm_1", 3, state)
    assert sub.operation(view, active_at_consumer=False) is Operation.UPSERT
    # list_price is outside the projection: the consumer never sees it.
    assert sub.payload(view) == {"handle": "A1", "title": "PEN", "id": "itm_1"}
    draft = sub.view("itm_1", 4, {**state, "lifecycle_state": "draft"})
    assert sub.operation(draft, active_at_consumer=True) is Operation.DEACTIVATE
    assert sub.operation(draft, active_at_consumer=False) is Operation.SKIP


def test_a_filter_compares_amounts_as_numbers_and_one_it_cannot_evaluate_fails_its_record() -> None:
    """Amounts are exact text in records ("2.5"): `list_price > `1`` raised TypeError in
    every round, and the subscription stood still for good."""
    landscape = compile_landscape(
        Landscape.model_validate(
            {
                "name": "f",
                "systems": {
                    "shop": {
                        "kind": "ecommerce",
                        "outbound": {
                            "items": {"domain": "item", "filter": "list_price > `1`"},
                        },
                    },
                    "bi": {
                        "kind": "other",
                        "outbound": {
                            "odd": {"domain": "item", "filter": "sku == 'B1' || name > `1`"},
                        },
                    },
                },
            }
        )
    )
    items, odd = landscape.subscriptions["shop.items"], landscape.subscriptions["bi.odd"]
    dear, cheap = ({"sku": "A1", "name": "Pen", "list_price": p} for p in ("2.5", "0.10"))
    assert items.operation(items.view("itm_1", 1, dear), False) is Operation.UPSERT
    assert items.operation(items.view("itm_1", 2, cheap), True) is Operation.DEACTIVATE
    assert items.operation(items.view("itm_2", 1, {"sku": "A2"}), False) is Operation.SKIP
    # Equality stays JMESPath's (text), and a nested amount orders as a number too.
    assert compile_condition("list_price == '2.5'")({"list_price": "2.5"})
    assert not compile_condition("list_price == `2.5`")({"list_price": "2.5"})
    assert compile_condition("credit_limit.amount > `1000`")({"credit_limit": {"amount": "5000"}})
    assert compile_condition("length(pack_levels[?quantity >= `10`]) == `1`")(
        {"pack_levels": [{"quantity": "10"}, {"quantity": "2"}]}
    )
    assert odd.operation(odd.view("itm_3", 1, {"sku": "B1", "name": "x"}), False) is (
        Operation.UPSERT
    )
    with pytest.raises(OutboundMappingFailed) as failed:
        odd.operation(odd.view("itm_1", 1, dear), False)
    assert (failed.value.field, failed.value.rule) == ("filter", "condition")
    assert "cannot be evaluated on this record" in failed.value.message
    assert "to_number(field)" in failed.value.message


def test_an_outbound_list_template_keeps_its_condition() -> None:
    sub = subscription(
        mapping={
            "fields": {
                "codes": [
                    {"when": "gtin", "type": {"const": "ean"}, "value": "gtin"},
                    {"when": "sku", "type": {"const": "sku"}, "value": "sku"},
                ]
            }
        }
    )
    payload = sub.payload(sub.view("itm_1", 1, {"sku": "A1"}))
    assert payload == {"codes": [{"type": "sku", "value": "A1"}]}


def test_an_outbound_mapping_failure_is_terminal() -> None:
    sub = compile_subscription(
        "shop",
        "items",
        SubscriptionConfig.model_validate(
            {
                "domain": "item",
                "mapping": {
                    "fields": {"state": {"from": "lifecycle_state", "map": {"active": "A"}}}
                },
            }
        ),
        DeliveryConfig(),
        ITEM_FIELDS,
    )
    with pytest.raises(OutboundMappingFailed) as exc:
        sub.payload(sub.view("itm_1", 1, {"lifecycle_state": "draft"}))
    assert (exc.value.field, exc.value.rule) == ("state", "value_map")


def test_subscription_config_errors_name_their_key() -> None:
    with pytest.raises(ConfigError) as exc:
        subscription(fields=["sku", "colour"])
    assert exc.value.loc == ("fields", 1)
    with pytest.raises(ConfigError) as exc:
        subscription(filter="name ==")
    assert exc.value.loc == ("filter",)


def test_numbers_and_dates_an_outbound_mapping_parses_go_out_as_json_has_them() -> None:
    """Connectors serialise payloads with orjson or json, which refuse Decimals and dates: a
    mapping that converts units or parses a date made every delivery fail."""
    sub = compile_subscription(
        "wms",
        "items",
        SubscriptionConfig.model_validate(
            {
                "domain": "item",
                "mapping": {
                    "fields": {
                        "price": {"from": "list_price", "number": True},
                        "weight_lb": {
                            "from": "net_weight_kg",
                            "number": True,
                            "unit": {"from": "kg", "to": "lb"},
                        },
                        "weight_g": {
                            "from": "net_weight_kg",
                            "number": True,
                            "unit": {"from": "kg", "to": "g"},
                        },
                        "big": {"from": "sku", "number": True},
                        "since": {"from": "description", "date": True},
                    }
                },
            }
        ),
        DeliveryConfig(),
        ITEM_FIELDS,
    )
    state = {
        "list_price": "2.50",
        "net_weight_kg": "1.2",
        "sku": "12345678901234567.89",
        "description": "2026-03-01",
    }
    payload = sub.payload(sub.view("itm_1", 1, state))
    assert orjson.loads(orjson.dumps(payload)) == payload == json.loads(json.dumps(payload))
    assert payload == {
        "price": 2.5,
        "weight_lb": 2.645547,
        "weight_g": 1200,
        "big": "12345678901234567.89",  # a float would round it: exact, as text
        "since": "2026-03-01",
    }


@given(st.decimals(allow_nan=False, allow_infinity=False, places=6))
def test_a_decimal_goes_out_as_a_json_number_that_reads_back_exactly_or_as_text(
    value: Decimal,
) -> None:
    shaped = json_shaped(value)
    assert isinstance(shaped, int | float | str)
    assert Decimal(str(orjson.loads(orjson.dumps(shaped)))) == value


_FIRSTS = st.one_of(
    st.none(),
    st.tuples(
        st.sampled_from(list(DeliveryStatus)), st.sampled_from([None, "upsert", "deactivate"])
    ),
)


@given(
    version=st.integers(1, 5),
    newest=st.one_of(st.none(), st.integers(1, 5)),
    repair=st.booleans(),
    first=_FIRSTS,
)
def test_a_resend_never_puts_an_unseen_version_behind_a_newer_one(
    version: int,
    newest: int | None,
    repair: bool,
    first: tuple[DeliveryStatus, str | None] | None,
) -> None:
    replay = "rpr_1" if repair else "rpl_1"
    why, again = resent_as(version, replay, newest, first)
    sent = why is None
    behind = newest is not None and newest > version
    delivered = first is not None and first[0] is DeliveryStatus.DELIVERED
    # Behind a newer version only what the consumer already applied goes again (its key
    # is a duplicate to it); a repair's key is new to the consumer, so never behind one.
    assert sent == (not behind or (delivered and not repair))
    if sent and delivered and not repair:
        assert again == first[1]  # as it went the first time
    else:
        assert again is None
    if not sent:
        assert why == f"superseded: the consumer has version {newest}"
