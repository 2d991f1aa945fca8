"""The command line: one front door to the hub.

Light on purpose: the console script and `python -m mastersync.cli` import this package
first, and `main` makes a stop signal something `run` keeps before the commands' seconds
of imports (typer, rich, pydantic, SQLAlchemy) begin. The commands are in ``commands``;
``app`` is loaded from there when first asked for.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mastersync.cli.commands import app as app


def main() -> None:
    """Console-script entry point."""
    # Before anything heavy: a SIGTERM 0.5-2.5 s into `mastersync run` (the imports) ended
    # it with 143 and no summary. Here, not at import: in-process callers (tests) keep
    # their own signal handling.
    from mastersync.cli.early import ignore_until_exit, keep_for_run

    keep_for_run(sys.argv[1:])
    try:
        from mastersync.cli.commands import app, tune_gc

        tune_gc()
        app()
    finally:
        ignore_until_exit()


def __getattr__(name: str) -> Any:
    """``app``, as ``from mastersync.cli import app`` took it before the commands moved."""
    if name == "app":
        from mastersync.cli.commands import app

        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
