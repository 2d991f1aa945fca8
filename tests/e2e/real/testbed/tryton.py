"""Tryton 8.2 on SQLite: installed from PyPI into its own virtual environment, a database
template made once (``trytond-admin --all``, the modules activated, a company, currency,
countries and party categories added over JSON-RPC), and a server that serves fresh copies
of the template on a free loopback port. mastersync itself never imports trytond."""

from __future__ import annotations

import base64
import os
import shutil
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.real.testbed.common import (
    Process,
    TestbedError,
    cache_root,
    ensure_venv,
    free_port,
    locked,
    run,
)

VERSION = "8.2"
PYTHON = "3.11"
MODULES = [
    "party",
    "product",
    "stock",
    "sale",
    "purchase",
    "product_price_list",
    "company",
    "currency",
]
REQUIREMENTS = [
    f"trytond=={VERSION}.*",
    *(f"trytond-{m.replace('_', '-')}=={VERSION}.*" for m in MODULES),
]
USER = "admin"
# A throwaway server on the loopback interface; tests pass it as TRYTON_PASSWORD.
PASSWORD = "admin"
# Bump when prepare() changes: cached templates are then made again.
TEMPLATE_REVISION = "2"
COUNTRIES = {"DE": "Germany", "AT": "Austria", "FR": "France", "US": "United States"}
CATEGORIES = ["Customer", "Supplier"]


def home() -> Path:
    """The cache folder of this Tryton version."""
    return cache_root() / f"tryton-{VERSION}"


@dataclass
class Timings:
    """How long each step took (seconds), and which steps were served from the cache."""

    steps: dict[str, float] = field(default_factory=dict)
    cached: set[str] = field(default_factory=set)

    def describe(self) -> str:
        """One line for people."""
        return ", ".join(
            f"{name} {seconds:.1f} s" + (" (cached)" if name in self.cached else "")
            for name, seconds in self.steps.items()
        )


def _config(folder: Path, port: int) -> Path:
    conf = folder / "trytond.conf"
    conf.write_text(
        f"[database]\nuri = sqlite://\npath = {folder / 'db'}\n[web]\nlisten = 127.0.0.1:{port}\n"
    )
    return conf


class Rpc:
    """A minimal JSON-RPC client for setting the testbed up (tests use the connector's)."""

    def __init__(self, url: str, database: str) -> None:
        self.url = f"{url}/{database}/rpc/"
        self.client = httpx.Client(timeout=60)
        self.session: str | None = None

    def _post(self, method: str, params: list[Any]) -> Any:
        headers = {"Authorization": f"Session {self.session}"} if self.session else {}
        response = self.client.post(
            self.url, json={"id": 1, "method": method, "params": params}, headers=headers
        )
        response.raise_for_status()
        body = response.json()
        if body.get("error"):
            raise TestbedError(f"Tryton {method}: {body['error']}")
        return body.get("result")

    def login(self) -> None:
        """Log in as the admin user."""
        uid, token = self._post("common.db.login", [USER, {"password": PASSWORD}, "en"])[:2]
        self.session = base64.b64encode(f"{USER}:{uid}:{token}".encode()).decode()

    def call(self, method: str, *params: Any) -> Any:
        """Call a method with the session."""
        return self._post(method, list(params))

    def close(self) -> None:
        """Close the HTTP client."""
        self.client.close()


def ready(url: str, database: str) -> bool:
    """The server answers a login for the database (its modules are loaded)."""
    rpc = Rpc(url, database)
    try:
        rpc.login()
        return True
    except (httpx.HTTPError, TestbedError, TypeError, ValueError):
        return False
    finally:
        rpc.close()


def prepare(url: str, database: str) -> None:
    """What every test database starts with: a company in EUR that the admin works in,
    a few countries, and the party categories that tell customers from suppliers."""
    rpc = Rpc(url, database)
    try:
        rpc.login()
        decimal = {"__class__": "Decimal", "decimal": "0.01"}
        [eur] = rpc.call(
            "model.currency.currency.create",
            [{"name": "Euro", "code": "EUR", "symbol": "€", "rounding": decimal, "digits": 2}],
            {},
        )
        [party] = rpc.call("model.party.party.create", [{"name": "Demo Distribution GmbH"}], {})
        [company] = rpc.call(
            "model.company.company.create", [{"party": party, "currency": eur}], {}
        )
        rpc.call(
            "model.res.user.write",
            [1],
            {"companies": [["add", [company]]], "company": company},
            {},
        )
        context = {"company": company}
        rpc.call(
            "model.country.country.create",
            [{"code": code, "name": name} for code, name in COUNTRIES.items()],
            context,
        )
        rpc.call("model.party.category.create", [{"name": n} for n in CATEGORIES], context)
    finally:
        rpc.close()


def _checkpoint(database: Path) -> None:
    """Fold the write-ahead log into the file, so that copying the file copies everything."""
    conn = sqlite3.connect(database)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()


def ensure_template(timings: Timings) -> Path:
    """The virtual environment and the database template, made if not cached."""
    folder = home()
    with locked(folder / ".lock"):
        started = time.monotonic()
        made = ensure_venv(folder / "venv", PYTHON, REQUIREMENTS)
        timings.steps["install"] = time.monotonic() - started
        if not made:
            timings.cached.add("install")
        template = folder / "template.sqlite"
        stamp = folder / "template.revision"
        started = time.monotonic()
        if (
            made
            or not template.exists()
            or not stamp.exists()
            or (stamp.read_text() != TEMPLATE_REVISION)
        ):
            _build_template(folder, template)
            stamp.write_text(TEMPLATE_REVISION)
        else:
            timings.cached.add("database template")
        timings.steps["database template"] = time.monotonic() - started
        return template


def _build_template(folder: Path, template: Path) -> None:
    work = folder / "build"
    if work.exists():
        shutil.rmtree(work)
    (work / "db").mkdir(parents=True)
    bin_ = folder / "venv" / "bin"
    port = free_port()
    conf = _config(work, port)
    name = "template"
    (work / "db" / f"{name}.sqlite").touch()
    (work / "password").write_text(PASSWORD)
    env = {**os.environ, "TRYTONPASSFILE": str(work / "password")}
    admin = [str(bin_ / "trytond-admin"), "-c", str(conf), "-d", name]
    run([*admin, "--all", "--email", "admin@example.com"], "initialise the database", env)
    run(
        [*admin, "-u", *MODULES, "--activate-dependencies"],
        f"activate the modules {' '.join(MODULES)}",
        env,
    )
    server = Process(
        [str(bin_ / "trytond"), "-c", str(conf), "-d", name], work / "trytond.log", env
    )
    url = f"http://127.0.0.1:{port}"
    try:
        server.wait_ready(lambda: ready(url, name), 120, "trytond")
        prepare(url, name)
    finally:
        server.stop()
    _checkpoint(work / "db" / f"{name}.sqlite")
    (work / "db" / f"{name}.sqlite").replace(template)
    shutil.rmtree(work)


class TrytonServer:
    """A trytond serving fresh copies of the template, one database per name given. Tryton
    loads a database's modules only for the databases named at start (``-d``), so every
    database a session will use is made before the server starts."""

    def __init__(self, folder: Path, databases: list[str], template: Path) -> None:
        self.folder = folder
        self.databases = list(databases)
        self.template = template
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: Process | None = None

    def start(self) -> None:
        """Copy the template for each database, start the server, wait for every database."""
        (self.folder / "db").mkdir(parents=True, exist_ok=True)
        for name in self.databases:
            shutil.copyfile(self.template, self.folder / "db" / f"{name}.sqlite")
        conf = _config(self.folder, self.port)
        self.process = Process(
            [str(home() / "venv" / "bin" / "trytond"), "-c", str(conf), "-d", *self.databases],
            self.folder / "trytond.log",
            dict(os.environ),
        )
        for name in self.databases:
            self.process.wait_ready(lambda n=name: ready(self.url, n), 180, "trytond")

    def stop(self) -> None:
        """Stop the server."""
        if self.process is not None:
            self.process.stop()
            self.process = None
