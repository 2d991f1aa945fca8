"""The REST connector against live loopback servers: every pagination style, incremental
reads, authentication schemes, rate limits and retries, and deliveries as templated calls."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from mastersync.connectors.registry import ConnectorContext
from mastersync.connectors.rest import pages
from mastersync.connectors.rest.client import RestConnector
from mastersync.connectors.rest.http import MAX_RETRY_AFTER, retry_after, server_time
from mastersync.connectors.rest.pages import Cursor, later, minus, stamp_order
from mastersync.connectors.rest.spec import RestSettings
from mastersync.domain.subscriptions import Operation
from mastersync.ports.connector import SourceRecord, TerminalError, TransientError
from mastersync.ports.outbound import DeliveryRequest, NotSent, TerminalFailure, TransientFailure
from mastersync.sandbox.apis.serve import LoopbackServer
from mastersync.sandbox.apis.shopify import API, ShopifyApi, ShopState
from tests.connectors.rest.catalog_api import Catalog, CatalogApi


@pytest.fixture
def catalog() -> Iterator[tuple[Catalog, str]]:
    c = Catalog()
    c.add(23)
    with LoopbackServer(CatalogApi(c).app) as server:
        yield c, server.url


OPENED: list[RestConnector] = []


@pytest.fixture(autouse=True)
def _close_connectors() -> Iterator[None]:
    yield
    while OPENED:
        asyncio.run(OPENED.pop().close())


def make(tmp_path: Path, base_url: str, **settings: Any) -> RestConnector:
    model = RestSettings.model_validate({"type": "rest", "base_url": base_url, **settings})
    conn = RestConnector(model, ConnectorContext("api", tmp_path))
    OPENED.append(conn)
    return conn


def read_all(
    conn: RestConnector, domain: str, cursor: str | None, limit: int
) -> tuple[list[str], str | None]:
    keys: list[str] = []
    while True:
        page = conn.read(domain, cursor, limit)
        keys += [r.payload["id"] for r in page.records if isinstance(r, SourceRecord)]
        cursor = page.cursor
        if not page.more:
            return keys, cursor


PAGINATIONS = {
    "page": {
        "path": "/page",
        "records": "items",
        "pagination": {"kind": "page", "size_param": "per_page"},
    },
    "offset": {"path": "/offset", "pagination": {"kind": "offset"}},
    "cursor": {
        "path": "/cursor",
        "records": "data",
        "pagination": {"kind": "cursor", "next": "meta.next_cursor"},
    },
    "next_url": {
        "path": "/next",
        "records": "records",
        "pagination": {"kind": "next_url", "next": "nextRecordsUrl"},
    },
    "search_after": {
        "path": "/search",
        "records": "_embedded.items",
        "pagination": {"kind": "search_after"},
    },
    "none": {"path": "/all", "records": "items"},
}


@pytest.mark.parametrize("kind", sorted(PAGINATIONS))
def test_every_pagination_style_reads_each_record_once(
    tmp_path: Path, catalog: tuple[Catalog, str], kind: str
) -> None:
    c, url = catalog
    conn = make(tmp_path, url, read={"thing": PAGINATIONS[kind]})
    keys, _ = read_all(conn, "thing", None, 5)
    assert keys == [f"R{i:04d}" for i in range(23)]
    if kind != "none":
        assert len(c.calls) >= 5  # 23 records in pages of 5
    assert [k for k, _ in conn.read_state("thing")] == keys


@pytest.mark.parametrize("kind", ["page", "offset"])
def test_a_server_capping_page_sizes_is_read_to_the_end(
    tmp_path: Path, catalog: tuple[Catalog, str], kind: str
) -> None:
    """Review: 10 asked, at most 4 given: the short first page was taken for the last, and
    19 of 23 records were never read (an incremental cursor then moved past them)."""
    c, url = catalog
    c.page_cap = 4
    conn = make(tmp_path, url, read={"thing": PAGINATIONS[kind]})
    keys, _ = read_all(conn, "thing", None, 10)
    assert keys == [f"R{i:04d}" for i in range(23)]


def test_a_server_ignoring_the_page_parameter_ends_the_pass(
    tmp_path: Path, catalog: tuple[Catalog, str]
) -> None:
    c, url = catalog
    c.ignores_paging = True
    conn = make(tmp_path, url, read={"thing": PAGINATIONS["page"]})
    keys, _ = read_all(conn, "thing", None, 100)
    assert sorted(set(keys)) == [f"R{i:04d}" for i in range(23)]
    assert len(c.calls) == 2  # the same page twice, then the pass ends


def test_cursor_paging_follows_an_empty_page_that_names_a_next_cursor(
    tmp_path: Path, catalog: tuple[Catalog, str]
) -> None:
    """Review: a server filtering after it cut the page answered two empty pages that named
    a next cursor; the pass ended at the first of them and 8 records were never read."""
    c, url = catalog
    c.hidden = {f"R{i:04d}" for i in range(5, 15)}
    conn = make(tmp_path, url, read={"thing": PAGINATIONS["cursor"]})
    keys, _ = read_all(conn, "thing", None, 5)
    expected = [f"R{i:04d}" for i in range(23) if not 5 <= i < 15]
    assert keys == expected
    assert len(c.calls) == 5  # positions 0, 5, 10, 15, 20: the empty pages were asked for
    assert [k for k, _ in conn.read_state("thing")] == expected


def test_an_empty_page_naming_the_cursor_it_was_given_ends_in_an_error(
    tmp_path: Path, catalog: tuple[Catalog, str]
) -> None:
    c, url = catalog
    c.cursor_stuck_at = 10
    conn = make(tmp_path, url, read={"thing": PAGINATIONS["cursor"]}, page_size=5)
    page = conn.read("thing", None, 5)
    page = conn.read("thing", page.cursor, 5)
    assert len(page.records) == 5 and page.more
    with pytest.raises(
        TerminalError, match=r"GET /cursor: .*the cursor 'MTA=' with the same cursor again"
    ) as caught:
        conn.read("thing", page.cursor, 5)
    assert "pagination.next" in caught.value.message
    calls = len(c.calls)
    with pytest.raises(TerminalError, match="again"):
        list(conn.read_state("thing"))
    assert len(c.calls) == calls + 3  # two pages and the repeated cursor, once


def test_a_next_url_naming_the_page_just_read_ends_in_an_error(
    tmp_path: Path, catalog: tuple[Catalog, str]
) -> None:
    c, url = catalog
    c.cursor_stuck_at = 10
    conn = make(tmp_path, url, read={"thing": PAGINATIONS["next_url"]})
    with pytest.raises(
        TerminalError, match=r"GET /next: next_url paging: .*the same next-page URL again"
    ):
        read_all(conn, "thing", None, 5)
    assert [call[2]["start"] for call in c.calls[1:]] == ["5", "10"]


def test_endless_empty_pages_end_in_an_error_at_the_limit(
    tmp_path: Path, catalog: tuple[Catalog, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    c, url = catalog
    c.cursor_endless = True
    monkeypatch.setattr(pages, "MAX_EMPTY_PAGES", 4)
    conn = make(tmp_path, url, read={"thing": PAGINATIONS["cursor"]}, page_size=10)
    with pytest.raises(TerminalError, match=r"GET /cursor: cursor paging: 4 empty pages in a row"):
        read_all(conn, "thing", None, 10)
    assert len(c.calls) == 3 + 4  # the 23 records in 3 pages, then 4 empty ones
    with pytest.raises(TerminalError, match="4 empty pages in a row"):
        list(conn.read_state("thing"))


def test_incremental_reads_changes_since_the_last_pass(
    tmp_path: Path, catalog: tuple[Catalog, str]
) -> None:
    c, url = catalog
    spec = {
        **PAGINATIONS["page"],
        "since_param": "updated_since",
        "since_field": "updated",
        "lookback": 60,
    }
    conn = make(tmp_path, url, read={"thing": spec})
    keys, cursor = read_all(conn, "thing", None, 5)
    assert len(keys) == 23
    assert Cursor.parse(cursor).hw == c.stamp(22)
    # Two changes and a new record; the restarted reader asks only for what changed since
    # the last change it saw, minus the lookback (which re-reads the minute before).
    c.touch("R0003", 30, name="changed")
    c.touch("R0010", 31, name="changed too")
    c.add(1, start=23)
    c.touch("R0023", 32)
    again = make(tmp_path, url, read={"thing": spec})
    keys, cursor = read_all(again, "thing", cursor, 5)
    assert sorted(keys) == ["R0003", "R0010", "R0021", "R0022", "R0023"]
    assert c.calls[-1][2]["updated_since"] == c.stamp(21)
    # Nothing new: only the lookback window's records again (ingest skips them).
    keys, cursor = read_all(again, "thing", cursor, 5)
    assert sorted(keys) == ["R0010", "R0023"]
    # A change stamped after the server's clock (a skewed source): the next pass starts
    # from the server's clock at the start of the pass, not from the future stamp.
    c.touch("R0001", 60 * 24 * 365 * 5)
    keys, cursor = read_all(again, "thing", cursor, 5)
    assert "R0001" in keys
    state = Cursor.parse(cursor)
    assert state.hw is not None
    assert state.hw < c.stamp(60 * 24 * 365 * 5)


@pytest.mark.parametrize("epoch", ["seconds", "milliseconds"])
def test_epoch_stamps_are_capped_at_the_servers_clock(
    tmp_path: Path, catalog: tuple[Catalog, str], epoch: str
) -> None:
    c, url = catalog
    scale = 1000 if epoch == "milliseconds" else 1

    def as_epoch(minutes: int) -> int:
        return int(dt.datetime.fromisoformat(c.stamp(minutes)).timestamp() * scale)

    for i, r in enumerate(c.records):
        r["updated"] = as_epoch(i)
    spec = {
        **PAGINATIONS["page"],
        "since_param": "updated_since",
        "since_field": "updated",
        "since_epoch": epoch,
    }
    conn = make(tmp_path, url, read={"thing": spec})
    keys, cursor = read_all(conn, "thing", None, 5)
    assert Cursor.parse(cursor).hw == str(as_epoch(22))
    # A record stamped five years ahead (a skewed source): the next pass starts from the
    # server's clock at the start of this one, in epoch form, not from the future stamp,
    # so changes stamped by a correct clock in between are still read.
    future = as_epoch(60 * 24 * 365 * 5)
    c.records[1]["updated"] = future
    keys, cursor = read_all(conn, "thing", cursor, 5)
    assert "R0001" in keys
    hw = Cursor.parse(cursor).hw
    assert hw is not None and hw.isdigit()
    assert int(hw) <= time.time() * scale < future
    c.records[2]["updated"] = int(time.time() * scale) + 1
    keys, cursor = read_all(conn, "thing", cursor, 5)
    assert "R0002" in keys


def test_numeric_stamps_without_since_epoch_are_not_capped(
    tmp_path: Path, catalog: tuple[Catalog, str]
) -> None:
    # A sequence number is no time: comparing it with the server's clock would move the
    # cursor to an arbitrary value.
    c, url = catalog
    for i, r in enumerate(c.records):
        r["updated"] = 10_000_000_000 + i
    spec = {**PAGINATIONS["page"], "since_param": "updated_since", "since_field": "updated"}
    conn = make(tmp_path, url, read={"thing": spec})
    _, cursor = read_all(conn, "thing", None, 5)
    assert Cursor.parse(cursor).hw == "10000000022"


def test_reads_honour_retry_after_and_give_up_after_the_retries(
    tmp_path: Path, catalog: tuple[Catalog, str]
) -> None:
    c, url = catalog
    conn = make(tmp_path, url, read={"thing": PAGINATIONS["none"]}, retries=3)
    c.fail_next, c.fail_status, c.retry_after = 2, 429, "0.3"
    page = conn.read("thing", None, 100)
    assert len(page.records) == 23
    times = [t for t, _, _ in c.calls]
    assert len(times) == 3
    # The server's own clock: each retry came after the Retry-After it asked for.
    assert times[1] - times[0] >= 0.29
    assert times[2] - times[1] >= 0.29
    c.fail_next, c.fail_status, c.retry_after = 10, 503, None
    with pytest.raises(TransientError) as failed:
        conn.read("thing", None, 100)
    assert failed.value.status == 503
    assert "GET /all -> 503" in failed.value.message
    c.fail_next = 0
    missing = make(tmp_path, url, read={"thing": {**PAGINATIONS["none"], "path": "/nope"}})
    calls = len(c.calls)
    with pytest.raises(TerminalError) as failed_terminal:
        missing.read("thing", None, 100)
    assert failed_terminal.value.status == 404
    assert len(c.calls) == calls  # a 404 is not tried again (and never reached the gate)


def test_client_side_rate_cap(tmp_path: Path, catalog: tuple[Catalog, str]) -> None:
    c, url = catalog
    conn = make(
        tmp_path,
        url,
        read={"thing": PAGINATIONS["none"]},
        rate_limit={"per_second": 20, "burst": 2},
    )
    for _ in range(12):
        conn.read("thing", None, 100)
    times = [t for t, _, _ in c.calls]
    # 12 calls at 20/s with a burst of 2: from the second call on (the first's arrival
    # includes opening the connection, which made the span look short on a loaded
    # machine), eleven calls with at most two slots in hand: nine waited for one each.
    assert times[-1] - times[1] >= 9 / 20 * 0.95


AUTHS: dict[str, dict[str, Any]] = {
    "api_key": {"kind": "api_key", "value": "k3y"},
    "api_key_query": {"kind": "api_key", "value": "k3y", "query_param": "api_key"},
    "bearer": {"kind": "bearer", "token": "t0ken"},
    "basic": {"kind": "basic", "username": "user", "password": "pw"},
    "oauth2": {
        "kind": "oauth2",
        "token_url": "/oauth/token",
        "client_id": "app",
        "client_secret": "s3cret",
    },
    "oauth2-password": {
        "kind": "oauth2",
        "token_url": "/oauth/token",
        "client_id": "app",
        "client_secret": "s3cret",
        "grant": "password",
        "username": "u",
        "password": "p",
    },
}


@pytest.mark.parametrize("scheme", sorted(AUTHS))
def test_authentication_schemes(tmp_path: Path, catalog: tuple[Catalog, str], scheme: str) -> None:
    c, url = catalog
    c.auth = scheme.split("-")[0]
    conn = make(tmp_path, url, auth=AUTHS[scheme], read={"thing": PAGINATIONS["none"]})
    assert len(conn.read("thing", None, 100).records) == 23
    wrong = {**AUTHS[scheme]}
    for secret in ("value", "token", "password", "client_secret"):
        if secret in wrong:
            wrong[secret] = "wrong"
    bad = make(tmp_path, url, auth=wrong, read={"thing": PAGINATIONS["none"]})
    with pytest.raises(TerminalError) as failed:
        bad.read("thing", None, 100)
    assert failed.value.status in (400, 401)


def test_a_token_endpoint_that_is_down_is_a_passing_failure(
    tmp_path: Path, catalog: tuple[Catalog, str]
) -> None:
    """Review: a 503 from the token endpoint was terminal: a read gave up, a delivery was
    dead-lettered at once. Now a read raises a transient error and is tried again."""
    c, url = catalog
    c.auth, c.token_down = "oauth2", 1
    conn = make(tmp_path, url, auth=AUTHS["oauth2"], read={"thing": PAGINATIONS["none"]})
    with pytest.raises(TransientError) as failed:
        conn.read("thing", None, 100)
    assert (failed.value.status, failed.value.retry_after) == (503, 1.0)
    assert len(conn.read("thing", None, 100).records) == 23  # the endpoint is back


def test_oauth2_token_reused_refreshed_before_expiry_and_after_a_401(
    tmp_path: Path, catalog: tuple[Catalog, str]
) -> None:
    c, url = catalog
    c.auth = "oauth2"
    settings = {**AUTHS["oauth2"], "refresh_margin": 0.2}
    conn = make(tmp_path, url, auth=settings, read={"thing": PAGINATIONS["none"]})
    for _ in range(3):
        conn.read("thing", None, 100)
    assert c.tokens_issued == 1
    c.tokens.clear()  # the API revoked every token: a 401, a new token, the call again
    assert len(conn.read("thing", None, 100).records) == 23
    assert c.tokens_issued == 2
    c.token_lifetime = 0.4  # short-lived tokens: fetched anew shortly before they expire
    c.tokens.clear()
    conn.read("thing", None, 100)
    assert c.tokens_issued == 3
    refused = len([call for call in c.calls if call[1] == "/all"])
    asyncio.run(asyncio.sleep(0.25))
    conn.read("thing", None, 100)
    assert c.tokens_issued == 4
    assert len([call for call in c.calls if call[1] == "/all"]) == refused + 1  # no 401 first


# --- writes, against the Shopify stand-in -------------------------------------------------

SHOP_AUTH = {
    "kind": "oauth2",
    "token_url": "/admin/oauth/access_token",
    "client_id": "mastersync-sandbox",
    "client_secret": "shpss_sandbox_secret",
    "client_auth": "body",
    "header": "X-Shopify-Access-Token",
    "prefix": "",
}
PRODUCTS = {
    "lookup": {
        "path": "/products.json",
        "params": {"handle": "{payload.product.handle}"},
        "records": "products",
    },
    "create": {"method": "POST", "path": "/products.json"},
    "update": {"method": "PUT", "path": "/products/{target_key}.json"},
    "deactivate": {"method": "DELETE", "path": "/products/{target_key}.json"},
    "response": {
        "key": "product.id",
        "version": "product.updated_at",
        "keys": {"inventory_item": "product.variants[0].inventory_item_id"},
    },
}


@pytest.fixture
def shop() -> Iterator[tuple[ShopState, str]]:
    state = ShopState()
    with LoopbackServer(ShopifyApi(state).app) as server:
        yield state, server.url + API


def request(
    payload: dict[str, Any],
    target_key: str | None = None,
    operation: Operation = Operation.UPSERT,
    version: int = 1,
) -> DeliveryRequest:
    return DeliveryRequest(
        "shop.products",
        "shop",
        "item",
        "itm_1",
        version,
        operation,
        f"itm_1:{version}",
        target_key,
        payload,
        "trace",
    )


def product(title: str = "Gloves", handle: str = "gl-100", price: str = "1.50") -> dict[str, Any]:
    return {
        "product": {"title": title, "handle": handle, "variants": [{"sku": "GL", "price": price}]}
    }


def test_create_update_deactivate_with_keys_from_the_responses(
    tmp_path: Path, shop: tuple[ShopState, str]
) -> None:
    state, url = shop
    conn = make(tmp_path, url, auth=SHOP_AUTH, write={"products": PRODUCTS})

    async def scenario() -> None:
        ack = await conn.send(request(product()))
        [created] = state.products.values()
        assert ack.target_key == str(created["id"])
        assert ack.target_version == created["updated_at"]
        assert ack.refs == {"inventory_item": str(created["variants"][0]["inventory_item_id"])}
        ack = await conn.send(request(product(price="1.75"), ack.target_key, version=2))
        assert created["variants"][0]["price"] == "1.75"
        # Deleted at the shop by hand: the next update finds it gone and creates it again.
        state.products.clear()
        again = await conn.send(request(product(price="1.80"), ack.target_key, version=3))
        assert again.target_key != ack.target_key
        assert len(state.products) == 1
        gone = await conn.send(request({}, again.target_key, Operation.DEACTIVATE, 4))
        assert gone.target_key == again.target_key
        assert state.products == {}
        # Deactivating what the consumer never had is a no-op, not an error.
        assert (await conn.send(request({}, None, Operation.DEACTIVATE, 5))).target_key is None
        await conn.close()

    asyncio.run(scenario())


def test_a_lost_ack_does_not_make_a_duplicate(tmp_path: Path, shop: tuple[ShopState, str]) -> None:
    state, url = shop
    conn = make(tmp_path, url, auth=SHOP_AUTH, write={"products": PRODUCTS}, timeout=0.5)

    async def scenario() -> None:
        state.faults.stall_next, state.faults.stall_seconds = 1, 1.5
        with pytest.raises(TransientFailure) as lost:
            await conn.send(request(product()))
        assert "Timeout" in lost.value.message
        assert len(state.products) == 1  # created, but the answer never arrived
        ack = await conn.send(request(product()))  # the engine's retry: found by handle
        assert len(state.products) == 1
        assert ack.target_key == str(next(iter(state.products)))
        await conn.close()

    asyncio.run(scenario())


def test_write_failures_are_classified(tmp_path: Path, shop: tuple[ShopState, str]) -> None:
    state, url = shop
    conn = make(tmp_path, url, auth=SHOP_AUTH, write={"products": PRODUCTS})

    async def scenario() -> None:
        with pytest.raises(TerminalFailure) as rejected:
            await conn.send(request(product(title="")))
        assert rejected.value.status == 422
        assert "can't be blank" in (rejected.value.response or "")
        state.faults.fail_next, state.faults.fail_status = 1, 503
        with pytest.raises(TransientFailure) as unavailable:
            await conn.send(request(product()))
        assert unavailable.value.status == 503
        state.faults.bucket, state.faults.leak_per_second = 1, 0.5
        with pytest.raises(TransientFailure) as limited:  # the look-up takes the only slot
            await conn.send(request(product()))
        assert limited.value.status == 429
        assert limited.value.retry_after is not None
        assert limited.value.retry_after > 0
        with pytest.raises(TerminalFailure) as template:
            await conn.send(request({"product": {"title": "x"}}))
        assert "{payload.product.handle}" in template.value.message
        await conn.close()

    asyncio.run(scenario())


def test_token_revoked_between_deliveries(tmp_path: Path, shop: tuple[ShopState, str]) -> None:
    state, url = shop
    conn = make(tmp_path, url, auth=SHOP_AUTH, write={"products": PRODUCTS})

    async def scenario() -> None:
        await conn.send(request(product()))
        state.tokens.clear()
        await conn.send(request(product(handle="gl-200")))
        assert len(state.products) == 2
        await conn.close()

    asyncio.run(scenario())
    assert sum(1 for _, p in state.requests if p.endswith("access_token")) == 2


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"read": {"x": {"path": "/x", "since_param": "s"}}}, "go together"),
        ({"read": {"x": {"path": "/x", "pagination": {"kind": "cursor"}}}}, "needs 'next'"),
        ({"write": {"s": {"create": {"path": "/x"}, "update": {"path": "/x"}}}}, "response.key"),
        ({"write": {"s": {"create": {"path": "/x"}}}}, "both 'create' and 'update'"),
        (
            {
                "auth": {
                    "kind": "oauth2",
                    "token_url": "/t",
                    "client_id": "a",
                    "client_secret": "b",
                    "grant": "password",
                }
            },
            "username",
        ),
    ],
)
def test_settings_are_checked(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as failed:
        RestSettings.model_validate({"type": "rest", "base_url": "http://x", **settings})
    assert message in str(failed.value)


@pytest.mark.parametrize(
    ("stamp", "seconds", "moved"),
    [
        ("1700000000", 60, "1699999940"),  # integer epochs stay integers
        ("1700000000", 0.5, "1699999999"),  # the lookback rounds up: never less re-read
        ("1700000000.25", 60, "1699999940.25"),
        ("2026-01-01T00:01:00Z", 60, "2026-01-01T00:00:00+00:00"),
        ("opaque-token", 60, "opaque-token"),
    ],
)
def test_the_lookback_moves_a_cursor_back_in_its_own_spelling(
    stamp: str, seconds: float, moved: str
) -> None:
    assert minus(stamp, seconds) == moved


@given(
    st.lists(
        st.sampled_from(
            ["5", "12", "nan", "inf", "-inf", "1e400", "abc", "2026-01-01T00:00:00Z", "2026-01-02"]
        ),
        min_size=1,
        max_size=6,
    )
)
def test_the_later_of_change_stamps_does_not_depend_on_their_order(stamps: list[str]) -> None:
    """A cursor keeps the latest stamp seen; "nan" (which float() reads) compared false
    both ways, so which stamp won depended on arrival order and a cursor could go back."""
    forward = backward = None
    for s in stamps:
        forward = later(forward, s)
    for s in reversed(stamps):
        backward = later(backward, s)
    assert stamp_order(forward or "") == stamp_order(backward or "")


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("120", 120.0),
        ("0.5", 0.5),
        ("-5", 0.0),
        ("inf", MAX_RETRY_AFTER),  # would have paused the client for ever
        ("1e12", MAX_RETRY_AFTER),
        ("nan", None),
        ("soon", None),
        ("Fri, 31 Dec 9999 23:59:59 GMT", MAX_RETRY_AFTER),
        ("Sun, 06 Nov 1994 08:49:37 GMT", 0.0),
        ("Sun Nov  6 08:49:37 1994", 0.0),  # asctime: HTTP allows it, and it has no zone
        ("Wed, 21 Oct 2015 07:28:00 -0000", 0.0),
    ],
)
def test_retry_after_reads_seconds_and_dates_within_bounds(
    header: str, seconds: float | None
) -> None:
    response = httpx.Response(429, headers={"Retry-After": header})
    assert retry_after(response) == seconds


def test_retry_after_as_a_date_without_a_zone_is_utc() -> None:
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=90)
    asctime = soon.strftime("%a %b %d %H:%M:%S %Y")
    found = retry_after(httpx.Response(429, headers={"Retry-After": asctime}))
    assert found is not None and 80 <= found <= 90
    stamp = server_time(httpx.Response(200, headers={"Date": asctime}))
    assert stamp is not None and stamp.tzinfo is not None


def test_a_redirect_is_not_a_delivery(tmp_path: Path, shop: tuple[ShopState, str]) -> None:
    state, url = shop
    conn = make(tmp_path, url, auth=SHOP_AUTH, write={"products": PRODUCTS})

    async def scenario() -> None:
        # Shopify answers 301 when a shop moved to another domain; not following it, the
        # write was not applied and must not count as delivered.
        state.faults.fail_next, state.faults.fail_status = 1, 301
        with pytest.raises(TerminalFailure) as moved:
            await conn.send(request(product()))
        assert moved.value.status == 301
        assert "redirected to https://" in moved.value.message
        assert state.products == {}
        await conn.close()

    asyncio.run(scenario())


# --- deliveries under a 429's pause and a client-side cap; natural keys ---------------------
Handler = Callable[[httpx.Request], httpx.Response]


class MockedRest(RestConnector):
    """The REST connector answered in process by ``handler``."""

    def __init__(self, tmp_path: Path, handler: Handler, **settings: Any) -> None:
        model = RestSettings.model_validate(
            {"type": "rest", "base_url": "http://api.test", **settings}
        )
        super().__init__(model, ConnectorContext("shop", tmp_path))
        self.handler = handler
        OPENED.append(self)

    def _session(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        if self._async is None or self._loop is not loop:
            transport = httpx.MockTransport(self.handler)
            self._async = httpx.AsyncClient(base_url="http://api.test", transport=transport)
            self._loop = loop
        return self._async


ITEMS = {"upsert": {"method": "PUT", "path": "/items/{payload.handle}"}}


def delivery(
    handle: str,
    operation: Operation = Operation.UPSERT,
    target_key: str | None = None,
    subscription: str = "shop.items",
) -> DeliveryRequest:
    return DeliveryRequest(
        subscription,
        "shop",
        "item",
        f"itm_{handle}",
        1,
        operation,
        f"itm_{handle}:1",
        target_key,
        {"handle": handle, "sku": handle},
        "trace",
    )


def test_a_429_pause_fails_other_deliveries_at_once_with_its_retry_after(
    tmp_path: Path,
) -> None:
    """Review: after a 429 every other delivery slept out the Retry-After inside the
    delivery engine's timeout, failed as "no answer" with no Retry-After, and was
    dead-lettered without a request. Now it fails at once, told when to come back."""
    paths: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        paths.append(request.url.path)
        if len(paths) == 1:
            return httpx.Response(429, headers={"Retry-After": "1"}, json={"error": "slow"})
        return httpx.Response(200, json={"id": 1})

    conn = MockedRest(tmp_path, handler, write={"items": ITEMS})

    async def scenario() -> None:
        with pytest.raises(TransientFailure) as limited:
            await conn.send(delivery("A1"))
        assert limited.value.retry_after == 1.0
        assert not isinstance(limited.value, NotSent)  # sent: the API answered 429
        # Within the delivery engine's timeout (it would raise TimeoutError had it waited).
        with pytest.raises(NotSent) as paused:
            async with asyncio.timeout(0.5):
                await conn.send(delivery("B1"))
        assert paths == ["/items/A1"]
        assert paused.value.retry_after is not None and 0.8 < paused.value.retry_after <= 1.0
        await asyncio.sleep(paused.value.retry_after)
        async with asyncio.timeout(0.5):
            await conn.send(delivery("B1"))
        assert paths == ["/items/A1", "/items/B1"]

    asyncio.run(scenario())


def test_a_rate_capped_delivery_cancelled_in_its_wait_gives_its_slot_back(
    tmp_path: Path,
) -> None:
    """A wait cut short by the delivery's timeout used no slot: kept, every timed-out
    attempt left the bucket a token short and pushed all later requests further back."""
    conn = MockedRest(
        tmp_path,
        lambda _: httpx.Response(200, json={}),
        write={"items": ITEMS},
        rate_limit={"per_second": 2},
        delivery_wait=1,
    )

    async def scenario() -> None:
        await conn.send(delivery("A1"))  # the one token: the next slot is 0.5 s away
        for _ in range(5):
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.02):
                    await conn.send(delivery("B1"))
        wait = conn.limiter.reserve()
        assert wait <= 0.5  # not 2.5 s more for the five slots never used

    asyncio.run(scenario())


def test_a_rate_capped_backlog_is_delivered_in_turn_not_dead_lettered(
    tmp_path: Path, sqlite_url: str
) -> None:
    """Review: with `rate_limit`, a backlog's deliveries waited for their slot inside the
    delivery timeout, timed out, and kept the slots they never used, so each round queued
    them further back until they were dead-lettered. Now a far-off turn fails the attempt
    at once with its Retry-After and the slot is kept for the retry."""
    from mastersync.bootstrap import open_store
    from mastersync.ports.store import ExceptionFilter
    from tests.pipeline.test_distribution import Estate

    sent: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(time.monotonic())
        return httpx.Response(200, json={"id": request.url.path.rsplit("/", 1)[1]})

    store = open_store(sqlite_url)
    store.upgrade()
    try:
        # 16 deliveries at once at 10 a second: the last would wait 1.5 s, the timeout is 0.5.
        estate = Estate(store, tmp_path, timeout="500ms")
        estate.shop = MockedRest(
            tmp_path,
            handler,
            write={"items": ITEMS},
            rate_limit={"per_second": 10},
            delivery_wait=0.2,
        )
        estate.send(*({"sku": f"A{i}", "v": 1, "name": "a"} for i in range(20)))
        totals = estate.deliver(timeout=30)
        with store.unit_of_work(write=False) as uow:
            dead = uow.exceptions(ExceptionFilter(kind="dead_letter"))
    finally:
        store.close()
    assert not dead, dead[0].message
    assert totals.delivered == 20 and len(sent) == 20  # each sent once
    assert sent[-1] - sent[0] >= 19 / 10 * 0.9  # and the cap held


def test_an_upsert_by_natural_key_is_deactivated_by_it(tmp_path: Path) -> None:
    """Review: an upsert whose response names no key acknowledged no target key, and the
    deactivation was then taken for "the consumer never had it" and never sent, though
    its request (DELETE /items/{payload.sku}) needs no target key."""
    calls: list[tuple[str, str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append((request.method, request.url.path))
        return httpx.Response(200, json={"ok": True})

    natural = {**ITEMS, "deactivate": {"method": "DELETE", "path": "/items/{payload.sku}"}}
    by_key = {**ITEMS, "deactivate": {"method": "PUT", "path": "/items/x", "body": "$target_key"}}
    conn = MockedRest(tmp_path, handler, write={"natural": natural, "by_key": by_key})

    async def scenario() -> None:
        ack = await conn.send(delivery("GL-1", subscription="shop.natural"))
        assert ack.target_key is None
        await conn.send(delivery("GL-1", Operation.DEACTIVATE, None, "shop.natural"))
        assert calls == [("PUT", "/items/GL-1"), ("DELETE", "/items/GL-1")]
        # A deactivation that needs the consumer's key, without one, has nothing to address.
        gone = await conn.send(delivery("GL-1", Operation.DEACTIVATE, None, "shop.by_key"))
        assert gone.target_key is None and len(calls) == 2

    asyncio.run(scenario())


def test_a_lookup_answering_404_is_not_found_and_the_record_is_created(tmp_path: Path) -> None:
    """Review: a lookup by key on an API that answers 404 for a key it does not have was a
    terminal failure, so every new record was dead-lettered instead of created."""
    calls: list[tuple[str, str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append((request.method, request.url.path))
        if request.method == "GET":
            return httpx.Response(404, json={"error": "no such item"})
        return httpx.Response(201, json={"id": "P-1"})

    write = {
        "lookup": {"path": "/items/by-sku/{payload.sku}"},
        "create": {"method": "POST", "path": "/items"},
        "update": {"method": "PUT", "path": "/items/{target_key}"},
        "response": {"key": "id"},
    }
    conn = MockedRest(tmp_path, handler, write={"items": write})
    ack = asyncio.run(conn.send(delivery("GL-1")))
    assert ack.target_key == "P-1"
    assert calls == [("GET", "/items/by-sku/GL-1"), ("POST", "/items")]


# --- nulls: a field cleared at the hub ------------------------------------------------------
def recording(sent: list[tuple[str, str, Any]], found: bool = False) -> Handler:
    """An API that records each call's method, path and JSON body; a lookup finds the
    record when ``found``, a create answers its key."""

    def handler(request: httpx.Request) -> httpx.Response:
        body = orjson.loads(request.content) if request.content else "(no body)"
        sent.append((request.method, request.url.path, body))
        if request.method == "GET":
            return httpx.Response(200, json=[{"id": "P-1"}]) if found else httpx.Response(404)
        return httpx.Response(201 if request.method == "POST" else 200, json={"id": "P-1"})

    return handler


def cleared(target_key: str | None) -> DeliveryRequest:
    """The name was cleared at the hub since the consumer was sent it."""
    return dataclasses.replace(
        delivery("GL-1", target_key=target_key),
        payload={"handle": "GL-1", "sku": "GL-1", "name": None},
    )


CREATE_UPDATE = {
    "lookup": {"path": "/items/by-sku/{payload.sku}"},
    "create": {"method": "POST", "path": "/items"},
    "update": {"method": "PUT", "path": "/items/{target_key}"},
    "response": {"key": "id"},
}
# A body built around the fields (in an object and in a list).
AROUND = {"item": {"name": "$payload.name", "sku": "$payload.sku"}, "tags": ["$payload.name"]}


@pytest.mark.parametrize("body", ["$payload", AROUND], ids=["payload", "template"])
def test_a_null_goes_out_in_an_update_and_is_left_out_of_a_create(
    tmp_path: Path, body: Any
) -> None:
    """The update's body carries null for the cleared field; a create's leaves it out, so
    the API's default applies (and a template naming it is no failure)."""
    sent: list[tuple[str, str, Any]] = []
    write = {
        **CREATE_UPDATE,
        "create": {**CREATE_UPDATE["create"], "body": body},
        "update": {**CREATE_UPDATE["update"], "body": body},
    }
    conn = MockedRest(tmp_path, recording(sent), write={"items": write})
    assert asyncio.run(conn.send(cleared(None))).target_key == "P-1"
    asyncio.run(conn.send(cleared("P-1")))
    [(get, _, _), (post, _, created), (put, path, updated)] = sent
    assert (get, post, put, path) == ("GET", "POST", "PUT", "/items/P-1")
    if body == "$payload":
        assert created == {"handle": "GL-1", "sku": "GL-1"}
        assert updated == {"handle": "GL-1", "sku": "GL-1", "name": None}
    else:
        assert created == {"item": {"sku": "GL-1"}, "tags": []}
        assert updated == {"item": {"name": None, "sku": "GL-1"}, "tags": [None]}


def test_a_create_answered_409_updates_with_the_null(tmp_path: Path) -> None:
    sent: list[tuple[str, str, Any]] = []
    record = recording(sent)
    lookups = iter([httpx.Response(404), httpx.Response(200, json=[{"id": "P-1"}])])

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            sent.append(("GET", request.url.path, None))
            return next(lookups)
        if request.method == "POST":
            sent.append(("POST", request.url.path, orjson.loads(request.content)))
            return httpx.Response(409, json={"error": "exists"})
        return record(request)

    conn = MockedRest(tmp_path, handler, write={"items": CREATE_UPDATE})
    assert asyncio.run(conn.send(cleared(None))).target_key == "P-1"
    assert [(m, b) for m, _, b in sent if m != "GET"] == [
        ("POST", {"handle": "GL-1", "sku": "GL-1"}),
        ("PUT", {"handle": "GL-1", "sku": "GL-1", "name": None}),
    ]


def test_a_single_field_body_is_json_null_in_an_update(tmp_path: Path) -> None:
    """Not an empty request: a body that is the field's value, cleared, is `null`."""
    sent: list[tuple[str, str, Any]] = []
    write = {
        **CREATE_UPDATE,
        "update": {"method": "PUT", "path": "/items/{target_key}/name", "body": "$payload.name"},
    }
    conn = MockedRest(tmp_path, recording(sent), write={"items": write})
    asyncio.run(conn.send(cleared("P-1")))
    assert sent == [("PUT", "/items/P-1/name", None)]


@pytest.mark.parametrize(
    ("target_key", "lookup", "found", "null_sent"),
    [
        (None, False, False, False),
        ("GL-1", False, False, True),
        (None, True, True, True),
        (None, True, False, False),
    ],
    ids=["new", "held", "found", "not-found"],
)
def test_an_upsert_sends_a_null_only_for_a_record_the_consumer_has(
    tmp_path: Path, target_key: str | None, lookup: bool, found: bool, null_sent: bool
) -> None:
    """One call for both: the null goes out when the hub holds the consumer's key, or the
    lookup finds the record; else the upsert may create, and leaves it out."""
    sent: list[tuple[str, str, Any]] = []
    write: dict[str, Any] = dict(ITEMS)
    if lookup:
        write["lookup"] = {"path": "/items/by-sku/{payload.sku}"}
    conn = MockedRest(tmp_path, recording(sent, found), write={"items": write})
    asyncio.run(conn.send(cleared(target_key)))
    [(method, path, body)] = [s for s in sent if s[0] == "PUT"]
    assert (method, path) == ("PUT", "/items/GL-1")
    assert body == (
        {"handle": "GL-1", "sku": "GL-1", "name": None}
        if null_sent
        else {"handle": "GL-1", "sku": "GL-1"}
    )


def test_an_upsert_by_natural_key_sends_the_null_when_the_hub_says_the_consumer_has_it(
    tmp_path: Path,
) -> None:
    """Review: an upsert whose response names no key, with no lookup, never got a key, so
    its nulls were always left out and a clear never reached the consumer. The hub says
    the consumer acknowledged the record before (it sends nulls only then)."""
    sent: list[tuple[str, str, Any]] = []
    conn = MockedRest(tmp_path, recording(sent, False), write={"items": dict(ITEMS)})
    asyncio.run(conn.send(dataclasses.replace(cleared(None), held=True)))
    [(_, _, body)] = [s for s in sent if s[0] == "PUT"]
    assert body == {"handle": "GL-1", "sku": "GL-1", "name": None}


def test_a_create_leaves_out_a_cleared_objects_null_fields(tmp_path: Path) -> None:
    """The hub sends an object cleared altogether as its fields, each null; an update that
    finds the record gone (404) creates it, without them (an object of nulls only goes)."""
    sent: list[tuple[str, str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else None
        sent.append((request.method, request.url.path, body))
        if request.method == "PUT":
            return httpx.Response(404)
        return httpx.Response(201, json={"id": "P-9"})

    conn = MockedRest(tmp_path, handler, write={"items": CREATE_UPDATE})
    request = dataclasses.replace(
        delivery("GL-1", target_key="P-1"),
        payload={"sku": "GL-1", "dims": {"w": None, "h": None}, "size": {"w": 2, "h": None}},
    )
    asyncio.run(conn.send(request))
    assert sent[0] == (
        "PUT",
        "/items/P-1",
        {"sku": "GL-1", "dims": {"w": None, "h": None}, "size": {"w": 2, "h": None}},
    )
    assert sent[-1] == ("POST", "/items", {"sku": "GL-1", "size": {"w": 2}})


def test_a_null_the_api_refuses_fails_for_good_naming_the_field(tmp_path: Path) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(422, json={"errors": {"name": ["can't be null"]}})

    conn = MockedRest(tmp_path, handler, write={"items": CREATE_UPDATE})
    with pytest.raises(TerminalFailure) as refused:
        asyncio.run(conn.send(cleared("P-1")))
    assert refused.value.status == 422
    assert "name" in refused.value.message and "can't be null" in refused.value.message
