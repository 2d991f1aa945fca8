"""CLI tests read rendered tables: give the consoles a fixed width, whatever the terminal."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mastersync.cli.common import console, errors


@pytest.fixture(autouse=True)
def wide_console() -> Iterator[None]:
    widths = console.width, errors.width
    console.width = errors.width = 200
    yield
    console.width, errors.width = widths
