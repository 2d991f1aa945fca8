"""Versioning (v2 item search, deprecation headers, adoption) and limits (rate, quota, body
size, time, crashes)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from typer.testing import CliRunner

from mastersync.api.app import create_app
from mastersync.api.context import ApiContext
from mastersync.api.limits import RateLimiter
from mastersync.api.settings import ApiSettings
from mastersync.bootstrap import Hub, build_hub
from mastersync.cli import app as cli
from mastersync.ports.governance import Usage
from mastersync.sandbox.apis.serve import LoopbackServer
from tests.api.conftest import Consumers, erp_ingest


class FakeClock:
    """Monotonic seconds and a UTC day that tests move by hand."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.day = dt.datetime(2026, 11, 27, 23, 0, tzinfo=dt.UTC)

    def mono(self) -> float:
        return self.now

    def today(self) -> dt.datetime:
        return self.day


def test_v2_pages_by_cursor_and_v1_says_it_is_deprecated(
    client: httpx.Client,
    consumer: Consumers,
    hub: Hub,
    app: FastAPI,
    landscape_file: Path,
    sqlite_url: str,
) -> None:
    erp_ingest(hub, "item", *({"sku": f"S{i}", "name": f"Item {i}", "v": 1} for i in range(5)))
    old, new = consumer("legacy", ["item:read"]), consumer("modern", ["item:read"])
    v1 = client.get("/v1/items?limit=2", headers=old)
    assert v1.headers["deprecation"].startswith("@")
    assert v1.headers["sunset"].endswith("GMT")
    assert v1.headers["link"] == '</v2/items>; rel="successor-version"'
    assert "deprecation" not in client.get("/v1/customers", headers=old).headers
    seen, cursor = [], None
    while True:
        url = "/v2/items?limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = client.get(url, headers=new)
        assert "deprecation" not in page.headers
        seen += [i["master_id"] for i in page.json()["items"]]
        # A record changing between pages does not move it under the reader's feet.
        erp_ingest(hub, "item", {"sku": "S0", "name": f"Item 0 {len(seen)}", "v": len(seen) + 1})
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 5 and seen == sorted(seen)
    bad = client.get("/v2/items?cursor=itm_nope", headers=new)
    assert bad.status_code == 422
    ctx: ApiContext = app.state.ctx
    ctx.flush_usage()
    usage: dict[tuple[str, str], int] = {}
    for u in hub.governance.usage():
        usage[(u.consumer, u.api_version)] = usage.get((u.consumer, u.api_version), 0) + u.calls
    assert usage[("legacy", "v1")] == 2
    assert usage[("modern", "v2")] == 4
    assert ("modern", "v1") not in usage
    out = CliRunner().invoke(
        cli, ["-l", str(landscape_file), "--store", sqlite_url, "api", "adoption"]
    )
    assert out.exit_code == 0, out.output
    lines = {
        line.split()[1]: line.split()
        for line in out.output.splitlines()
        if "│" in line and line.split()[1] in ("legacy", "modern")
    }
    assert lines["legacy"][3] == "2" and lines["legacy"][5] == "0"
    assert lines["modern"][5] == "4" and lines["modern"][7] == "100%"


def test_rate_limit_and_quota_answer_429_with_retry_after(
    client: httpx.Client, consumer: Consumers, app: FastAPI
) -> None:
    clock = FakeClock()
    ctx: ApiContext = app.state.ctx
    ctx.limiter = RateLimiter(clock=clock.mono, today=clock.today)
    h = consumer("burst", ["item:read"], rate_per_minute=3)
    answers = [client.get("/v1/items", headers=h) for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert [a.headers["x-ratelimit-remaining"] for a in answers] == ["2", "1", "0", "0"]
    assert answers[0].headers["x-ratelimit-limit"] == "3"
    refused = client.get("/v1/items", headers=h)
    assert refused.headers["retry-after"] == "20"
    assert refused.json()["error"]["code"] == "rate_limited"
    clock.now += 20
    assert client.get("/v1/items", headers=h).status_code == 200
    # Another consumer has its own bucket.
    other = consumer("calm", ["item:read"], rate_per_minute=100, quota_per_day=2)
    assert [client.get("/v1/items", headers=other).status_code for _ in range(3)] == [200, 200, 429]
    quota = client.get("/v1/items", headers=other)
    assert quota.headers["retry-after"] == "3600"  # until midnight UTC
    clock.day += dt.timedelta(hours=2)
    clock.now += 3600
    assert client.get("/v1/items", headers=other).status_code == 200


@pytest.mark.parametrize("settings", [ApiSettings(max_body_bytes=200)])
def test_body_size_cap(client: httpx.Client, consumer: Consumers) -> None:
    h = consumer("portal", ["customer:write"], system="portal")
    big = {"key": "X", "attributes": {"name": "x" * 500}}
    r = client.post("/v1/customers", json=big, headers=h)
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "body_too_large"
    assert r.json()["error"]["request_id"] == r.headers["x-request-id"]

    def chunks() -> object:
        yield b'{"key": "X", "attributes": {"name": "'
        yield b"x" * 300
        yield b'"}}'

    streamed = client.post(
        "/v1/customers", content=chunks(), headers={**h, "content-type": "application/json"}
    )
    assert streamed.status_code == 413


def test_timeouts_and_crashes_answer_without_internals(
    hub: Hub, consumer: Consumers, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = consumer("reader", ["item:read"])
    slow = create_app(hub, ApiSettings(timeout_seconds=0))
    with LoopbackServer(slow) as server, httpx.Client(base_url=server.url) as c:
        r = c.get("/v1/items", headers=h)
        assert r.status_code == 503
        assert r.json()["error"]["code"] == "unavailable"
        # The handler runs on: the answer must not read as "nothing happened".
        assert "may still complete" in r.json()["error"]["message"]
    app = create_app(hub)

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("secret table layout /srv/db.sqlite")

    monkeypatch.setattr(app.state.ctx.governance, "search", broken)
    with LoopbackServer(app) as server, httpx.Client(base_url=server.url) as c:
        r = c.get("/v1/items", headers=h)
        assert r.status_code == 500
        assert "secret" not in r.text and "RuntimeError" not in r.text
        assert r.json()["error"]["request_id"] == r.headers["x-request-id"]


def test_a_nul_in_a_path_query_or_key_is_refused(client: httpx.Client, consumer: Consumers) -> None:
    """PostgreSQL keeps no NUL in text: every look-up with one answered 500 there (404 on
    SQLite), and a process started with one in its key failed after its record was
    written."""
    h = consumer("ops", ["item:read", "item:write"], system="portal", person="pat")
    for path in (
        "/v1/items?q=%00",
        "/v1/items/erp:%00",
        "/v1/items/itm_%00",
        "/v1/processes/%00",
        "/v1/xref/item/erp/%00",
    ):
        r = client.get(path, headers=h)
        assert r.status_code == 404, (path, r.text)
        assert r.json()["error"]["request_id"] == r.headers["x-request-id"]
    for route in ("/v1/items", "/v1/processes/item-activation"):
        r = client.post(route, json={"key": "A\u0000", "attributes": {"name": "x"}}, headers=h)
        assert r.status_code == 422, (route, r.text)
    assert client.get("/v1/items", headers=h).json()["items"] == []


def test_a_nul_in_token_credentials_is_an_unknown_client(pg_url: str, landscape_file: Path) -> None:
    """On PostgreSQL the consumer look-up with a NUL in its name was a 500."""
    import base64

    hub = build_hub(landscape_file, pg_url)
    try:
        with LoopbackServer(create_app(hub)) as server, httpx.Client(base_url=server.url) as c:
            form = {"content-type": "application/x-www-form-urlencoded"}
            r = c.post(
                "/oauth/token",
                content=b"grant_type=client_credentials&client_id=a%00b&client_secret=x",
                headers=form,
            )
            assert r.status_code == 401, r.text
            basic = base64.b64encode(b"a\x00b:secret").decode()
            r = c.post(
                "/oauth/token",
                content=b"grant_type=client_credentials",
                headers={**form, "authorization": f"Basic {basic}"},
            )
            assert r.status_code == 401, r.text
    finally:
        hub.close()


def test_error_answers_keep_the_rate_limit_and_deprecation_headers(
    client: httpx.Client, consumer: Consumers
) -> None:
    # Review: set on the success response only, an error answer after authentication had
    # neither the consumer's rate limit nor a v1 endpoint's deprecation.
    h = consumer("reader", ["item:read"])
    refused = client.get("/v1/customers", headers=h)  # no customer:read: 403
    assert refused.status_code == 403
    assert refused.headers["x-ratelimit-limit"] and refused.headers["x-ratelimit-remaining"]
    invalid = client.get("/v1/items?limit=0", headers=h)
    assert invalid.status_code == 422
    assert (
        invalid.headers["deprecation"].startswith("@")
        and "successor-version" in (invalid.headers["link"])
    )
    ok = client.get("/v1/items", headers=h)
    assert ok.headers["deprecation"] == invalid.headers["deprecation"]


def test_adoption_counts_only_deprecated_operations(
    client: httpx.Client,
    consumer: Consumers,
    hub: Hub,
    app: FastAPI,
    landscape_file: Path,
    sqlite_url: str,
) -> None:
    # Review: usage was keyed by path alone, so upserts (POST /v1/items, no successor)
    # counted as calls to the deprecated search GET /v1/items.
    h = consumer("writer", ["item:read", "item:write"], system="portal")
    for i in range(3):
        r = client.post("/v1/items", json={"key": f"K{i}", "attributes": {"name": "n"}}, headers=h)
        assert r.status_code == 200, r.text
        assert "deprecation" not in r.headers
    assert "deprecation" in client.get("/v1/items", headers=h).headers
    ctx: ApiContext = app.state.ctx
    ctx.flush_usage()
    assert {u.route: u.calls for u in hub.governance.usage()} == {
        "POST /v1/items": 3,
        "GET /v1/items": 1,
    }
    # A row counted before methods were: either operation, so not taken as deprecated.
    hub.governance.add_usage([Usage("old", "v1", "/v1/items", "2026-01-05", 7, "2026-01-05")])
    out = CliRunner().invoke(
        cli, ["-l", str(landscape_file), "--store", sqlite_url, "api", "adoption"]
    )
    assert out.exit_code == 0, out.output
    rows = {
        cells[0]: cells
        for line in out.output.splitlines()
        if "│" in line
        for cells in [[c for c in line.split() if c != "│"]]
    }
    assert rows["writer"][1] == "4" and rows["writer"][4] == "1"
    assert rows["old"][1] == "7" and rows["old"][4] == "0"
    assert "old: 7 earlier call(s) to /v1/items were counted without their method" in " ".join(
        out.output.split()
    )


def test_remaining_counts_the_daily_quota(client: httpx.Client, consumer: Consumers) -> None:
    # Review: after the quota's last call the header still promised 98 calls.
    h = consumer("calm", ["item:read"], rate_per_minute=100, quota_per_day=3)
    answers = [client.get("/v1/items", headers=h) for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert [a.headers["x-ratelimit-remaining"] for a in answers] == ["2", "1", "0", "0"]
    # The minute bucket, when it is the nearer limit, still says so.
    few = consumer("few", ["item:read"], rate_per_minute=2, quota_per_day=50)
    assert client.get("/v1/items", headers=few).headers["x-ratelimit-remaining"] == "1"


def test_openapi_marks_the_deprecated_operations(client: httpx.Client) -> None:
    # Review: GET /v1/items answered Deprecation headers, but the OpenAPI document (what
    # generated clients and /docs read) presented it as current.
    paths = client.get("/openapi.json").json()["paths"]
    assert paths["/v1/items"]["get"]["deprecated"] is True
    assert "deprecated" not in paths["/v1/items"]["post"]
    assert "deprecated" not in paths["/v1/customers"]["get"]
    assert "deprecated" not in paths["/v2/items"]["get"]
