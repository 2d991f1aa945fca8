"""Stop signals that reach `mastersync run` before its loop starts or after it ends."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from mastersync.cli.common import console
from mastersync.cli.early import command_of
from tests.cli.test_cli import cli, erp_to_shop

# Put on the child's PYTHONPATH as sitecustomize: the first import of typer (where the
# command line's seconds of imports begin) waits until the test says go. The signal sent
# meanwhile arrives during the imports for certain, whatever the machine's speed.
HOLD = """
import os
import sys
import time
from pathlib import Path


class _Hold:
    def find_spec(self, name, path=None, target=None):
        if name == "typer":
            sys.meta_path.remove(self)
            Path(os.environ["HOLD_READY"]).touch()
            go = Path(os.environ["HOLD_GO"])
            deadline = time.monotonic() + 60
            while not go.exists() and time.monotonic() < deadline:
                time.sleep(0.01)
        return None


sys.meta_path.insert(0, _Hold())
"""


def _signalled_during_imports(
    tmp_path: Path, entry: list[str], args: list[str], sig: signal.Signals
) -> tuple[int, str]:
    """Start the command line, send ``sig`` while it imports and on until it exits; its
    exit code and output."""
    hold = tmp_path / "hold"
    hold.mkdir()
    (hold / "sitecustomize.py").write_text(HOLD)
    ready, go = tmp_path / "ready", tmp_path / "go"
    path = os.pathsep.join(p for p in (str(hold), os.environ.get("PYTHONPATH")) if p)
    env = {
        **os.environ,
        "PYTHONPATH": path,
        "HOLD_READY": str(ready),
        "HOLD_GO": str(go),
        "COLUMNS": "200",
    }
    child = subprocess.Popen(
        [*entry, *args],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not ready.exists():
            if child.poll() is not None or time.monotonic() > deadline:
                child.kill()
                pytest.fail(f"the imports were never reached: {child.communicate()[0]}")
            time.sleep(0.01)
        child.send_signal(sig)
        go.touch()
        # And again every 20 ms to the end: while it builds the hub, runs, prints its
        # summary and shuts down (the few lines it prints fit in the pipe meanwhile).
        deadline = time.monotonic() + 90
        while child.poll() is None and time.monotonic() < deadline:
            child.send_signal(sig)
            time.sleep(0.02)
        out, _ = child.communicate(timeout=10)
    finally:
        child.kill()
    return child.returncode, out


CONSOLE_SCRIPT = [str(Path(sys.executable).parent / "mastersync")]
MODULE = [sys.executable, "-m", "mastersync.cli"]


@pytest.mark.parametrize(
    ("entry", "sig"),
    [(CONSOLE_SCRIPT, signal.SIGTERM), (MODULE, signal.SIGINT)],
    ids=["console-script-SIGTERM", "module-SIGINT"],
)
def test_a_signal_while_the_hub_imports_is_kept_and_stops_it_as_documented(
    tmp_path: Path, entry: list[str], sig: signal.Signals
) -> None:
    """Review: a SIGTERM 0.5-2.5 s after `mastersync run --until-idle` started (its imports
    take about 3.5 s) ended it with 143 and no summary; the hub's own handling began only
    once the `run` command did. A second SIGTERM after its loop ended (as it printed
    "stopped after ...") ended it with 143 too: signals keep coming here to its exit."""
    landscape = erp_to_shop(tmp_path / "estate", "sku,v,name\nA1,1,Pen\nA2,1,Ink\n")
    args = ["-l", str(landscape), "run", "--until-idle", "--timeout", "60"]
    code, out = _signalled_during_imports(tmp_path, entry, args, sig)
    assert code == 2, out
    assert "hub running: subscriptions shop.items" in out
    assert "stopped after " in out and "delivered 0," in out
    assert re.search(
        r"^error: stopped by a signal before it was idle; left: .*shop\.items: .*event\(s\)",
        out,
        re.M,
    ), out
    assert "Traceback" not in out


def test_other_commands_keep_the_default_for_a_signal_while_they_import(
    tmp_path: Path,
) -> None:
    """Only `run` keeps a signal from the first instant: `status` (as any other command)
    still ends as SIGTERM ends a process."""
    landscape = erp_to_shop(tmp_path / "estate", "sku,v,name\nA1,1,Pen\n")
    args = ["-l", str(landscape), "status"]
    code, out = _signalled_during_imports(tmp_path, CONSOLE_SCRIPT, args, signal.SIGTERM)
    assert code == -signal.SIGTERM, out


@pytest.mark.parametrize(
    ("argv", "command"),
    [
        (["run", "--until-idle"], "run"),
        (["-l", "run", "ingest", "-s", "run"], "ingest"),
        (["--landscape", "run.yaml", "--store", "sqlite:///run.db", "status"], "status"),
        (["--store=sqlite:///x.db", "-lx.yaml", "run"], "run"),
        (["--version"], None),
        ([], None),
    ],
)
def test_the_command_is_read_past_the_global_options_and_their_values(
    argv: list[str], command: str | None
) -> None:
    """The entry point decides on `run` before typer is imported: a landscape or store
    named "run" is not the command."""
    assert command_of(argv) == command


def test_a_signal_after_the_hubs_loop_ended_is_kept_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Review: a second SIGTERM while the hub printed "stopped after ..." ended it with 143:
    closing the event loop had set SIGTERM back to the default (and SIGINT to
    KeyboardInterrupt)."""
    landscape = erp_to_shop(tmp_path / "estate", "sku,v,name\nA1,1,Pen\n")
    seen: list[dict[signal.Signals, object]] = []
    shown = console.print

    def spy(*objects: object, **kwargs: object) -> None:
        if objects and str(objects[0]).startswith("stopped after"):
            seen.append({s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)})
        shown(*objects, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(console, "print", spy)
    code, out = cli("run", "--until-idle", "--timeout", "30", landscape=landscape)
    assert code == 0, out
    [handlers] = seen
    assert handlers[signal.SIGTERM] not in (signal.SIG_DFL, signal.SIG_IGN, None)
    assert handlers[signal.SIGINT] is not signal.default_int_handler
    assert callable(handlers[signal.SIGTERM]) and callable(handlers[signal.SIGINT])


def test_the_hubs_worker_threads_leave_stop_signals_to_the_main_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Review: while the handlers were put back after the loop, the main thread blocked the
    stop signals, and a SIGTERM the kernel handed to a worker thread met the default
    action (exit 143). The threads of the executor `run` gives the hub block them from
    their start (a first fix set an executor the hub then replaced with its own)."""
    from mastersync.pipeline.distribution.hub import DistributionHub

    def mask() -> set[signal.Signals]:
        return signal.pthread_sigmask(signal.SIG_BLOCK, [])

    masks: list[set[signal.Signals]] = []
    original = DistributionHub.executor

    def probed(self: DistributionHub) -> Any:
        pool = original(self)
        masks.append(pool.submit(mask).result())
        return pool

    monkeypatch.setattr(DistributionHub, "executor", probed)
    landscape = erp_to_shop(tmp_path / "estate", "sku,v,name\nA1,1,Pen\n")
    code, out = cli("run", "--until-idle", "--timeout", "30", landscape=landscape)
    assert code == 0, out
    assert masks and all({signal.SIGTERM, signal.SIGINT} <= m for m in masks)
    assert signal.SIGTERM not in mask()  # the main thread still takes them
