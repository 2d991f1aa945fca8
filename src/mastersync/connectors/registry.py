"""The connector registry: every connector, built-in or third-party, is an entry point in the
``mastersync.connectors`` group naming a :class:`ConnectorSpec`. Specs live in light modules;
a connector's implementation is imported only when a system uses it."""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from difflib import get_close_matches
from functools import cache
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, get_type_hints

from pydantic import BaseModel, ConfigDict, ValidationError

from mastersync.ports.connector import Capability

GROUP = "mastersync.connectors"


class ConnectorSettings(BaseModel):
    """Base of connector settings: unknown keys are errors, and ``type`` names the connector."""

    model_config = ConfigDict(extra="forbid")
    type: str


@dataclass(frozen=True)
class ConnectorSpec:
    """What the registry knows of a connector before importing it."""

    name: str
    description: str
    capabilities: frozenset[Capability]
    settings: type[ConnectorSettings]
    # "package.module:callable", called as callable(settings, context) -> the connector.
    factory: str
    # The settings key that maps each outbound subscription's name to how it is written
    # ("write", "exports"); None: the connector writes any subscription as it is.
    writes: str | None = None


@dataclass(frozen=True)
class ConnectorContext:
    """What a connector is given besides its settings."""

    system: str
    base_dir: Path
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))

    def path(self, value: str) -> Path:
        """A path from the settings, relative to the landscape's folder."""
        p = Path(value)
        return p if p.is_absolute() else self.base_dir / p


class ConnectorSetupError(Exception):
    """A connector cannot be made from its settings; the message names the key."""


@cache
def specs() -> dict[str, ConnectorSpec]:
    """Every registered connector, by name (entry points are read once)."""
    found: dict[str, ConnectorSpec] = {}
    for ep in entry_points(group=GROUP):
        spec = ep.load()
        if not isinstance(spec, ConnectorSpec):
            raise ConnectorSetupError(f"entry point {ep.name} ({ep.value}) is not a ConnectorSpec")
        found[ep.name] = spec
    return found


def spec_of(name: str) -> ConnectorSpec:
    """The spec of a connector type, or an error listing the known ones."""
    known = specs()
    if name not in known:
        raise ConnectorSetupError(
            f"unknown connector type {name!r}; registered: {', '.join(sorted(known))}"
        )
    return known[name]


def resolve_secrets(settings: Any, env: Mapping[str, str], where: str = "connector") -> Any:
    """Replace ``{env: NAME}`` and ``{file: path}`` references with their values."""
    if isinstance(settings, Mapping):
        keys = set(settings)
        if keys == {"env"}:
            name = str(settings["env"])
            if name not in env:
                raise ConnectorSetupError(f"{where}: environment variable {name} is not set")
            return env[name]
        if keys == {"file"}:
            path = Path(str(settings["file"]))
            try:
                return path.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ConnectorSetupError(
                    f"{where}: cannot read secret file {path}: {exc.strerror}"
                ) from None
        return {k: resolve_secrets(v, env, f"{where}.{k}") for k, v in settings.items()}
    if isinstance(settings, list):
        return [resolve_secrets(v, env, f"{where}[{i}]") for i, v in enumerate(settings)]
    return settings


def _placeholders(settings: Any) -> Any:
    """Secret references replaced by a placeholder: to check shape without the secrets."""
    if isinstance(settings, Mapping):
        if set(settings) in ({"env"}, {"file"}):
            return "<secret>"
        return {k: _placeholders(v) for k, v in settings.items()}
    if isinstance(settings, list):
        return [_placeholders(v) for v in settings]
    return settings


def check_settings(settings: Mapping[str, Any]) -> list[tuple[tuple[str | int, ...], str]]:
    """Problems with a connector block, as (key path, message); secrets are not read."""
    kind = settings.get("type")
    if kind is None:
        return []
    try:
        spec = spec_of(str(kind))
    except ConnectorSetupError as exc:
        return [(("type",), str(exc))]
    try:
        spec.settings.model_validate(_placeholders(settings))
    except ValidationError as exc:
        return [(tuple(e["loc"]), e["msg"]) for e in exc.errors(include_url=False)]
    return []


def check_writes(
    settings: Mapping[str, Any], subscriptions: Iterable[str]
) -> list[tuple[str, str]]:
    """Subscriptions a connector block cannot write, as (subscription name, message).

    Checked with the landscape, for a connector whose settings are valid: a subscription
    without write settings of its own passed the check and dead-lettered every delivery.
    """
    names = list(subscriptions)
    kind = settings.get("type")
    if not names or kind is None or kind not in specs():
        return []
    spec = specs()[str(kind)]
    # Capabilities are what a connector shows (`connectors list`), not what the hub goes by
    # (a connector that has `send`): a plugin that sends without listing write_upsert must
    # not be refused here. One that cannot send is refused when the hub starts.
    if spec.writes is None:
        return []
    entries = settings.get(spec.writes) or {}
    if not isinstance(entries, Mapping):
        return []  # check_settings says what is wrong with it
    # The likeliest meant is an entry no subscription writes by its name already.
    unused = [str(e) for e in entries if e not in names]
    problems = []
    for name in names:
        if name in entries:
            continue
        close = get_close_matches(name, unused, n=1)
        if close:
            hint = f"; did you mean {close[0]!r}?"
        else:
            hint = f" (it has: {', '.join(map(str, entries)) or 'none'})"
        problems.append(
            (
                name,
                f"connector.{spec.writes} has no entry {name!r} for this subscription, so the "
                f"{kind} connector would dead-letter every delivery{hint}",
            )
        )
    return problems


def applies_keys_once(settings: Mapping[str, Any]) -> bool:
    """Whether the connector a system's settings describe applies each idempotency key
    once (ports.outbound.KeyedApplying), known from its class without making it."""
    kind = settings.get("type")
    if kind is None or str(kind) not in specs():
        return False
    module, _, attr = specs()[str(kind)].factory.partition(":")
    factory = getattr(importlib.import_module(module), attr)
    if not isinstance(factory, type):
        # A function making the connector: its class is what it says it returns.
        try:
            factory = get_type_hints(factory).get("return")
        except Exception:  # an annotation only a type checker resolves: not known
            return False
    return getattr(factory, "applies_keys_once", False) is True


def build(settings: Mapping[str, Any], context: ConnectorContext) -> Any:
    """Make the connector a system's settings describe (secrets resolved now)."""
    spec = spec_of(str(settings.get("type")))
    resolved = resolve_secrets(dict(settings), context.env, f"systems.{context.system}.connector")
    try:
        model = spec.settings.model_validate(resolved)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConnectorSetupError(
            f"systems.{context.system}.connector.{where}: {first['msg']}"
        ) from None
    module, _, attr = spec.factory.partition(":")
    factory: Callable[[Any, ConnectorContext], Any] = getattr(importlib.import_module(module), attr)
    return factory(model, context)
