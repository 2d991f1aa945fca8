"""Live fixtures shared by this folder's tests against the real system: one server per
module, and a fresh crm for each test."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import PG_URL
from tests.e2e.real.testbed import bottlecrm as crm_bed
from tests.e2e.real.testbed.common import TestbedError
from tests.e2e.real.testbed.tryton import Timings


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[crm_bed.BottleCrmServer]:
    """BottleCRM installed (cached), its template restored, one server for the module."""
    started: crm_bed.BottleCrmServer | None = None
    try:
        template = crm_bed.ensure_template(PG_URL, Timings())
        started = crm_bed.BottleCrmServer(tmp_path_factory.mktemp("crm"), template, PG_URL)
        started.start()
    except TestbedError as exc:
        if started is not None:
            with contextlib.suppress(TestbedError):
                started.stop()
        pytest.fail(f"the BottleCRM testbed could not start: {exc}", pytrace=False)
    yield started
    started.stop()


class Crm:
    """A fresh BottleCRM organisation, worked in as a CRM user would (unrestricted token)."""

    def __init__(self, server: crm_bed.BottleCrmServer) -> None:
        self.url = server.url
        self.template = server.template
        self.client = httpx.Client(
            base_url=f"{server.url}/api",
            timeout=60,
            headers={"Authorization": f"Bearer {server.template.user_token}"},
        )

    def call(self, method: str, path: str, body: Any = None, **params: Any) -> Any:
        response = self.client.request(method, path, json=body, params=params or None)
        assert response.status_code < 400, f"{method} {path}: {response.text}"
        return response.json()

    def accounts(self) -> list[dict[str, Any]]:
        document = self.call("GET", "/accounts/", limit=1000)
        return [
            *document["active_accounts"]["open_accounts"],
            *document["closed_accounts"]["close_accounts"],
        ]


@pytest.fixture
def crm(server: crm_bed.BottleCrmServer) -> Iterator[Crm]:
    try:
        server.reset()
    except TestbedError as exc:
        pytest.fail(f"the BottleCRM testbed could not reset its database: {exc}", pytrace=False)
    crm = Crm(server)
    yield crm
    crm.client.close()
