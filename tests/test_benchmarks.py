"""The benchmarks are not run by the suite (they time things): each still loads."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

BENCHMARKS = sorted((Path(__file__).parent.parent / "benchmarks").glob("*.py"))


def test_there_are_benchmarks() -> None:
    assert {p.stem for p in BENCHMARKS} >= {"ingest", "distribution"}


@pytest.mark.parametrize("path", BENCHMARKS, ids=lambda p: p.stem)
def test_a_benchmark_loads(path: Path) -> None:
    """A command moved from mastersync.cli to mastersync.cli.commands broke the imports of
    four benchmarks, and nothing said so until one was run."""
    spec = importlib.util.spec_from_file_location(f"benchmark_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # imports only: each runs from its main()
    assert callable(module.main)
