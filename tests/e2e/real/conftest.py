"""Fixtures for the tests against real systems: one Tryton server per test session (per
xdist worker) serving a fresh copy of the database template to each test.

A system that cannot be installed or started fails the tests that need it, with the reason;
nothing is skipped."""

from __future__ import annotations

import base64
import contextlib
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import PG_URL
from tests.e2e.real.testbed import akeneo as akeneo_bed
from tests.e2e.real.testbed import bottlecrm as crm_bed
from tests.e2e.real.testbed import tryton as bed
from tests.e2e.real.testbed.common import TestbedError

LANDSCAPE = Path(__file__).parent / "landscape"


@dataclass
class TrytonSession:
    """The session's Tryton server and the databases not handed out yet."""

    server: bed.TrytonServer
    free: list[str]
    timings: bed.Timings


@dataclass
class Tryton:
    """One test's Tryton database, and a JSON-RPC client to set up and inspect its data."""

    url: str
    database: str
    client: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=60))
    session: str | None = None
    context: dict[str, Any] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        """The environment the landscape's connector settings refer to."""
        return {
            "TRYTON_URL": self.url,
            "TRYTON_DATABASE": self.database,
            "TRYTON_PASSWORD": bed.PASSWORD,
        }

    def _post(self, method: str, params: list[Any]) -> Any:
        headers = {"Authorization": f"Session {self.session}"} if self.session else {}
        response = self.client.post(
            f"{self.url}/{self.database}/rpc/",
            json={"id": 1, "method": method, "params": params},
            headers=headers,
        )
        response.raise_for_status()
        body = response.json()
        assert not body.get("error"), f"Tryton {method}: {body['error']}"
        return body.get("result")

    def login(self) -> None:
        """Log in as the admin user and take its company as the context."""
        uid, token = self._post("common.db.login", [bed.USER, {"password": bed.PASSWORD}, "en"])[:2]
        self.session = base64.b64encode(f"{bed.USER}:{uid}:{token}".encode()).decode()
        prefs = self._post("model.res.user.get_preferences", [True, {}])
        self.context = {"company": prefs["company"]}

    def call(self, method: str, *params: Any) -> Any:
        """model.<name>.<method>(*params, context)."""
        return self._post(f"model.{method}", [*params, self.context])

    def create(self, model: str, values: dict[str, Any]) -> int:
        """Create one record; its id."""
        [record_id] = self.call(f"{model}.create", [values])
        return int(record_id)

    def write(self, model: str, ids: list[int], values: dict[str, Any]) -> None:
        """Write values to records."""
        self.call(f"{model}.write", ids, values)

    def search_read(self, model: str, domain: list[Any], fields: list[str]) -> list[dict[str, Any]]:
        """Records matching a domain, as Tryton sends them."""
        rows: list[dict[str, Any]] = self.call(
            f"{model}.search_read", domain, 0, None, [["id", "ASC"]], fields
        )
        return rows

    def id_of(self, model: str, field_name: str, value: Any) -> int:
        """The id of the one record whose field has the value."""
        [row] = self.search_read(model, [[field_name, "=", value]], ["id"])
        return int(row["id"])

    def close(self) -> None:
        """Close the HTTP client."""
        self.client.close()


def pytest_configure(config: pytest.Config) -> None:
    """xdist registers xdist_group itself; without xdist (-p no:xdist) it is just a mark."""
    config.addinivalue_line("markers", "xdist_group(name): run on the same xdist worker")


def _needs(item: pytest.Item, fixture: str) -> bool:
    return fixture in getattr(item, "fixturenames", ())


@pytest.fixture(scope="session")
def tryton_session(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TrytonSession]:
    """Tryton installed (cached), its template made (cached), and a server started with one
    database per test of this session that needs one."""
    count = max(1, sum(1 for item in request.session.items if _needs(item, "tryton")))
    names = [f"t{i:03d}" for i in range(count)]
    timings = bed.Timings()
    try:
        template = bed.ensure_template(timings)
        server = bed.TrytonServer(tmp_path_factory.mktemp("tryton"), names, template)
        started = time.monotonic()
        server.start()
        timings.steps[f"server with {count} database(s)"] = time.monotonic() - started
    except TestbedError as exc:
        pytest.fail(f"the Tryton testbed could not start: {exc}", pytrace=False)
    print(f"\nTryton testbed: {timings.describe()}")
    yield TrytonSession(server, names, timings)
    server.stop()


@pytest.fixture
def tryton(tryton_session: TrytonSession) -> Iterator[Tryton]:
    """A fresh Tryton database of the session's server, logged in."""
    if not tryton_session.free:
        pytest.fail("the Tryton testbed has no fresh database left", pytrace=False)
    db = Tryton(tryton_session.server.url, tryton_session.free.pop(0))
    db.login()
    yield db
    db.close()


@pytest.fixture
def landscape(tmp_path: Path) -> Path:
    """The landscape of tests/e2e/real/landscape copied into this test's folder (its store
    and the sandbox shop's database are made there)."""
    target = tmp_path / "landscape"
    shutil.copytree(LANDSCAPE, target)
    return target / "landscape.yaml"


@dataclass
class Akeneo:
    """One test's Akeneo database (named by a header) on the session's mock server."""

    url: str
    database: str
    client: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=60))

    @property
    def env(self) -> dict[str, str]:
        """The environment the landscape's connector settings refer to."""
        return {
            "AKENEO_URL": f"{self.url}/api/rest/v1",
            "AKENEO_BASE_URL": self.url,
            "AKENEO_DB": self.database,
            "AKENEO_SECRET": "not-checked-by-the-mock",
            "AKENEO_PASSWORD": "not-checked-by-the-mock",
        }

    def _headers(self) -> dict[str, str]:
        return {akeneo_bed.DB_HEADER: self.database, "Authorization": "Bearer test"}

    def product(self, identifier: str) -> dict[str, Any] | None:
        """A product in Akeneo's standard format, or None."""
        response = self.client.get(
            f"{self.url}/api/rest/v1/products/{identifier}", headers=self._headers()
        )
        if response.status_code == 404:
            return None
        response.raise_for_status()
        product: dict[str, Any] = response.json()
        return product

    def patch(self, identifier: str, body: dict[str, Any]) -> None:
        """Change a product as a PIM user would."""
        response = self.client.patch(
            f"{self.url}/api/rest/v1/products/{identifier}", json=body, headers=self._headers()
        )
        assert response.status_code in (201, 204), response.text

    def post(self, path: str, body: dict[str, Any]) -> None:
        """Create something under /api/rest/v1 (an attribute, a family) as a PIM admin would."""
        response = self.client.post(
            f"{self.url}/api/rest/v1{path}", json=body, headers=self._headers()
        )
        assert response.status_code == 201, response.text

    def delete(self, identifier: str) -> None:
        """Delete a product as a PIM user would."""
        response = self.client.delete(
            f"{self.url}/api/rest/v1/products/{identifier}", headers=self._headers()
        )
        assert response.status_code == 204, response.text

    def platform(self, path: str) -> Any:
        """A document of the Event Platform API (/api/v1: subscriptions, delivery logs), or
        None."""
        response = self.client.get(f"{self.url}/api/v1{path}", headers=self._headers())
        if response.status_code == 404:
            return None
        response.raise_for_status()
        return response.json()

    def close(self) -> None:
        """Close the HTTP client."""
        self.client.close()


@pytest.fixture(scope="session")
def akeneo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[akeneo_bed.AkeneoServer]:
    """akeneo-mock-server installed (cached) and started, its databases on PostgreSQL."""
    server = akeneo_bed.AkeneoServer(tmp_path_factory.mktemp("akeneo"), PG_URL)
    try:
        server.start()
    except TestbedError as exc:
        with contextlib.suppress(TestbedError):
            server.stop()  # drops the database it may have made
        pytest.fail(f"the Akeneo testbed could not start: {exc}", pytrace=False)
    yield server
    server.stop()


@pytest.fixture
def akeneo(akeneo_server: akeneo_bed.AkeneoServer) -> Iterator[Akeneo]:
    """A fresh Akeneo database of the session's mock server."""
    db = Akeneo(akeneo_server.url, akeneo_server.new_database())
    yield db
    db.close()


@dataclass
class BottleCrm:
    """One test's BottleCRM (a fresh clone of the template under the session's server), and
    a client that works in it as a CRM user would (with the unrestricted token)."""

    url: str
    template: crm_bed.Template
    client: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=60))

    @property
    def env(self) -> dict[str, str]:
        """The environment the landscape's connector settings refer to (the hub's token)."""
        return {"BOTTLECRM_URL": self.url, "BOTTLECRM_TOKEN": self.template.hub_token}

    def _call(self, method: str, path: str, body: Any = None, **params: Any) -> Any:
        response = self.client.request(
            method,
            f"{self.url}/api{path}",
            json=body,
            params=params or None,
            headers={"Authorization": f"Bearer {self.template.user_token}"},
        )
        assert response.status_code < 400, f"{method} {path}: {response.text}"
        return response.json()

    def create_account(self, **fields: Any) -> str:
        """A new account; its id."""
        return str(self._call("POST", "/accounts/", fields)["id"])

    def update_account(self, key: str, **fields: Any) -> None:
        """Change fields of an account (PATCH: the others stay)."""
        self._call("PATCH", f"/accounts/{key}/", fields)

    def delete_account(self, key: str) -> None:
        """Delete an account."""
        self._call("DELETE", f"/accounts/{key}/")

    def account(self, key: str) -> dict[str, Any]:
        """An account as its detail page shows it."""
        record: dict[str, Any] = self._call("GET", f"/accounts/{key}/")["account_obj"]
        return record

    def accounts(self) -> list[dict[str, Any]]:
        """Every account, active and archived."""
        document = self._call("GET", "/accounts/", limit=1000)
        return [
            *document["active_accounts"]["open_accounts"],
            *document["closed_accounts"]["close_accounts"],
        ]

    def create_contact(self, **fields: Any) -> str:
        """A new contact (a person); its id."""
        return str(self._call("POST", "/contacts/", fields)["id"])

    def update_contact(self, key: str, **fields: Any) -> None:
        """Change fields of a contact."""
        self._call("PATCH", f"/contacts/{key}/", fields)

    def close(self) -> None:
        """Close the HTTP client."""
        self.client.close()


@pytest.fixture(scope="session")
def bottlecrm_server(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[crm_bed.BottleCrmServer]:
    """BottleCRM installed (cached), its template made (cached) and restored on PostgreSQL,
    and one server started for the session (per xdist worker)."""
    timings = bed.Timings()
    server: crm_bed.BottleCrmServer | None = None
    try:
        template = crm_bed.ensure_template(PG_URL, timings)
        server = crm_bed.BottleCrmServer(tmp_path_factory.mktemp("bottlecrm"), template, PG_URL)
        started = time.monotonic()
        server.start()
        timings.steps["server"] = time.monotonic() - started
    except TestbedError as exc:
        if server is not None:
            with contextlib.suppress(TestbedError):
                server.stop()  # drops the database it may have made
        pytest.fail(f"the BottleCRM testbed could not start: {exc}", pytrace=False)
    print(f"\nBottleCRM testbed: {timings.describe()}")
    yield server
    server.stop()


@pytest.fixture
def bottlecrm(bottlecrm_server: crm_bed.BottleCrmServer) -> Iterator[BottleCrm]:
    """A fresh BottleCRM database (a clone of the template) under the session's server."""
    try:
        bottlecrm_server.reset()
    except TestbedError as exc:
        pytest.fail(f"the BottleCRM testbed could not reset its database: {exc}", pytrace=False)
    crm = BottleCrm(bottlecrm_server.url, bottlecrm_server.template)
    yield crm
    crm.close()
