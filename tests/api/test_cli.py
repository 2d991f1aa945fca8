"""`mastersync serve`, `consumers` and `api keys` from the command line."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from typer.testing import CliRunner

from mastersync.bootstrap import Hub
from mastersync.cli import app as cli


def _run(landscape: Path, store: str, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["-l", str(landscape), "--store", store, *args])
    return result.exit_code, result.output


def test_consumers_add_list_revoke(landscape_file: Path, sqlite_url: str, hub: Hub) -> None:
    code, out = _run(
        landscape_file,
        sqlite_url,
        "consumers",
        "add",
        "portal",
        "-s",
        "customer:read",
        "-s",
        "customer:write",
        "--system",
        "portal",
        "--person",
        "pat",
        "--rate",
        "60",
    )
    assert code == 0, out
    key = out.strip().splitlines()[-1]
    assert key.startswith("portal.") and len(key) == len("portal.") + 64
    consumer = hub.governance.consumer("portal")
    assert consumer is not None and key.split(".")[1] not in consumer.secret_hash
    code, out = _run(landscape_file, sqlite_url, "consumers", "list")
    assert code == 0 and "portal" in out and "customer:read customer:write" in out
    assert key.split(".")[1] not in out
    code, out = _run(landscape_file, sqlite_url, "consumers", "add", "bad", "-s", "root")
    assert code == 1 and "unknown scope 'root'" in out
    code, out = _run(
        landscape_file, sqlite_url, "consumers", "add", "x", "-s", "item:read", "--system", "sap"
    )
    assert code == 1 and "unknown system 'sap'" in out
    code, out = _run(landscape_file, sqlite_url, "consumers", "add", "portal", "-s", "item:read")
    assert code == 1 and "exists already" in out
    assert _run(landscape_file, sqlite_url, "consumers", "revoke", "portal")[0] == 0
    code, out = _run(landscape_file, sqlite_url, "consumers", "revoke", "portal")
    assert code == 1 and "no active consumer 'portal'" in out


def test_signing_keys(landscape_file: Path, sqlite_url: str, hub: Hub) -> None:
    code, out = _run(landscape_file, sqlite_url, "api", "keys", "rotate")
    assert code == 0
    first = out.split()[-1]
    _run(landscape_file, sqlite_url, "api", "keys", "rotate")
    code, out = _run(landscape_file, sqlite_url, "api", "keys", "list")
    assert "signs" in out and "verifies" in out
    assert _run(landscape_file, sqlite_url, "api", "keys", "retire", first)[0] == 0
    assert [k.kid for k in hub.governance.signing_keys()] != [first]
    assert _run(landscape_file, sqlite_url, "api", "keys", "retire", first)[0] == 1


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_publishes_the_openapi_document(landscape_file: Path, sqlite_url: str) -> None:
    port = _free_port()
    env = {
        **os.environ,
        "MASTERSYNC_LANDSCAPE": str(landscape_file),
        "MASTERSYNC_STORE": sqlite_url,
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "mastersync.cli", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        doc = None
        for _ in range(200):  # up to 20 s for the server to come up
            try:
                doc = httpx.get(f"http://127.0.0.1:{port}/openapi.json", timeout=2).json()
                break
            except httpx.TransportError:
                time.sleep(0.1)
        assert doc is not None, "mastersync serve did not answer"
        assert doc["info"]["title"] == "mastersync API"
        assert "/v1/customers" in doc["paths"] and "/v2/items" in doc["paths"]
        schemes = doc["components"]["securitySchemes"]
        assert schemes["ApiKey"]["in"] == "header"
        assert schemes["OAuth2"]["flows"]["clientCredentials"]["tokenUrl"] == "/oauth/token"
        assert httpx.get(f"http://127.0.0.1:{port}/v1/items").status_code == 401
    finally:
        proc.terminate()
        proc.wait(timeout=20)
