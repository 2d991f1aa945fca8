"""Replays and races at the webhook receiver: a captured signed request is taken once,
whatever unsigned header is changed, and so is a push sent several times at once."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from mastersync.api.webhooks import webhook_app
from mastersync.bootstrap import Hub, build_hub
from mastersync.pipeline.ingest import BatchReport, Ingestor
from mastersync.pipeline.queries import NotFound, get_record
from mastersync.sandbox.apis.serve import LoopbackServer
from tests.connectors.webhook import signing

SECRET = "whsec_" + "c2VjcmV0LWZvci10ZXN0cy0xMjM0NTY="
SHOP_SECRET = "shpss_0123456789abcdef"
OPS_SECRET = "ops-secret-0123456789"
PLAIN_SECRET = "plain-secret-0123456789"
NOW = 1_800_000_000

LANDSCAPE = """
name: replays
systems:
  crm:
    kind: crm
    connector:
      type: webhook
      scheme: standard
      secret: {env: CRM_HOOK_SECRET}
      domains: [customer]
    inbound:
      customer: {key: id, fields: {name: name}}
  shop:
    kind: ecommerce
    connector:
      type: webhook
      scheme: shopify
      secret: {env: SHOP_HOOK_SECRET}
      domains: [item]
      topics: {products/update: item}
    inbound:
      item: {key: id, fields: {name: title}}
  ops:
    kind: other
    connector:
      type: webhook
      scheme: hmac
      secret: {env: OPS_HOOK_SECRET}
      signature_header: X-Signature
      timestamp_header: X-Timestamp
      id_header: X-Delivery
      domains: [customer]
    inbound:
      customer: {key: id, fields: {name: name}}
  plain:
    kind: other
    connector:
      type: webhook
      scheme: hmac
      secret: {env: PLAIN_HOOK_SECRET}
      domains: [customer]
    inbound:
      customer: {key: id, fields: {name: name}}
"""


def _open_hub(tmp_path: Path, url: str, monkeypatch: pytest.MonkeyPatch) -> Hub:
    monkeypatch.setenv("CRM_HOOK_SECRET", SECRET)
    monkeypatch.setenv("SHOP_HOOK_SECRET", SHOP_SECRET)
    monkeypatch.setenv("OPS_HOOK_SECRET", OPS_SECRET)
    monkeypatch.setenv("PLAIN_HOOK_SECRET", PLAIN_SECRET)
    (tmp_path / "landscape.yaml").write_text(LANDSCAPE)
    return build_hub(tmp_path / "landscape.yaml", url)


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Hub]:
    opened = _open_hub(tmp_path, f"sqlite:///{tmp_path / 'hub.db'}", monkeypatch)
    yield opened
    opened.close()


@contextlib.contextmanager
def _client(hub: Hub) -> Iterator[httpx.Client]:
    with (
        LoopbackServer(webhook_app(hub, clock=lambda: NOW)) as server,
        httpx.Client(base_url=server.url, timeout=30) as client,
    ):
        yield client


def _golden(hub: Hub, domain: str, ref: str) -> dict[str, object] | None:
    try:
        return dict(get_record(hub.store, domain, ref).golden.attributes)
    except NotFound:
        return None


def _ops(body: bytes, stamp: int, delivery: str) -> dict[str, str]:
    mac = hmac.new(OPS_SECRET.encode(), f"{stamp}.".encode() + body, hashlib.sha256)
    return {"X-Signature": mac.hexdigest(), "X-Timestamp": str(stamp), "X-Delivery": delivery}


def _status(response: httpx.Response) -> str:
    assert response.status_code == 200, response.text
    return str(response.json()["status"])


def test_a_shopify_push_replayed_under_a_new_event_id_is_a_duplicate(hub: Hub) -> None:
    """Shopify signs the body only: v1 re-sent with a new X-Shopify-Event-Id after v2 was
    accepted and set the item back to v1."""
    v1 = orjson.dumps({"id": 7, "title": "Old title"})
    v2 = orjson.dumps({"id": 7, "title": "New title"})
    with _client(hub) as client:

        def post(body: bytes, headers: dict[str, str]) -> str:
            return _status(client.post("/hooks/shop", content=body, headers=headers))

        assert post(v1, signing.shopify(SHOP_SECRET, v1, "products/update", "e1")) == "accepted"
        assert post(v2, signing.shopify(SHOP_SECRET, v2, "products/update", "e2")) == "accepted"
        # Shopify's own retry of v1: same event id.
        assert post(v1, signing.shopify(SHOP_SECRET, v1, "products/update", "e1")) == "duplicate"
        forged = signing.shopify(SHOP_SECRET, v1, "products/update", "e1-forged")
        assert post(v1, forged) == "duplicate"
        no_ids = {
            k: v
            for k, v in forged.items()
            if k not in ("X-Shopify-Event-Id", "X-Shopify-Webhook-Id")
        }
        assert post(v1, no_ids) == "duplicate"
    assert _golden(hub, "item", "shop:7") == {"name": "New title"}


def test_an_hmac_push_replayed_under_a_new_delivery_id_is_a_duplicate(hub: Hub) -> None:
    """The hmac scheme signs "timestamp.body" and takes the id from an unsigned header: v1
    re-sent inside the tolerance with a new X-Delivery was accepted."""
    v1 = orjson.dumps({"id": "C1", "name": "Old name"})
    v2 = orjson.dumps({"id": "C1", "name": "New name"})
    with _client(hub) as client:

        def post(body: bytes, headers: dict[str, str]) -> str:
            return _status(client.post("/hooks/ops/customer", content=body, headers=headers))

        assert post(v1, _ops(v1, NOW - 10, "d1")) == "accepted"
        assert post(v2, _ops(v2, NOW - 5, "d2")) == "accepted"
        assert post(v1, _ops(v1, NOW - 10, "forged")) == "duplicate"
        assert post(
            v1, {k: v for k, v in _ops(v1, NOW - 10, "x").items() if k != "X-Delivery"}
        ) == ("duplicate")
        # The sender's retry, signed anew with a fresh timestamp: its id still counts.
        assert post(v1, _ops(v1, NOW - 1, "d1")) == "duplicate"
    assert _golden(hub, "customer", "ops:C1") == {"name": "New name"}


def test_an_hmac_push_without_a_timestamp_may_repeat_itself(hub: Hub) -> None:
    """Without a signed timestamp a replay cannot be told from the sender changing a value
    back: the change back is taken (answered duplicate, it was lost), and such a sender's
    replays are stopped only by versions in its records."""
    with _client(hub) as client:

        def post(name: str) -> str:
            raw = orjson.dumps({"id": "P1", "name": name})
            mac = hmac.new(PLAIN_SECRET.encode(), raw, hashlib.sha256).hexdigest()
            headers = {"X-Signature": mac}
            return _status(client.post("/hooks/plain/customer", content=raw, headers=headers))

        assert [post("Old name"), post("New name"), post("Old name")] == ["accepted"] * 3
    assert _golden(hub, "customer", "plain:P1") == {"name": "Old name"}


@pytest.mark.parametrize(
    ("url", "header"),
    [
        ("/hooks/crm/customer", "webhook-id"),
        ("/hooks/crm/customer", "webhook-timestamp"),
        ("/hooks/crm/customer", "webhook-signature"),
        ("/hooks/shop", "X-Shopify-Hmac-Sha256"),
        ("/hooks/shop", "X-Shopify-Event-Id"),
        ("/hooks/shop", "X-Shopify-Topic"),
        ("/hooks/ops/customer", "X-Signature"),
        ("/hooks/ops/customer", "X-Timestamp"),
        ("/hooks/ops/customer", "X-Delivery"),
    ],
)
def test_a_signed_header_sent_twice_with_different_values_is_refused(
    hub: Hub, url: str, header: str
) -> None:
    """Two webhook-id headers: the last was taken, whichever the signature was made with."""
    body = orjson.dumps({"data": {"id": "K2", "name": "Bob"}, "id": "K2", "title": "Bob"})
    if url.startswith("/hooks/crm"):
        signed = signing.standard(SECRET, "msg-2", NOW, body)
    elif url.startswith("/hooks/shop"):
        signed = signing.shopify(SHOP_SECRET, body, "products/update", "e-2")
    else:
        signed = _ops(body, NOW, "d-2")
    with _client(hub) as client:
        for extra_first in (False, True):
            extra = (header, "other-value")
            items = list(signed.items())
            sent = [extra, *items] if extra_first else [*items, extra]
            response = client.post(url, content=body, headers=sent)
            assert response.status_code == 400, response.text
            assert response.json() == {
                "error": f"header {header.lower()} is sent 2 times with different values; "
                "send it once"
            }
        # The same value twice says nothing ambiguous: taken.
        again = client.post(url, content=body, headers=[*signed.items(), (header, signed[header])])
        assert _status(again) == "accepted"


def _slow_first_ingest(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Ingest of the first push holds on a little, as on a loaded store: every delivery of
    the same push that arrives meanwhile meets it in flight."""
    real = Ingestor.ingest
    calls: Counter[str] = Counter()
    lock = threading.Lock()

    def ingest(self: Ingestor, system: str, domain: str, records: Any, **kw: Any) -> BatchReport:
        with lock:
            calls[kw.get("source", "")] += 1
            first = sum(calls.values()) == 1
        if first:
            time.sleep(0.5)
        return real(self, system, domain, records, **kw)

    monkeypatch.setattr(Ingestor, "ingest", ingest)
    return calls


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_identical_deliveries_at_once_are_taken_once(
    backend: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> None:
    """Eight copies of one push at once: the id was checked before and remembered after the
    ingest, and six of eight were ingested."""
    url = (
        f"sqlite:///{tmp_path / 'hub.db'}"
        if backend == "sqlite"
        else str(request.getfixturevalue("pg_url"))
    )
    hub = _open_hub(tmp_path, url, monkeypatch)
    calls = _slow_first_ingest(monkeypatch)
    body = orjson.dumps({"data": {"id": "K1", "name": "Ann"}})
    headers = signing.standard(SECRET, "msg-1", NOW, body)
    start = threading.Barrier(8)
    try:
        with LoopbackServer(webhook_app(hub, clock=lambda: NOW)) as server:

            def deliver(_: int) -> str:
                with httpx.Client(base_url=server.url, timeout=30) as client:
                    start.wait(10)
                    response = client.post("/hooks/crm/customer", content=body, headers=headers)
                    return _status(response)

            with ThreadPoolExecutor(8) as pool:
                statuses = Counter(pool.map(deliver, range(8)))
        assert statuses == {"accepted": 1, "duplicate": 7}
        assert calls == {"webhook msg-1": 1}
        assert _golden(hub, "customer", "crm:K1") == {"name": "Ann"}
    finally:
        hub.close()


def test_a_push_in_flight_too_long_is_answered_retry_later(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A copy that meets the same push still being taken after its wait is not told
    duplicate (the first may yet fail): 503, and its retry is then the duplicate."""
    real = Ingestor.ingest
    entered, release = threading.Event(), threading.Event()

    def ingest(self: Ingestor, system: str, domain: str, records: Any, **kw: Any) -> BatchReport:
        entered.set()
        assert release.wait(30)
        return real(self, system, domain, records, **kw)

    monkeypatch.setattr(Ingestor, "ingest", ingest)
    body = orjson.dumps({"data": {"id": "K5", "name": "Eve"}})
    headers = signing.standard(SECRET, "msg-5", NOW, body)
    with _client(hub) as client, ThreadPoolExecutor(1) as pool:
        first = pool.submit(client.post, "/hooks/crm/customer", content=body, headers=headers)
        assert entered.wait(30)  # the first has claimed the push and is storing it
        copy = client.post("/hooks/crm/customer", content=body, headers=headers)
        assert copy.status_code == 503, copy.text
        assert copy.headers["retry-after"] == "5"
        assert copy.json() == {"error": "push msg-5 is being taken by another request; retry later"}
        release.set()
        assert _status(first.result(30)) == "accepted"
        retry = client.post("/hooks/crm/customer", content=body, headers=headers)
        assert retry.json() == {"status": "duplicate", "id": "msg-5"}
    assert _golden(hub, "customer", "crm:K5") == {"name": "Eve"}
