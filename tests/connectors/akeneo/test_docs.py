"""The README documents every setting of the Akeneo connector (as tests/test_docs.py does
for the connectors it lists)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import BaseModel

from mastersync.connectors.akeneo.spec import (
    AkeneoEvents,
    AkeneoRead,
    AkeneoSettings,
    AkeneoWrite,
)

README = (Path(__file__).parents[3] / "README.md").read_text(encoding="utf-8")
SECTION = README.split("### Akeneo (`type: akeneo`)", 1)[-1].split("\n### ", 1)[0]


@pytest.mark.parametrize(
    "model", [AkeneoSettings, AkeneoRead, AkeneoWrite, AkeneoEvents], ids=lambda m: m.__name__
)
def test_every_akeneo_setting_is_in_its_readme_section(model: type[BaseModel]) -> None:
    assert SECTION != README, "README has no section '### Akeneo (`type: akeneo`)'"
    keys = [f.alias or name for name, f in model.model_fields.items() if not f.exclude]
    missing = [k for k in keys if not re.search(rf"[\s{{]{re.escape(k)}:", SECTION)]
    assert missing == []
