"""The connector registry: what it knows of each connector before one is built."""

from __future__ import annotations

from typing import get_origin

from mastersync.connectors.registry import applies_keys_once, check_writes, specs


def test_every_connector_with_settings_per_subscription_names_them() -> None:
    """A subscription missing from `exports:` or `write:` passed `check` and dead-lettered
    every delivery: the check knows which key to look in only if the spec names it."""
    for name, spec in specs().items():
        fields = spec.settings.model_fields
        per_subscription = {k for k in ("write", "exports") if k in fields}
        assert set(filter(None, [spec.writes])) == per_subscription, name
        if spec.writes is not None:
            assert get_origin(fields[spec.writes].annotation) is dict, name


def test_a_subscription_with_write_settings_of_its_own_passes() -> None:
    """Only subscriptions without an entry are named, each once."""
    settings = {"type": "rest", "base_url": "http://x", "write": {"items": {}, "itemz": {}}}
    assert check_writes(settings, ["items"]) == []
    [(name, message)] = check_writes(settings, ["items", "prices"])
    assert name == "prices" and message.endswith("(it has: items, itemz)")
    # A connector that writes whatever it is sent, or a system without one: nothing to say.
    assert check_writes({"type": "sandbox"}, ["items"]) == []
    assert check_writes({}, ["items"]) == []


def test_whether_a_connector_applies_each_key_once_is_known_from_its_settings() -> None:
    """Review: `replay` said a dead letter was "sent again" where the deliverer, which asks
    the connector, skipped it as superseded: the replay's plan now asks the same."""
    assert applies_keys_once({"type": "sandbox", "database": "x.db"}) is True
    for kind in ("files", "rest", "sql", "edi", "tryton", "akeneo", "bottlecrm"):
        assert applies_keys_once({"type": kind}) is False, kind
    assert applies_keys_once({}) is False
