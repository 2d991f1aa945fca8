"""Live fixtures shared by this folder's tests against the real system: one server per
module, and a fresh pim for each test."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import PG_URL
from tests.e2e.real.testbed import akeneo as akeneo_bed
from tests.e2e.real.testbed.common import TestbedError


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[akeneo_bed.AkeneoServer]:
    """akeneo-mock-server installed (cached) and started for the module."""
    started = akeneo_bed.AkeneoServer(tmp_path_factory.mktemp("akeneo"), PG_URL)
    try:
        started.start()
    except TestbedError as exc:
        with contextlib.suppress(TestbedError):
            started.stop()
        pytest.fail(f"the Akeneo testbed could not start: {exc}", pytrace=False)
    yield started
    started.stop()


class Pim:
    """One test's database on the mock server, worked in as a PIM user would."""

    def __init__(self, server: akeneo_bed.AkeneoServer) -> None:
        self.url = server.url
        self.database = server.new_database()
        self.client = httpx.Client(
            base_url=f"{server.url}/api/rest/v1",
            timeout=60,
            headers={akeneo_bed.DB_HEADER: self.database, "Authorization": "Bearer test"},
        )

    def post(self, path: str, body: dict[str, Any]) -> None:
        response = self.client.post(path, json=body)
        assert response.status_code == 201, response.text

    def product(self, identifier: str) -> dict[str, Any] | None:
        response = self.client.get(f"/products/{identifier}")
        if response.status_code == 404:
            return None
        response.raise_for_status()
        found: dict[str, Any] = response.json()
        return found

    def identifiers(self) -> list[str]:
        response = self.client.get("/products", params={"limit": 100})
        response.raise_for_status()
        return sorted(p["identifier"] for p in response.json()["_embedded"]["items"])


@pytest.fixture
def pim(server: akeneo_bed.AkeneoServer) -> Iterator[Pim]:
    try:
        pim = Pim(server)
    except TestbedError as exc:
        pytest.fail(f"the Akeneo testbed could not make a database: {exc}", pytrace=False)
    pim.post("/attributes", {"code": "sku", "type": "pim_catalog_identifier", "group": "other"})
    pim.post(
        "/attributes",
        {"code": "name", "type": "pim_catalog_text", "group": "other", "localizable": True},
    )
    pim.post("/families", {"code": "mro", "attribute_as_label": "name", "attributes": ["name"]})
    yield pim
    pim.client.close()
