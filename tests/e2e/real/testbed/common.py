"""What every system of the testbed needs: a cache folder, a Python of the right version,
a free port, a lock, and a process that is started, waited for and stopped."""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


class TestbedError(Exception):
    """The testbed cannot bring a system up; the message says why and what to do."""

    __test__ = False  # not a test class, whatever its name


def cache_root() -> Path:
    """Where virtual environments and database templates are kept between runs."""
    configured = os.environ.get("MASTERSYNC_TESTBED_CACHE")
    root = Path(configured) if configured else Path.home() / ".cache" / "mastersync" / "testbed"
    root.mkdir(parents=True, exist_ok=True)
    return root


def _version_of(executable: str) -> tuple[int, int] | None:
    try:
        out = subprocess.run(
            [executable, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        ).stdout.strip()
    except OSError:
        return None
    match = re.fullmatch(r"(\d+)\.(\d+)", out)
    return (int(match[1]), int(match[2])) if match else None


def find_python(version: str) -> str:
    """An interpreter of the given version (``3.11``): ``pythonX.Y`` on the PATH, else one
    that pyenv installed. Found by asking each candidate its version, never by a fixed path."""
    wanted = tuple(int(p) for p in version.split("."))
    candidates = [shutil.which(f"python{version}")]
    pyenv = shutil.which("pyenv")
    if pyenv:
        root = subprocess.run(
            [pyenv, "root"], capture_output=True, text=True, check=False
        ).stdout.strip()
        if root:
            found = sorted((Path(root) / "versions").glob(f"{version}.*/bin/python{version}"))
            candidates += [str(p) for p in reversed(found)]
    for candidate in candidates:
        if candidate and _version_of(candidate) == wanted:
            return candidate
    raise TestbedError(
        f"the testbed needs Python {version} and found none (looked for python{version} on "
        "the PATH and in pyenv's versions); install it, e.g. `pyenv install "
        f"{version}`, and put python{version} on the PATH"
    )


def ensure_venv(venv: Path, python_version: str, requirements: list[str]) -> bool:
    """A virtual environment with exactly these requirements; True if it had to be made.
    A stamp records what was installed, so a change of requirements makes it anew."""
    stamp = venv / ".mastersync-testbed"
    wanted = "\n".join(requirements)
    if stamp.exists() and stamp.read_text() == wanted:
        return False
    if venv.exists():
        shutil.rmtree(venv)
    python = find_python(python_version)
    run([python, "-m", "venv", str(venv)], "create the virtual environment")
    run(
        [
            str(venv / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            *requirements,
        ],
        f"install {', '.join(requirements)}",
    )
    stamp.write_text(wanted)
    return True


def run(
    command: list[str], what: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> None:
    """Run a setup command (in ``cwd``, where it may write files); its output is shown only
    when it fails."""
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=cwd, check=False)
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-25:])
        raise TestbedError(f"could not {what} (exit {done.returncode}):\n{tail}")


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """An exclusive lock on a file: one process at a time builds a cached thing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Process:
    """A server process with its output in a log file."""

    def __init__(
        self, command: list[str], log: Path, env: dict[str, str], cwd: Path | None = None
    ) -> None:
        self.log = log
        self._out = log.open("wb")
        self.popen = subprocess.Popen(
            command,
            stdout=self._out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            # Where a server writes files of its own (BottleCRM's log files).
            cwd=cwd,
        )

    def log_tail(self, lines: int = 30) -> str:
        """The end of the server's output, for error messages."""
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def wait_ready(self, ready: Callable[[], bool], timeout: float, what: str) -> None:
        """Poll until ``ready()``; fail if the process exits or the time is up."""
        deadline = time.monotonic() + timeout
        while True:
            if self.popen.poll() is not None:
                self.stop()
                raise TestbedError(
                    f"{what} exited with {self.popen.returncode} while starting:\n"
                    + self.log_tail()
                )
            if ready():
                return
            if time.monotonic() > deadline:
                self.stop()
                raise TestbedError(
                    f"{what} was not ready after {timeout:.0f} s:\n" + self.log_tail()
                )
            time.sleep(0.1)

    def stop(self) -> None:
        """Terminate the process (kill it if it will not go) and close its log."""
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        self._out.close()
