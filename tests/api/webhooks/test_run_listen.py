"""`mastersync run --listen`: a SaaS system's webhook reaches a partner's export file, and
SIGTERM stops receiver and hub cleanly."""

from __future__ import annotations

import csv
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import orjson

from tests.connectors.webhook import signing

SECRET = "whsec_" + "cnVuLWxpc3Rlbi1zZWNyZXQtMDAwMQ=="

LANDSCAPE = """
name: saas-push
systems:
  saas:
    kind: crm
    connector:
      type: webhook
      secret: {env: SAAS_HOOK_SECRET}
      domains: [customer]
    inbound:
      customer:
        key: id
        version: {from: revision, kind: counter}
        fields: {name: name, email: {from: email, optional: true}}
  partner:
    kind: files
    connector:
      type: files
      exports: {customers: {folder: exports, format: csv, columns: [name, email]}}
    outbound:
      customers:
        domain: customer
        mapping: {fields: {name: name, email: email}}
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for(predicate: object, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.1)
    return False


def test_webhook_to_partner_export(tmp_path: Path) -> None:
    (tmp_path / "landscape.yaml").write_text(LANDSCAPE)
    port = _free_port()
    env = {**os.environ, "SAAS_HOOK_SECRET": SECRET}
    hub = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mastersync.cli",
            "-l",
            "landscape.yaml",
            "run",
            "--listen",
            f"127.0.0.1:{port}",
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:

        def listening() -> bool:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    return True
            except OSError:
                return False

        assert _wait_for(listening, 30), "the hub did not start listening"
        body = orjson.dumps(
            {
                "type": "contact.created",
                "data": {
                    "id": "A-1",
                    "name": "Café Zürich AG",
                    "email": "info@cafe.example",
                    "revision": 1,
                },
            }
        )
        headers = signing.standard(SECRET, "msg_run_1", int(time.time()), body)
        with httpx.Client(timeout=30) as client:
            response = client.post(
                f"http://127.0.0.1:{port}/hooks/saas/customer", content=body, headers=headers
            )
        assert response.status_code == 200, response.text
        assert response.json()["outcomes"] == {"accepted": 1}

        def exported() -> list[dict[str, str]]:
            return [
                row
                for f in (tmp_path / "exports").glob("customers-*.csv")
                for row in csv.DictReader(f.read_text(encoding="utf-8").splitlines())
            ]

        assert _wait_for(exported, 30), "the change did not reach the partner's export"
        assert exported() == [{"name": "Café Zürich AG", "email": "info@cafe.example"}]
    finally:
        hub.send_signal(signal.SIGTERM)
        out, _ = hub.communicate(timeout=60)
    assert hub.returncode == 0, out.decode()
    assert b"stopped after" in out
