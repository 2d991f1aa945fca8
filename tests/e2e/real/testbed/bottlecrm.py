"""BottleCRM (PyPI ``django-crm`` 1.35, MIT): installed into its own virtual environment with
Python 3.12, its database migrated once (about two minutes) into a template kept as a dump in
the cache and restored as a template database on the tests' PostgreSQL, and a uvicorn
server that serves a fresh clone of it (``CREATE DATABASE x TEMPLATE y``, a fraction of a
second) for every test.

BottleCRM enforces row-level security, which a PostgreSQL superuser bypasses, so its
databases belong to a role that is not one (``mastersync_crm``). Celery runs with an
in-memory broker and eager tasks: no Redis. The template holds one user, an organisation,
two custom account fields (``customer_number``, ``payment_terms``) and two personal access
tokens: one scoped to accounts and contacts for the hub, one unrestricted for the tests."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from tests.e2e.real.testbed.common import (
    Process,
    TestbedError,
    cache_root,
    ensure_venv,
    free_port,
    locked,
    run,
)
from tests.e2e.real.testbed.tryton import Timings

VERSION = "1.35"
PYTHON = "3.12"
REQUIREMENTS = [f"django-crm=={VERSION}.*"]
# The owner of BottleCRM's databases: not a superuser, or row-level security is bypassed.
ROLE = "mastersync_crm"
# Its password, for servers that do not trust local connections (the testbed's own role).
ROLE_PASSWORD = "mastersync-testbed"
# Bump when the template's content changes: cached dumps are then made again.
TEMPLATE_REVISION = "2"
USER_EMAIL = "admin@example.com"
ORG_NAME = "Demo Distribution"
# Custom account fields the landscape maps (per-organisation schema extensions).
ACCOUNT_FIELDS = {"customer_number": "Customer number", "payment_terms": "Payment terms"}
# What the hub's token may do (BottleCRM scopes are <resource>:<read|write>): custom-fields
# lets the connector refuse a custom field the organisation lacks (BottleCRM drops it).
HUB_SCOPES = [
    "accounts:read",
    "accounts:write",
    "contacts:read",
    "contacts:write",
    "custom-fields:read",
]
# A throwaway server on the loopback interface; it signs its JWTs with this.
SECRET_KEY = "mastersync-testbed-not-a-secret-0123456789abcdef"
SETTINGS_MODULE = "mastersync_testbed_settings"
SETTINGS = '''"""BottleCRM's settings for the mastersync testbed (tests/e2e/real/testbed)."""

from crm.settings import *  # noqa: F403

# No Redis: Celery's broker in memory and every task run in the request that queued it.
CELERY_BROKER_URL = "memory://"
CELERY_RESULT_BACKEND = "cache+memory://"
CELERY_TASK_ALWAYS_EAGER = True
# A throwaway user: hashing its password need not be slow.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
'''


def home() -> Path:
    """The cache folder of this version."""
    return cache_root() / f"bottlecrm-{VERSION}"


@dataclass(frozen=True)
class Template:
    """The template database on the PostgreSQL server, and what the testbed made in it."""

    database: str
    org: str
    hub_token: str
    user_token: str


def _pg(pg_url: str) -> dict[str, Any]:
    """The tests' PostgreSQL URL as connection parameters."""
    return {k: v for k, v in conninfo_to_dict(pg_url).items() if v is not None}


def _connect(pg_url: str) -> psycopg.Connection:
    try:
        return psycopg.connect(pg_url, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        raise TestbedError(f"BottleCRM needs PostgreSQL at {pg_url}: {exc}") from None


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise TestbedError(
            f"the BottleCRM testbed needs {name} (PostgreSQL's client tools; on Debian the "
            "package postgresql-client) to keep its migrated template in the cache"
        )
    return found


def ensure_role(pg_url: str) -> None:
    """The non-superuser role that owns BottleCRM's databases."""
    with _connect(pg_url) as conn:
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [ROLE]).fetchone()
        if exists is None:
            # Another session may make it meanwhile.
            with contextlib.suppress(psycopg.errors.DuplicateObject):
                conn.execute(
                    sql.SQL("CREATE ROLE {} LOGIN NOSUPERUSER NOCREATEDB PASSWORD {}").format(
                        sql.Identifier(ROLE), sql.Literal(ROLE_PASSWORD)
                    )
                )


def _create_database(pg_url: str, name: str, template: str | None = None) -> None:
    """A database owned by the role, empty or cloned from a template. PostgreSQL refuses to
    clone a template while another session is connected to it (a clone in progress in
    another test session): that is waited out."""
    statement = sql.SQL("CREATE DATABASE {} OWNER {}").format(
        sql.Identifier(name), sql.Identifier(ROLE)
    )
    if template is not None:
        statement = sql.SQL("{} TEMPLATE {}").format(statement, sql.Identifier(template))
    with _connect(pg_url) as conn:
        for attempt in range(50):
            try:
                conn.execute(statement)
                return
            except psycopg.errors.ObjectInUse:
                if attempt == 49:
                    raise
                time.sleep(0.2)


def drop_database(pg_url: str, name: str) -> None:
    """Drop a database, ending whatever is still connected to it."""
    with _connect(pg_url) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def _database_exists(pg_url: str, name: str) -> bool:
    with _connect(pg_url) as conn:
        row = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        return row is not None


def server_env(pg_url: str, database: str, *, debug: bool = False) -> dict[str, str]:
    """The environment BottleCRM's settings read: its database (as the role), the testbed's
    settings module, a secret key long enough for its JWTs."""
    pg = _pg(pg_url)
    return {
        **os.environ,
        "PYTHONPATH": str(home() / "settings"),
        "DJANGO_SETTINGS_MODULE": SETTINGS_MODULE,
        "DBNAME": database,
        "DBUSER": ROLE,
        "DBPASSWORD": ROLE_PASSWORD,
        "DBHOST": str(pg.get("host", "127.0.0.1")),
        "DBPORT": str(pg.get("port", "5432")),
        "SECRET_KEY": SECRET_KEY,
        "ENV_TYPE": "dev",
        "DEBUG": "true" if debug else "false",
    }


def ensure_installed() -> tuple[Path, float, bool]:
    """The virtual environment and the settings module; how long they took and whether the
    environment had to be made."""
    started = time.monotonic()
    folder = home()
    with locked(folder / ".lock"):
        made = ensure_venv(folder / "venv", PYTHON, REQUIREMENTS)
        _write_settings(folder)
    return folder / "venv", time.monotonic() - started, made


def _write_settings(folder: Path) -> None:
    settings = folder / "settings" / f"{SETTINGS_MODULE}.py"
    if not settings.exists() or settings.read_text() != SETTINGS:
        settings.parent.mkdir(parents=True, exist_ok=True)
        settings.write_text(SETTINGS)


def _start(folder: Path, env: dict[str, str], name: str) -> tuple[Process, str]:
    """uvicorn serving BottleCRM from ``folder`` (its log files land there)."""
    port = free_port()
    folder.mkdir(parents=True, exist_ok=True)
    process = Process(
        [
            str(home() / "venv" / "bin" / "uvicorn"),
            "crm.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        folder / f"{name}.log",
        env,
        cwd=folder,
    )
    return process, f"http://127.0.0.1:{port}"


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz/", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _call(client: httpx.Client, method: str, path: str, token: str, body: Any) -> Any:
    response = client.request(method, path, json=body, headers={"Authorization": f"Bearer {token}"})
    if response.status_code >= 400:
        raise TestbedError(f"BottleCRM {method} {path}: {response.status_code} {response.text}")
    return response.json()


def _set_up(url: str, access: str) -> dict[str, str]:
    """An organisation, switched into; its custom account fields; the two tokens."""
    with httpx.Client(base_url=url, timeout=60) as client:
        org = _call(client, "POST", "/api/org/", access, {"name": ORG_NAME})["org"]["id"]
        switched = _call(client, "POST", "/api/auth/switch-org/", access, {"org_id": org})
        access = switched["access_token"]
        for key, label in ACCOUNT_FIELDS.items():
            _call(
                client,
                "POST",
                "/api/custom-fields/",
                access,
                {
                    "target_model": "Account",
                    "key": key,
                    "label": label,
                    "field_type": "text",
                    "is_filterable": True,
                },
            )
        hub = _call(
            client,
            "POST",
            "/api/profile/tokens/",
            access,
            {"name": "mastersync", "scopes": HUB_SCOPES},
        )["token"]
        user = _call(client, "POST", "/api/profile/tokens/", access, {"name": "testbed"})["token"]
    return {"org": org, "hub_token": hub, "user_token": user}


def _build(folder: Path, pg_url: str) -> None:
    """Migrate a scratch database, set it up over the API, keep it as a dump."""
    ensure_role(pg_url)
    scratch = f"mastersync_bottlecrm_build_{uuid.uuid4().hex[:8]}"
    _create_database(pg_url, scratch)
    work = folder / "build"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        env = server_env(pg_url, scratch, debug=True)
        admin = str(folder / "venv" / "bin" / "django-admin")
        # In the build folder: BottleCRM's logging writes server.log and security_audit.log
        # into the working directory.
        run([admin, "migrate", "--noinput"], "migrate BottleCRM's database", env, cwd=work)
        # devlogin mints a JWT for a (new) user; it refuses unless DEBUG is on.
        done = subprocess.run(
            [admin, "devlogin", USER_EMAIL, "--create"],
            capture_output=True,
            text=True,
            env=env,
            cwd=work,
            check=False,
        )
        access = next(
            (
                line.split(":", 1)[1].strip()
                for line in done.stdout.splitlines()
                if line.startswith("access_token:")
            ),
            None,
        )
        if done.returncode != 0 or access is None:
            raise TestbedError(f"devlogin gave no token:\n{done.stdout}{done.stderr}")
        process, url = _start(work, server_env(pg_url, scratch), "bottlecrm-build")
        try:
            process.wait_ready(lambda: _healthy(url), 120, "BottleCRM")
            made = _set_up(url, access)
        finally:
            process.stop()
        dump = folder / "template.dump"
        partial = folder / "template.dump.part"
        pg = _pg(pg_url)
        run(
            [
                _tool("pg_dump"),
                "--format=custom",
                "--no-owner",
                "--no-privileges",
                f"--file={partial}",
                f"--dbname={make_conninfo(**{**pg, 'dbname': scratch})}",
            ],
            "dump BottleCRM's template database",
        )
        partial.replace(dump)
        (folder / "template.json").write_text(
            json.dumps({"revision": TEMPLATE_REVISION, **made}, indent=2)
        )
    finally:
        drop_database(pg_url, scratch)
        shutil.rmtree(work, ignore_errors=True)


def _restore(folder: Path, pg_url: str, name: str) -> None:
    """The dump restored as the role (so the role owns every table) under a temporary name,
    then renamed: another session never sees a half-restored template."""
    ensure_role(pg_url)
    partial = f"{name}_restoring_{uuid.uuid4().hex[:6]}"
    _create_database(pg_url, partial)
    pg = _pg(pg_url)
    try:
        run(
            [
                _tool("pg_restore"),
                "--no-owner",
                "--no-privileges",
                "--exit-on-error",
                "--dbname="
                + make_conninfo(
                    **{**pg, "user": ROLE, "password": ROLE_PASSWORD, "dbname": partial}
                ),
                str(folder / "template.dump"),
            ],
            "restore BottleCRM's template database",
        )
        with _connect(pg_url) as conn:
            conn.execute(
                sql.SQL("ALTER DATABASE {} RENAME TO {}").format(
                    sql.Identifier(partial), sql.Identifier(name)
                )
            )
    except BaseException:
        drop_database(pg_url, partial)
        raise


def _drop_stale_templates(pg_url: str, current: str) -> None:
    """Template databases of earlier dumps (one in use by another session stays)."""
    with _connect(pg_url) as conn:
        rows = conn.execute(
            "SELECT datname FROM pg_database WHERE datname ~ %s AND datname <> %s",
            [r"^mastersync_bottlecrm_[0-9a-f]{12}$", current],
        ).fetchall()
        for (name,) in rows:
            with contextlib.suppress(psycopg.errors.ObjectInUse):
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))


def ensure_template(pg_url: str, timings: Timings) -> Template:
    """The environment, the migrated template (a dump in the cache) and its database on the
    PostgreSQL server, each made only if missing."""
    folder = home()
    started = time.monotonic()
    _, _, made = ensure_installed()
    timings.steps["install"] = time.monotonic() - started
    if not made:
        timings.cached.add("install")
    with locked(folder / ".lock"):
        started = time.monotonic()
        meta_file = folder / "template.json"
        meta: dict[str, str] = json.loads(meta_file.read_text()) if meta_file.exists() else {}
        if (
            made
            or meta.get("revision") != TEMPLATE_REVISION
            or not (folder / "template.dump").exists()
        ):
            _build(folder, pg_url)
            meta = json.loads(meta_file.read_text())
        else:
            timings.cached.add("database template")
        timings.steps["database template"] = time.monotonic() - started
        # Named by the dump's content: a new dump is a new template database.
        digest = hashlib.sha256((folder / "template.dump").read_bytes()).hexdigest()[:12]
        database = f"mastersync_bottlecrm_{digest}"
        started = time.monotonic()
        if _database_exists(pg_url, database):
            timings.cached.add("template database")
        else:
            _restore(folder, pg_url, database)
            _drop_stale_templates(pg_url, database)
        timings.steps["template database"] = time.monotonic() - started
    return Template(database, meta["org"], meta["hub_token"], meta["user_token"])


class BottleCrmServer:
    """BottleCRM on 127.0.0.1 serving one database of its own, cloned from the template and
    cloned again by ``reset`` (Django holds no connection between requests, so the database
    can be replaced under the running server)."""

    def __init__(self, folder: Path, template: Template, pg_url: str) -> None:
        self.folder = folder
        self.template = template
        self.pg_url = pg_url
        self.database = f"mastersync_bottlecrm_w{uuid.uuid4().hex[:10]}"
        self.process: Process | None = None
        self.url = ""

    def start(self) -> None:
        """Clone the template, start uvicorn, wait until the API answers the hub's token."""
        _create_database(self.pg_url, self.database, self.template.database)
        self.process, self.url = _start(
            self.folder, server_env(self.pg_url, self.database), "bottlecrm"
        )
        self.process.wait_ready(self._ready, 120, "BottleCRM")

    def _ready(self) -> bool:
        try:
            response = httpx.get(
                f"{self.url}/api/accounts/?limit=1",
                headers={"Authorization": f"Bearer {self.template.hub_token}"},
                timeout=5,
            )
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    def reset(self) -> None:
        """A fresh clone of the template under the server (between tests)."""
        drop_database(self.pg_url, self.database)
        _create_database(self.pg_url, self.database, self.template.database)

    def stop(self) -> None:
        """Stop the server and drop its database."""
        if self.process is not None:
            self.process.stop()
            self.process = None
        drop_database(self.pg_url, self.database)
