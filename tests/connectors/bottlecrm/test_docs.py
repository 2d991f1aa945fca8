"""The README documents every BottleCRM setting and shows the landscape the e2e tests run
(tests/test_docs.py does the same for the other connectors)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import BaseModel

from mastersync.connectors.bottlecrm.spec import (
    BottleCrmContacts,
    BottleCrmRead,
    BottleCrmSettings,
    BottleCrmWrite,
)

ROOT = Path(__file__).parents[3]
README = (ROOT / "README.md").read_text(encoding="utf-8")
SECTION = README.split("### BottleCRM (`type: bottlecrm`)", 1)[-1].split("\n### ", 1)[0]


@pytest.mark.parametrize(
    "model",
    [BottleCrmSettings, BottleCrmRead, BottleCrmContacts, BottleCrmWrite],
    ids=lambda m: m.__name__,
)
def test_every_setting_is_in_the_bottlecrm_section(model: type[BaseModel]) -> None:
    keys = [f.alias or name for name, f in model.model_fields.items() if not f.exclude]
    missing = [k for k in keys if not re.search(rf"\b{re.escape(k)}\b", SECTION)]
    assert missing == []


def test_the_landscape_the_tests_run_is_shown_as_it_is() -> None:
    landscape = ROOT / "tests" / "e2e" / "real" / "landscape" / "tryton-bottlecrm.yaml"
    assert landscape.read_text(encoding="utf-8") in SECTION
