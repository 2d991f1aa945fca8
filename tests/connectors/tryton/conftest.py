"""Live fixtures shared by this folder's tests against a real Tryton: one server per module
holding the databases the module names (``DATABASES``), and a fresh one for each test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.real.conftest import Tryton
from tests.e2e.real.testbed import tryton as bed
from tests.e2e.real.testbed.common import TestbedError

# Module name -> its databases no test has used yet.
_FREE: dict[str, list[str]] = {}


@pytest.fixture(scope="module")
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[bed.TrytonServer]:
    """Tryton installed (cached), its template made (cached), one server for the module."""
    names: list[str] = request.module.DATABASES
    try:
        template = bed.ensure_template(bed.Timings())
        started = bed.TrytonServer(tmp_path_factory.mktemp("tryton"), names, template)
        started.start()
    except TestbedError as exc:
        pytest.fail(f"the Tryton testbed could not start: {exc}", pytrace=False)
    _FREE[request.module.__name__] = list(names)
    yield started
    started.stop()


@pytest.fixture
def tryton(request: pytest.FixtureRequest, server: bed.TrytonServer) -> Iterator[Tryton]:
    """A database of the module's no test has used, logged in to."""
    free = _FREE[request.module.__name__]
    if not free:
        pytest.fail("the Tryton testbed has no fresh database left", pytrace=False)
    db = Tryton(server.url, free.pop(0))
    db.login()
    yield db
    db.close()
