"""Stop signals that reach `mastersync run` while it is still starting, kept for the hub.

The entry point imports this before the commands: the standard library only, so that it
is in place within milliseconds of the process starting, not after seconds of imports.
"""

from __future__ import annotations

import signal

STOPS = (signal.SIGTERM, signal.SIGINT)

# The global options that take a value: the command is the first word after the global
# options. One added here later and not listed only means its `run` keeps signals once
# the command starts, as before (never that another command keeps them).
_VALUED = frozenset({"-l", "--landscape", "--store"})

_kept: list[int] | None = None


def command_of(argv: list[str]) -> str | None:
    """The command a command line names (None: none, only global options)."""
    args = iter(argv)
    for arg in args:
        if arg in _VALUED:
            next(args, None)
        elif not arg.startswith("-"):
            return arg
    return None


def keep_for_run(argv: list[str]) -> None:
    """If the command is `run`: from now on SIGTERM and SIGINT are recorded, not fatal.

    Other commands keep the default (Ctrl-C interrupts an ingest, which says how far it
    got). A SIGTERM during the imports ended the hub with 143 and no summary.
    """
    global _kept
    if command_of(argv) != "run":
        return
    kept: list[int] = []
    for sig in STOPS:
        signal.signal(sig, lambda number, _frame: kept.append(number))
    _kept = kept


def ignore_until_exit() -> None:
    """Once the command is done (its summary out, its exit code decided): stop signals kept
    for `run` are ignored to the end.

    The interpreter's shutdown sets a handler of ours back to the default before it tears
    the modules down (0.1-0.2 s): a SIGTERM then ended a hub that had stopped cleanly with
    143. An ignored signal stays ignored through it.
    """
    if _kept is not None:
        for sig in STOPS:
            signal.signal(sig, signal.SIG_IGN)


def kept() -> list[int]:
    """The stop signals kept so far: the list the keeping handlers go on appending to until
    the command replaces them (a new, empty one where none were kept, as in-process)."""
    return _kept if _kept is not None else []
