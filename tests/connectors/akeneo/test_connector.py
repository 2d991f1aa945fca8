"""The connector's decisions without a PIM: when it lists, what it subscribes first, what it
writes, and what the receiver makes of events (a stand-in client answers for Akeneo;
tests/e2e/real/test_akeneo.py runs the same against akeneo-mock-server)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from pydantic import ValidationError

from mastersync.connectors.akeneo.client import AkeneoClient
from mastersync.connectors.akeneo.connector import AkeneoConnector
from mastersync.connectors.akeneo.receiver import DELETED_RULE, AkeneoReceiver
from mastersync.connectors.akeneo.spec import AkeneoEvents, AkeneoRead, AkeneoSettings
from mastersync.connectors.akeneo.values import Attribute
from mastersync.connectors.registry import ConnectorContext
from mastersync.connectors.webhook.receiver import BadPush
from mastersync.connectors.webhook.signatures import Verified
from mastersync.domain.subscriptions import Operation
from mastersync.ports.connector import ReadFailure, SourceRecord, TerminalError, TransientError
from mastersync.ports.outbound import DeliveryRequest, TerminalFailure, TransientFailure
from tests.connectors.akeneo.support import body, document, signature, time_of

SECRET = "events-secret-0001"


def product(identifier: str, description: str = "x") -> dict[str, Any]:
    return {
        "identifier": identifier,
        "values": {"description": [{"locale": "en_US", "scope": None, "data": description}]},
    }


def matches(product: dict[str, Any], search: dict[str, Any]) -> bool:
    """Akeneo's search on product properties: every rule holds (a list property, such as
    categories, is IN when one of its entries is)."""
    for name, rules in search.items():
        for rule in rules:
            op, expected = rule["operator"], rule["value"]
            value = product.get(name)
            if op in ("IN", "NOT IN"):
                found = (
                    any(v in expected for v in value)
                    if isinstance(value, list)
                    else value in expected
                )
                if found != (op == "IN"):
                    return False
            elif op in ("=", "!="):
                if (value == expected) != (op == "="):
                    return False
            else:
                raise NotImplementedError(f"the stand-in has no operator {op}")
    return True


class StandIn:
    """Answers for Akeneo, and notes what was asked of it."""

    def __init__(self, pages: list[list[dict[str, Any]]]) -> None:
        self.pages = pages
        self.calls: list[str] = []
        self.products: dict[str, dict[str, Any]] = {}
        self.patched: list[tuple[str, dict[str, Any]]] = []
        self.refuse_subscription = False
        self.fail: Exception | None = None

    def page(
        self, read: AkeneoRead, limit: int, next_url: str | None = None
    ) -> tuple[list[dict[str, Any]], str | None]:
        index = int(next_url or 0)
        self.calls.append(f"page {index}")
        more = str(index + 1) if index + 1 < len(self.pages) else None
        return self.pages[index], more

    def subscribe(self, events: AkeneoEvents) -> None:
        self.calls.append("subscribe")
        if self.refuse_subscription:
            raise TransientError("the Event Platform is down")

    def listed(
        self, read: AkeneoRead, *, uuid: str | None, identifier: str | None
    ) -> dict[str, Any] | None:
        """As GET /products?search=...&attributes=... narrowed to one product: the domain's
        search must hold, and only its attributes' values are given."""
        self.calls.append(f"listed {uuid or identifier}")
        if self.fail is not None:
            raise self.fail
        found = self.products.get(str(uuid)) or self.products.get(str(identifier))
        if found is None or not matches(found, read.search):
            return None
        if not read.attributes:
            return found
        values = {k: v for k, v in found.get("values", {}).items() if k in read.attributes}
        return {**found, "values": values}

    def product(self, *, uuid: str | None, identifier: str | None) -> dict[str, Any] | None:
        self.calls.append(f"product {uuid or identifier}")
        if self.fail is not None:
            raise self.fail
        return self.products.get(str(uuid)) or self.products.get(str(identifier))

    def attribute(self, code: str) -> Attribute:
        return Attribute(code, localizable=True)

    def upsert(self, identifier: str, body: dict[str, Any]) -> int:
        if self.fail is not None:
            raise self.fail
        self.patched.append((identifier, body))
        return 204

    def close(self) -> None:
        self.calls.append("close")


def settings(events: bool = True, **extra: Any) -> AkeneoSettings:
    raw: dict[str, Any] = {
        "type": "akeneo",
        "url": "http://pim.invalid",
        "client_id": "c",
        "client_secret": "s",
        "username": "u",
        "password": "p",
        "read": {"item": {}},
        "write": {"products": {"family": "tools"}},
        **extra,
    }
    if events:
        raw["events"] = {"url": "http://hub.invalid/hooks/pim", "secret": SECRET}
    return AkeneoSettings.model_validate(raw)


def connector(
    stand_in: StandIn, tmp_path: Path, events: bool = True, **extra: Any
) -> AkeneoConnector:
    made = AkeneoConnector(settings(events, **extra), ConnectorContext("pim", tmp_path))
    made.client.close()
    made.client = stand_in  # type: ignore[assignment]
    return made


def test_with_events_it_subscribes_then_lists_once_per_run(tmp_path: Path) -> None:
    pim = StandIn([[product("A"), product("B")], [product("C")]])
    c = connector(pim, tmp_path)
    first = c.read("item", None, 100)
    assert pim.calls == ["subscribe", "page 0"]  # subscribed before anything was read
    assert first.more
    assert [r.payload["identifier"] for r in first.records if isinstance(r, SourceRecord)] == [
        "A",
        "B",
    ]
    assert first.records[0].payload["values"] == {"description": "x"}  # type: ignore[union-attr]
    last = c.read("item", first.cursor, 100)
    assert not last.more
    assert '"listed"' in str(last.cursor)
    # Events bring the changes now: no more listing in this run.
    idle = c.read("item", last.cursor, 100)
    assert (idle.records, idle.cursor, idle.more) == ([], last.cursor, False)
    assert pim.calls == ["subscribe", "page 0", "page 1"]
    # The next run lists again at its start (events sent while it was down are lost).
    pim.calls.clear()
    again = connector(pim, tmp_path).read("item", last.cursor, 100)
    assert pim.calls == ["subscribe", "page 0"]
    assert again.more


def test_without_events_every_poll_lists(tmp_path: Path) -> None:
    pim = StandIn([[product("A")]])
    c = connector(pim, tmp_path, events=False)
    done = c.read("item", None, 100)
    c.read("item", done.cursor, 100)
    assert pim.calls == ["page 0", "page 0"]


def test_a_pass_left_by_an_earlier_run_starts_from_the_beginning(tmp_path: Path) -> None:
    pim = StandIn([[product("A")], [product("B")]])
    page = connector(pim, tmp_path).read("item", None, 100)
    assert page.more
    pim.calls.clear()
    connector(pim, tmp_path).read("item", page.cursor, 100)
    assert pim.calls == ["subscribe", "page 0"]


def test_a_refused_subscription_does_not_stop_the_listing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    pim = StandIn([[product("A")]])
    pim.refuse_subscription = True
    page = connector(pim, tmp_path).read("item", None, 100)
    assert len(page.records) == 1
    assert "events not registered" in caplog.text


def test_read_state_lists_every_product_by_identifier(tmp_path: Path) -> None:
    pim = StandIn([[product("A")], [product("B", "y")]])
    state = dict(connector(pim, tmp_path).read_state("item"))
    assert state["B"]["values"] == {"description": "y"}
    assert set(state) == {"A", "B"}
    assert "subscribe" not in pim.calls
    with pytest.raises(TerminalError, match="no 'read' settings for price"):
        list(connector(pim, tmp_path).read_state("price"))


def request(
    operation: Operation = Operation.UPSERT,
    payload: dict[str, Any] | None = None,
    target: str | None = None,
) -> DeliveryRequest:
    return DeliveryRequest(
        "pim.products",
        "pim",
        "item",
        "itm_1",
        3,
        operation,
        "itm_1:3",
        target,
        payload if payload is not None else {"identifier": "A", "values": {"name": "Anvil"}},
        "trace",
    )


def test_an_upsert_is_a_patch_in_the_standard_format_acknowledged_by_identifier(
    tmp_path: Path,
) -> None:
    pim = StandIn([])
    ack = asyncio.run(connector(pim, tmp_path).send(request()))
    assert ack.target_key == "A"
    assert pim.patched == [
        (
            "A",
            {
                "identifier": "A",
                "family": "tools",
                # Enabled: the hub's first write of the product.
                "enabled": True,
                "values": {"name": [{"locale": "en_US", "scope": None, "data": "Anvil"}]},
            },
        )
    ]


def test_a_first_write_with_a_null_asks_the_pim_once_whether_it_creates(
    tmp_path: Path,
) -> None:
    """One look-up decides both the flag and the nulls; with the key held, none: a null goes
    out to the product the PIM has (a list emptied), and is left out of one it creates."""
    cleared = {"identifier": "A", "categories": None, "parent": None, "values": {"name": None}}
    pim = StandIn([])
    asyncio.run(connector(pim, tmp_path).send(request(payload=cleared)))
    assert pim.calls == ["product A"]
    assert pim.patched == [
        ("A", {"identifier": "A", "family": "tools", "values": {}, "enabled": True})
    ]
    pim = StandIn([])
    pim.products["A"] = product("A")
    asyncio.run(connector(pim, tmp_path).send(request(payload=cleared, target="A")))
    assert pim.calls == []
    assert pim.patched == [
        (
            "A",
            {
                "identifier": "A",
                "categories": [],
                "parent": None,
                "family": "tools",
                "values": {"name": [{"locale": "en_US", "scope": None, "data": None}]},
            },
        )
    ]


def test_a_renamed_sku_on_a_pim_without_product_uuids_is_refused_not_duplicated(
    tmp_path: Path,
) -> None:
    """Akeneo before 7 gives products no uuid, the only way to rename one over the API that
    tests/connectors/akeneo/test_live.py shows; the product it holds is left as it is."""
    pim = StandIn([])
    pim.products["OLD"] = product("OLD")  # no "uuid"
    with pytest.raises(TerminalFailure, match=r"product 'OLD': .* changed to 'A' .* no uuid"):
        asyncio.run(connector(pim, tmp_path).send(request(target="OLD")))
    assert pim.patched == []


def test_write_failures_are_terminal_or_transient(tmp_path: Path) -> None:
    pim = StandIn([])
    with pytest.raises(TerminalFailure, match="identifier"):
        asyncio.run(connector(pim, tmp_path).send(request(payload={"values": {}})))
    pim.fail = TransientError("PATCH -> 503", status=503)
    with pytest.raises(TransientFailure):
        asyncio.run(connector(pim, tmp_path).send(request()))
    pim.fail = TerminalError("PATCH -> 422: unknown family", status=422)
    with pytest.raises(TerminalFailure, match="422"):
        asyncio.run(connector(pim, tmp_path).send(request()))
    unknown = request()
    unknown.subscription = "pim.prices"
    with pytest.raises(TerminalFailure, match="no 'write' settings"):
        asyncio.run(connector(StandIn([]), tmp_path).send(unknown))


def test_deactivation_disables_a_product_that_is_there_and_never_creates_one(
    tmp_path: Path,
) -> None:
    pim = StandIn([])
    pim.products["A"] = product("A")
    c = connector(pim, tmp_path)
    assert asyncio.run(c.send(request(Operation.DEACTIVATE, target="A"))).target_key == "A"
    assert pim.patched == [("A", {"identifier": "A", "enabled": False})]
    pim.patched.clear()
    asyncio.run(c.send(request(Operation.DEACTIVATE, target="GONE")))
    asyncio.run(c.send(request(Operation.DEACTIVATE, target=None)))
    assert pim.patched == []


def receiver(pim: StandIn, tmp_path: Path, **extra: Any) -> AkeneoReceiver:
    c = connector(pim, tmp_path, **extra)
    made = c.push_receiver()
    made.connector.client.close()
    made.connector.client = pim  # type: ignore[assignment]
    pim.calls.clear()  # the connector's own client, closed for one without keep-alive
    return made


def verified(name: str) -> Verified:
    return Verified(document(name)["id"], time_of(name))


def test_an_updated_event_becomes_the_product_read_from_the_pim(tmp_path: Path) -> None:
    pim = StandIn([])
    pim.products["0b7f0a52-5c3e-4d0e-9d7e-2f1f6a0c9a11"] = document("product.json")
    r = receiver(pim, tmp_path)
    push = r.parse({}, body("event_updated.json"), verified("event_updated.json"), None)
    assert push.domain == "item"
    assert push.message_id == "0190d6c4-3b1e-7a55-9e0c-6c2b9f1d0a01"
    [record] = push.records
    assert isinstance(record, SourceRecord)
    assert record.payload["identifier"] == "HX-220"
    assert record.payload["values"]["name"] == "Hex key set, 9 pieces"
    assert record.locator == "akeneo event 0190d6c4-3b1e-7a55-9e0c-6c2b9f1d0a01: product HX-220"
    # Read by uuid: an identifier can change, the uuid cannot.
    assert pim.calls[-1] == "listed 0b7f0a52-5c3e-4d0e-9d7e-2f1f6a0c9a11"


SCOPED = {"item": {"search": {"family": [{"operator": "IN", "value": ["mro"]}]}}}


def test_an_event_for_a_product_outside_the_domains_search_is_not_taken(tmp_path: Path) -> None:
    pim = StandIn([])
    pim.products["0b7f0a52-5c3e-4d0e-9d7e-2f1f6a0c9a11"] = document("product.json")  # hand_tools
    r = receiver(pim, tmp_path, read=SCOPED)
    push = r.parse({}, body("event_updated.json"), verified("event_updated.json"), None)
    # Acknowledged, nothing taken: the listing of the domain does not give it either.
    assert (push.domain, push.records) == ("item", [])
    assert pim.calls == ["listed 0b7f0a52-5c3e-4d0e-9d7e-2f1f6a0c9a11"]


def test_an_event_gives_the_record_the_listing_gives(tmp_path: Path) -> None:
    product = {**document("product.json"), "family": "mro"}
    pim = StandIn([])
    pim.products["0b7f0a52-5c3e-4d0e-9d7e-2f1f6a0c9a11"] = product
    read = {"item": {**SCOPED["item"], "attributes": ["name"]}}
    [record] = (
        receiver(pim, tmp_path, read=read)
        .parse({}, body("event_updated.json"), verified("event_updated.json"), None)
        .records
    )
    assert isinstance(record, SourceRecord)
    assert record.payload["values"] == {"name": "Hex key set, 9 pieces"}
    assert record.payload["family"] == "mro"


def test_the_event_read_is_the_domains_listing_narrowed_to_the_product() -> None:
    uuid = "0b7f0a52-5c3e-4d0e-9d7e-2f1f6a0c9a11"
    asked: list[httpx.QueryParams] = []

    def answer(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.params)
        assert request.url.path == "/api/rest/v1/products"
        # A PIM that ignored the uuid filter answers with another product: not taken.
        other = {**document("product.json"), "uuid": "another", "identifier": "B"}
        rows = [document("product.json") if len(asked) == 1 else other]
        return httpx.Response(200, json={"_links": {}, "_embedded": {"items": rows}})

    spec = AkeneoRead.model_validate(
        {
            "search": {"family": [{"operator": "IN", "value": ["hand_tools"]}]},
            "attributes": ["name", "description"],
        }
    )
    client = AkeneoClient(settings(events=False))
    client.http.close()
    client.http = httpx.Client(base_url="http://pim.invalid", transport=httpx.MockTransport(answer))
    found = client.listed(spec, uuid=uuid, identifier="HX-220")
    assert found is not None and found["identifier"] == "HX-220"
    assert client.listed(spec, uuid=uuid, identifier="HX-220") is None
    assert orjson.loads(asked[0]["search"]) == {
        "family": [{"operator": "IN", "value": ["hand_tools"]}],
        "uuid": [{"operator": "IN", "value": [uuid]}],
    }
    assert asked[0]["attributes"] == "name,description"
    # Without a uuid the identifier names it.
    client.listed(spec, uuid=None, identifier="HX-220")
    assert orjson.loads(asked[2]["search"])["identifier"] == [
        {"operator": "IN", "value": ["HX-220"]}
    ]
    client.close()


def test_a_product_gone_since_its_event_gives_no_record(tmp_path: Path) -> None:
    push = receiver(StandIn([]), tmp_path).parse(
        {}, body("event_updated.json"), verified("event_updated.json"), "item"
    )
    assert (push.domain, push.records) == ("item", [])


def test_a_deleted_event_is_recorded_for_the_inbox_and_reads_nothing(tmp_path: Path) -> None:
    pim = StandIn([])
    push = receiver(pim, tmp_path).parse(
        {}, body("event_deleted.json"), verified("event_deleted.json"), None
    )
    [entry] = push.records
    assert isinstance(entry, ReadFailure)
    assert entry.rule == DELETED_RULE
    assert entry.locator == "pim product HX-220"
    assert "HX-220 was deleted in pim" in entry.message
    assert entry.raw["type"] == "com.akeneo.pim.v1.product.deleted"
    assert pim.calls == []


def test_events_the_connector_does_not_take_are_acknowledged_and_ignored(tmp_path: Path) -> None:
    push = receiver(StandIn([]), tmp_path).parse(
        {}, body("event_family.json"), verified("event_family.json"), None
    )
    assert push.domain is None
    assert push.topic == "com.akeneo.pim.v1.family.updated"


def test_a_push_to_another_domain_or_of_no_cloudevent_is_bad(tmp_path: Path) -> None:
    r = receiver(StandIn([]), tmp_path)
    with pytest.raises(BadPush, match="pushes item, not price"):
        r.parse({}, body("event_updated.json"), verified("event_updated.json"), "price")
    with pytest.raises(BadPush, match="not JSON"):
        r.parse({}, b"<xml/>", Verified(None, None), None)


def test_a_pim_that_cannot_be_read_fails_the_push_so_that_it_is_sent_again(
    tmp_path: Path,
) -> None:
    pim = StandIn([])
    pim.fail = TransientError("GET /products-uuid -> 503")
    with pytest.raises(TransientError):
        receiver(pim, tmp_path).parse(
            {}, body("event_updated.json"), verified("event_updated.json"), None
        )


def test_the_receiver_verifies_akeneo_signatures_and_keeps_ids_for_twice_the_tolerance(
    tmp_path: Path,
) -> None:
    r = receiver(StandIn([]), tmp_path)
    content = body("event_updated.json")
    found = r.verify(
        {"x-akeneo-signature-primary": signature(SECRET, content)},
        content,
        time_of("event_updated.json"),
    )
    assert found.message_id == "0190d6c4-3b1e-7a55-9e0c-6c2b9f1d0a01"
    assert r.id_lifetime == 600
    with pytest.raises(BadPush):
        r.verify({"x-akeneo-signature-primary": signature(SECRET, b"[1")}, b"[1", 0)


def test_events_need_to_know_their_domain() -> None:
    with pytest.raises(ValidationError, match="give 'domain'"):
        settings(read={"item": {}, "kit": {}})
    with pytest.raises(ValidationError, match="not under 'read'"):
        AkeneoSettings.model_validate(
            {
                **settings(events=False).model_dump(exclude={"events"}),
                "events": {"url": "u", "secret": SECRET, "domain": "kit"},
            }
        )
    two = AkeneoSettings.model_validate(
        {
            **settings(events=False).model_dump(exclude={"events"}),
            "read": {"item": {}, "kit": {}},
            "events": {"url": "u", "secret": SECRET, "domain": "kit"},
        }
    )
    assert two.events_domain == "kit"
    assert settings(events=False).events_domain is None


def test_both_signature_headers_must_come_once(tmp_path: Path) -> None:
    # The webhook route refuses a guarded header sent twice with different values; the
    # receiver's settings name the primary header only, so the secondary went unguarded.
    assert set(receiver(StandIn([]), tmp_path).guarded_headers) == {
        "x-akeneo-signature-primary",
        "x-akeneo-signature-secondary",
    }
