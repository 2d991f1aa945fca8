"""The testbed's own parts: the interpreter found by version, the command people run."""

from __future__ import annotations

import re
import subprocess

import pytest

from tests.e2e.real.testbed import tryton
from tests.e2e.real.testbed.__main__ import main
from tests.e2e.real.testbed.common import TestbedError, find_python

pytestmark = pytest.mark.xdist_group("tryton")  # it may build the cache the server needs


def test_python_is_found_by_its_version_or_named_as_missing() -> None:
    python = find_python(tryton.PYTHON)
    out = subprocess.run(
        [python, "-c", "import sys; print(sys.version_info[:2])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.strip() == "(3, 11)"
    with pytest.raises(TestbedError, match=r"needs Python 2\.5 and found none"):
        find_python("2.5")


def test_prepare_fills_the_cache_and_says_what_it_took(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["prepare", "tryton"]) == 0
    assert main(["prepare", "tryton"]) == 0  # the second time everything is cached
    out = capsys.readouterr().out.splitlines()
    assert re.fullmatch(
        r"tryton 8\.2: install [\d.]+ s \(cached\), database template [\d.]+ s \(cached\)", out[-1]
    )
    assert (tryton.home() / "template.sqlite").stat().st_size > 1_000_000
    with pytest.raises(SystemExit):
        main(["up", "odoo"])
