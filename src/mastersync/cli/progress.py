"""Progress bars for long work."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Column

from mastersync.cli.common import console


def progress_bar() -> Progress:
    """A progress bar showing records done of total, percentage and time left."""
    # In 80 columns the figures must fit next to a file name: a long name is cut, and the
    # bar is shorter (the figures came out as "… 100% … …").
    narrow = console.width < 120
    return Progress(
        # Descriptions name files and replays: shown as they are, never read as markup.
        TextColumn(
            "{task.description}",
            style="bold",
            markup=False,
            table_column=Column(
                no_wrap=True, overflow="ellipsis", max_width=max(20, console.width - 62)
            ),
        ),
        BarColumn(bar_width=16 if narrow else 40),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
    )


@contextlib.contextmanager
def interruptible() -> Iterator[list[int]]:
    """Ctrl-C and SIGTERM during long work stop it once the chunk under way is committed
    (yields the signals asked, for the progress callback to act on); a second one stops
    it at once, the chunk under way rolled back."""
    asked: list[int] = []

    def interrupt(signum: int, _frame: object) -> None:
        if asked:
            raise KeyboardInterrupt
        asked.append(signum)

    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield asked
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
