"""The README documents every command and every configuration key (checked, not hoped)."""

from __future__ import annotations

import re
import typing
from pathlib import Path

import pytest
import typer
from pydantic import BaseModel

from mastersync.cli import app
from mastersync.connectors.edi.spec import EdiExport, EdiSettings
from mastersync.connectors.files.settings import ExportSpec, FileSettings
from mastersync.connectors.rest.spec import (
    ApiKeyAuth,
    BasicAuth,
    BearerAuth,
    LookupSpec,
    OAuth2Auth,
    Pagination,
    ReadSpec,
    RequestTemplate,
    ResponseSpec,
    RestSettings,
    WriteSpec,
)
from mastersync.connectors.rest.spec import RateLimit as RestRateLimit
from mastersync.connectors.sandbox.target import Faults, RateLimit
from mastersync.connectors.sql.spec import SqlRead, SqlSettings, SqlWrite
from mastersync.connectors.tryton.spec import (
    TrytonChild,
    TrytonLink,
    TrytonRead,
    TrytonRelated,
    TrytonSettings,
    TrytonStock,
    TrytonWrite,
    TrytonWriteChild,
)
from mastersync.connectors.webhook.spec import WebhookSettings
from mastersync.domain.landscape.delivery import (
    BackoffConfig,
    DeliveryConfig,
    OutboundMappingSpec,
    SubscriptionConfig,
)
from mastersync.domain.landscape.model import (
    DomainConfig,
    Landscape,
    SurvivorshipConfig,
    SystemConfig,
)
from mastersync.domain.mapping.spec import (
    DateSpec,
    MappingSpec,
    NumberSpec,
    RefSpec,
    UnitSpec,
    ValueOp,
    VersionKind,
    VersionSpec,
)
from mastersync.domain.quality import QualityRule, RuleName
from mastersync.domain.survivorship import Rule

README = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")


def _commands(group: typing.Any, prefix: str) -> list[str]:
    out = []
    for name, command in group.commands.items():
        if hasattr(command, "commands"):  # a group (typer's own or click's)
            out.extend(_commands(command, f"{prefix} {name}"))
        else:
            out.append(f"{prefix} {name}")
    return out


def test_every_command_is_documented() -> None:
    commands = _commands(typer.main.get_command(app), "mastersync")
    assert len(commands) >= 14
    missing = [c for c in commands if f"`{c}" not in README]
    assert missing == []


MODELS: list[type[BaseModel]] = [
    SqlSettings,
    SqlRead,
    SqlWrite,
    FileSettings,
    ExportSpec,
    RestSettings,
    ApiKeyAuth,
    BearerAuth,
    BasicAuth,
    OAuth2Auth,
    RestRateLimit,
    Pagination,
    ReadSpec,
    RequestTemplate,
    LookupSpec,
    ResponseSpec,
    WriteSpec,
    WebhookSettings,
    TrytonSettings,
    TrytonRead,
    TrytonChild,
    TrytonRelated,
    TrytonStock,
    TrytonWrite,
    TrytonWriteChild,
    TrytonLink,
    EdiSettings,
    EdiExport,
    SubscriptionConfig,
    DeliveryConfig,
    BackoffConfig,
    OutboundMappingSpec,
    Faults,
    RateLimit,
    Landscape,
    SystemConfig,
    DomainConfig,
    SurvivorshipConfig,
    MappingSpec,
    VersionSpec,
    ValueOp,
    NumberSpec,
    DateSpec,
    UnitSpec,
    RefSpec,
    QualityRule,
]


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_every_configuration_key_is_documented(model: type[BaseModel]) -> None:
    keys = [f.alias or name for name, f in model.model_fields.items() if not f.exclude]
    missing = [k for k in keys if not re.search(rf"\b{re.escape(k)}\b", README)]
    assert missing == []


def test_every_rule_and_kind_is_documented() -> None:
    names = [*typing.get_args(RuleName), *(r.value for r in Rule), *(k.value for k in VersionKind)]
    missing = [n for n in names if f"`{n}`" not in README]
    assert missing == []


@pytest.mark.parametrize("name", ["landscape.yaml", "tryton-akeneo.yaml"])
def test_the_real_systems_landscapes_are_shown_as_the_e2e_tests_run_them(name: str) -> None:
    landscape = Path(__file__).parent / "e2e" / "real" / "landscape" / name
    assert landscape.read_text(encoding="utf-8") in README
