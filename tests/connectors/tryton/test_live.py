"""The Tryton connector's creates whose outcome it never learnt, against a live Tryton (the
testbed of tests/e2e/real: trytond 8.2 from PyPI on SQLite) behind a loopback relay that
holds a create's answer back: Tryton has made the record, the connector sees a timeout."""

from __future__ import annotations

import asyncio
import http.server
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from mastersync.connectors.registry import ConnectorContext
from mastersync.connectors.tryton.connector import TrytonConnector
from mastersync.connectors.tryton.spec import TrytonSettings
from mastersync.domain.subscriptions import Operation
from mastersync.ports.outbound import DeliveryAck, DeliveryRequest, TransientFailure
from tests.e2e.real.conftest import Tryton
from tests.e2e.real.testbed import tryton as bed

# One worker runs them all: one Tryton server (scripts/test uses --dist loadgroup).
pytestmark = pytest.mark.xdist_group("tryton")

DATABASES = [f"live{i}" for i in range(4)]
# The connector's timeout, and how long the relay holds a create's answer back.
TIMEOUT = 1.5
HELD = 2.5


class Relay:
    """Passes JSON-RPC calls on to Tryton; the answer to a create is held back for
    ``hold`` seconds after Tryton gave it (the record is made and committed by then)."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.hold = 0.0
        self.creates = 0
        relay = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                headers = {k: v for k, v in self.headers.items() if k.lower() in ("authorization",)}
                headers["Content-Type"] = "application/json"
                answer = httpx.post(
                    relay.upstream + self.path, content=body, headers=headers, timeout=60
                )
                if str(orjson.loads(body).get("method", "")).endswith(".create"):
                    relay.creates += 1
                    time.sleep(relay.hold)
                try:
                    self.send_response(answer.status_code)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(answer.content)))
                    self.end_headers()
                    self.wfile.write(answer.content)
                except OSError:
                    pass  # the connector gave up waiting and closed the connection

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet."""

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def relay(tryton: Tryton) -> Iterator[Relay]:
    made = Relay(tryton.url)
    yield made
    made.close()


def connector(relay: Relay, tryton: Tryton, tmp_path: Path, match: list[str]) -> TrytonConnector:
    return TrytonConnector(
        TrytonSettings.model_validate(
            {
                "type": "tryton",
                "url": relay.url,
                "database": tryton.database,
                "user": bed.USER,
                "password": bed.PASSWORD,
                "timeout": TIMEOUT,
                "retries": 0,
                "write": {
                    "customers": {
                        "model": "party.party",
                        "match": match,
                        "on_create": {"categories": ["Customer"]},
                        "links": {"categories": {"model": "party.category", "by": "name"}},
                    }
                },
            }
        ),
        ConnectorContext("tryton", tmp_path),
    )


def request(payload: dict[str, Any]) -> DeliveryRequest:
    return DeliveryRequest(
        subscription="tryton.customers",
        system="tryton",
        domain="customer",
        master_id="cus_1",
        version=1,
        operation=Operation.UPSERT,
        idempotency_key="cus_1:1",
        target_key=None,
        payload=payload,
        trace_id="t",
    )


def timed_out_then_retried(c: TrytonConnector, relay: Relay, payload: dict[str, Any]) -> Any:
    """The first attempt times out after Tryton made the record; the hub retries it."""
    relay.hold = HELD
    with pytest.raises(TransientFailure, match="ReadTimeout"):
        asyncio.run(c.send(request(payload)))
    relay.hold = 0.0
    time.sleep(HELD - TIMEOUT)  # the held answer is gone before the retry
    return asyncio.run(c.send(request(payload)))


def parties(tryton: Tryton, name: str) -> list[dict[str, Any]]:
    return tryton.search_read("party.party", [["name", "=", name]], ["code", "name"])


def test_a_timed_out_create_is_found_by_match_on_the_retry(
    tryton: Tryton, relay: Relay, tmp_path: Path
) -> None:
    c = connector(relay, tryton, tmp_path, ["code"])
    ack = timed_out_then_retried(c, relay, {"code": "T-1", "name": "Zeitweise GmbH"})
    [made] = parties(tryton, "Zeitweise GmbH")
    assert ack.target_key == str(made["id"])
    assert relay.creates == 1
    asyncio.run(c.close())


def test_a_timed_out_create_without_match_is_not_made_twice(
    tryton: Tryton, relay: Relay, tmp_path: Path
) -> None:
    c = connector(relay, tryton, tmp_path, [])
    ack = timed_out_then_retried(c, relay, {"name": "Ohne Schlüssel AG"})
    made = parties(tryton, "Ohne Schlüssel AG")
    assert [str(p["id"]) for p in made] == [ack.target_key]
    asyncio.run(c.close())


@pytest.mark.parametrize("match", [["code"], []], ids=["match", "no-match"])
def test_a_create_the_hub_stopped_waiting_for_is_not_made_twice(
    tryton: Tryton, relay: Relay, tmp_path: Path, match: list[str]
) -> None:
    """The hub's delivery timeout ends its wait, not the create: the connector's thread goes
    on and Tryton makes the record after the hub gave up. Review: the retry came while that
    create was under way, found nothing, and created again (refused here only because a
    party's code is unique; a duplicate otherwise)."""
    c = connector(relay, tryton, tmp_path, match)
    name = f"Hub wartet nicht {len(match)} KG"
    payload = {"code": f"H-{len(match)}", "name": name}
    relay.hold = 1.0  # under the connector's timeout: its create succeeds, late

    async def abandoned() -> DeliveryAck:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.3):
                await c.send(request(payload))
        relay.hold = 0.0
        # The hub's next attempt, while the first create is still under way.
        with pytest.raises(TransientFailure, match="earlier attempt is still being written"):
            await c.send(request(payload))
        # The hub's backoff, then its retries (as many as a loaded machine needs for the first
        # create to end): each finds that create under way, until it has ended.
        deadline = time.monotonic() + 60
        while True:
            await asyncio.sleep(HELD)
            try:
                return await c.send(request(payload))
            except TransientFailure as exc:
                if "still being written" not in str(exc) or time.monotonic() > deadline:
                    raise

    ack = asyncio.run(abandoned())
    [made] = parties(tryton, name)
    assert ack.target_key == str(made["id"])
    assert relay.creates == 1
    asyncio.run(c.close())
