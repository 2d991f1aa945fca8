"""What every command shares: the console, the hub options, friendly errors."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NoReturn, ParamSpec, TypeVar

import sqlalchemy as sa
import typer
from rich.console import Console
from rich.markup import escape

from mastersync.bootstrap import BootstrapError, Hub, build_hub
from mastersync.domain.problems import ConfigError
from mastersync.landscape import LandscapeError
from mastersync.pipeline.exceptions import InboxError
from mastersync.pipeline.queries import NotFound
from mastersync.ports.store import StoreError

# No markup unless a call asks for it (markup=True, with what it quotes escaped): record
# values, keys, file names and error messages are printed as they are, and a "[/x]" in one
# would otherwise end the command in a MarkupError, a "[x]" vanish from what is shown.
console = Console(highlight=False, markup=False)
errors = Console(stderr=True, highlight=False, markup=False)

P = ParamSpec("P")
R = TypeVar("R")


@dataclass
class Options:
    """Global options given before the command."""

    landscape: str | None = None
    store: str | None = None

    def hub(self) -> Hub:
        """Assemble the hub these options describe."""
        return build_hub(self.landscape, self.store)


def fail(message: str, code: int = 1) -> NoReturn:
    """Print an error and exit."""
    errors.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True, markup=True)
    raise typer.Exit(code)


def friendly(fn: Callable[P, R]) -> Callable[P, R]:
    """Turn expected failures into one clear message and exit code 1 (no traceback)."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except LandscapeError as exc:
            errors.print(
                f"[bold red]the landscape has {len(exc.problems)} problem(s):[/]", markup=True
            )
            for problem in exc.problems:
                errors.print(f"  {problem}", soft_wrap=True)
            raise typer.Exit(1) from None
        except (BootstrapError, StoreError, ConfigError, NotFound, InboxError) as exc:
            fail(str(exc))
        except sa.exc.OperationalError as exc:
            # The database failed mid-command (went away, locked, refused): what it says,
            # and what was kept, not a traceback through the driver.
            reason = str(exc.orig or exc).strip().splitlines()[0]
            notes = "".join(f"; {n}" for n in getattr(exc, "__notes__", ()))
            fail(f"the store failed: {reason}{notes}")
        except sa.exc.DatabaseError as exc:
            # The driver's plain DatabaseError: a store file damaged (or replaced) since it
            # was opened ("database disk image is malformed"). Its subclasses (integrity,
            # programming errors) are faults of ours and keep their traceback.
            if type(exc) is not sa.exc.DatabaseError:
                raise
            reason = str(exc.orig or exc).strip().splitlines()[0]
            fail(f"the store failed: {reason}")

    return wrapper


def options(ctx: typer.Context) -> Options:
    """The global options of this invocation."""
    obj: Any = ctx.find_root().obj
    return obj if isinstance(obj, Options) else Options()
