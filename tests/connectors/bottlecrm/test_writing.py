"""Account writes (what differs, look-up before create, a name taken meanwhile) and the HTTP
client (complete listings, error classes), against fakes of BottleCRM's API."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest

from mastersync.connectors.bottlecrm.client import Api, NotFound, Refused, classify
from mastersync.connectors.bottlecrm.spec import BottleCrmWrite
from mastersync.connectors.bottlecrm.writer import AccountWriter, delta, same
from mastersync.ports.connector import TerminalError, TransientError


def test_only_differing_fields_and_custom_keys_are_written() -> None:
    current = {
        "name": "Baumarkt Süd",
        "email": None,
        "phone": "",
        "annual_revenue": "1000.00",
        "custom_fields": {"customer_number": "C-1", "payment_terms": "NET30"},
    }
    body = {
        "name": "Baumarkt Süd",
        "email": "",
        "phone": "+49 89 1",
        "annual_revenue": 1000,
        "custom_fields": {"customer_number": "C-1", "payment_terms": "NET60"},
    }
    assert delta(current, body) == {
        "phone": "+49 89 1",
        "custom_fields": {"payment_terms": "NET60"},
    }
    assert delta(current, {"name": "Baumarkt Süd", "custom_fields": {}}) == {}
    assert same(None, "") and not same("a", None) and same("2.50", 2.5, "annual_revenue")


def test_a_name_differing_only_in_case_is_left_out_and_the_rest_written(
    caplog: pytest.LogCaptureFixture,
) -> None:
    api = FakeApi()
    api.accounts["acc-1"] = {
        "id": "acc-1",
        "name": "ACME gmbh",
        "phone": "1",
        "is_active": True,
        "custom_fields": {},
    }
    writer_of(api).upsert(BottleCrmWrite(), {"name": "Acme GmbH", "phone": "2"}, "acc-1")
    assert api.accounts["acc-1"] == {
        "id": "acc-1",
        "name": "ACME gmbh",
        "phone": "2",
        "is_active": True,
        "custom_fields": {},
    }
    assert api.calls[-1] == ("patch", ("acc-1", {"phone": "2"}))
    assert "name 'Acme GmbH' left as 'ACME gmbh'" in caplog.text
    # A name that really changes is still written.
    assert delta({"name": "ACME gmbh"}, {"name": "Acme AG"}) == {"name": "Acme AG"}


class FakeApi:
    """Accounts in memory, answering as BottleCRM does (names unique without case)."""

    def __init__(self, custom: dict[str, str] | None = None) -> None:
        self.accounts: dict[str, dict[str, Any]] = {}
        self.calls: list[tuple[str, Any]] = []
        self.custom = custom
        self.taken_meanwhile: dict[str, Any] | None = None
        self.made = 0

    def custom_field_types(self, target: str) -> dict[str, str]:
        if self.custom is None:
            raise TerminalError("no custom-fields:read scope", status=403)
        return self.custom

    def detail(self, resource: str, key: str) -> dict[str, Any]:
        if key not in self.accounts:
            raise NotFound("GET -> 404", status=404)
        return dict(self.accounts[key])

    def list_all(
        self, resource: str, params: dict[str, str], page_size: int, *, inactive: bool = True
    ) -> list[dict[str, Any]]:
        self.calls.append(("list", params))
        return [dict(a) for a in self.accounts.values()]

    def create(self, resource: str, body: dict[str, Any]) -> str:
        self.calls.append(("create", body))
        if self.taken_meanwhile is not None:  # someone made it between look-up and create
            self.accounts["meanwhile"] = {"id": "meanwhile", **self.taken_meanwhile}
            self.taken_meanwhile = None
        if any(a["name"].casefold() == body["name"].casefold() for a in self.accounts.values()):
            raise Refused("POST -> 400", {"name": ["Account already exists with this name"]})
        self.made += 1
        key = f"acc-{self.made}"
        self.accounts[key] = {"id": key, "custom_fields": {}, **body}
        return key

    def patch(self, resource: str, key: str, body: dict[str, Any]) -> None:
        self.calls.append(("patch", (key, dict(body))))
        if key not in self.accounts:
            raise NotFound("PATCH -> 404", status=404)
        name = body.get("name")
        # validate_name on an update: a new name is checked with name__iexact over the
        # organisation's accounts, this one included.
        if (
            name is not None
            and name != self.accounts[key].get("name")
            and any(
                (a.get("name") or "").casefold() == name.casefold() for a in self.accounts.values()
            )
        ):
            raise Refused("PATCH -> 400", {"name": ["Account already exists with this name"]})
        custom = {**self.accounts[key].get("custom_fields", {}), **body.pop("custom_fields", {})}
        self.accounts[key].update(body, custom_fields=custom)


def writer_of(api: FakeApi) -> AccountWriter:
    return AccountWriter(api, 100)  # type: ignore[arg-type]


MATCH = BottleCrmWrite(match=["custom_fields.customer_number", "name"])


def test_a_lost_acknowledgement_finds_the_account_instead_of_making_a_second() -> None:
    api = FakeApi()
    writer = writer_of(api)
    payload = {"name": "Gartenwelt AG", "custom_fields": {"customer_number": "T-17"}}
    key = writer.upsert(MATCH, payload, None)
    assert writer.upsert(MATCH, payload, None) == key
    assert list(api.accounts) == [key]
    assert ("list", {"cf_customer_number": "T-17"}) in api.calls
    # Unchanged: the second attempt wrote nothing. Made active (the flag the hub's
    # deactivation clears).
    made = ("create", {**payload, "is_active": True})
    assert [c for c in api.calls if c[0] in ("create", "patch")] == [made]


def test_a_known_key_is_updated_and_a_deleted_account_made_again() -> None:
    api = FakeApi()
    writer = writer_of(api)
    key = writer.upsert(MATCH, {"name": "A", "phone": "1"}, None)
    assert writer.upsert(MATCH, {"name": "A", "phone": "2"}, key) == key
    assert api.calls[-1] == ("patch", (key, {"phone": "2"}))
    del api.accounts[key]
    again = writer.upsert(MATCH, {"name": "A", "phone": "2"}, key)
    assert again != key and api.accounts[again]["phone"] == "2"


def test_a_name_taken_meanwhile_is_looked_up_again_only_when_name_matches() -> None:
    api = FakeApi()
    api.taken_meanwhile = {"name": "gartenwelt ag", "custom_fields": {}}
    assert writer_of(api).upsert(MATCH, {"name": "Gartenwelt AG"}, None) == "meanwhile"
    api = FakeApi()
    api.taken_meanwhile = {"name": "Gartenwelt AG", "custom_fields": {}}
    by_number = BottleCrmWrite(match=["custom_fields.customer_number"])
    with pytest.raises(TerminalError, match="already has an account named 'Gartenwelt AG'"):
        writer_of(api).upsert(by_number, {"name": "Gartenwelt AG"}, None)


def test_a_number_custom_field_is_looked_up_over_the_whole_list() -> None:
    """BottleCRM's cf_ filter finds text only (tests/connectors/bottlecrm/test_live.py shows
    it missing a number): a value a number or checkbox field may hold is not narrowed by it
    when the types are unknown (no custom-fields:read scope), nor when the type says so."""
    api = FakeApi()
    api.accounts["acc-9"] = {"id": "acc-9", "name": "A", "custom_fields": {"erp": 4711.0}}
    by_erp = BottleCrmWrite(match=["custom_fields.erp"])
    payload = {"name": "A2", "custom_fields": {"erp": "4711"}}
    assert writer_of(api).upsert(by_erp, payload, None) == "acc-9"
    assert api.calls[0] == ("list", {})
    assert api.accounts["acc-9"]["name"] == "A2" and len(api.accounts) == 1
    # Text that no number or checkbox field would hold is still narrowed by the filter.
    api.calls.clear()
    writer_of(api).upsert(by_erp, {"name": "B", "custom_fields": {"erp": "C-7"}}, None)
    assert api.calls[0] == ("list", {"cf_erp": "C-7"})
    # With the types known, a text field is narrowed whatever its value looks like.
    typed = FakeApi(custom={"erp": "text", "flag": "checkbox"})
    writer_of(typed).upsert(by_erp, {"name": "C", "custom_fields": {"erp": "4711"}}, None)
    assert typed.calls[0] == ("list", {"cf_erp": "4711"})
    by_flag = BottleCrmWrite(match=["custom_fields.flag"])
    writer_of(typed).upsert(by_flag, {"name": "D", "custom_fields": {"flag": "yes"}}, None)
    assert ("list", {}) in typed.calls


def test_custom_values_are_compared_as_bottlecrm_stores_them() -> None:
    current = {"custom_fields": {"erp": 4711.0, "flag": True, "code": "7"}}
    same_values = {"custom_fields": {"erp": "4711", "flag": "yes", "code": 7}}
    assert delta(current, same_values) == {}
    changed = {"custom_fields": {"erp": "4712", "flag": "off", "code": "07"}}
    assert delta(current, changed) == changed


def test_two_accounts_found_by_one_match_field_are_ambiguous() -> None:
    api = FakeApi()
    api.accounts = {
        k: {"id": k, "name": k, "email": "same@example.com", "custom_fields": {}} for k in "ab"
    }
    with pytest.raises(TerminalError, match="more than one BottleCRM account with email"):
        writer_of(api).upsert(BottleCrmWrite(match=["email"]), {"email": "same@example.com"}, None)


def test_unknown_fields_and_custom_fields_are_refused_naming_them() -> None:
    with pytest.raises(TerminalError, match=r"no field\(s\) colour"):
        writer_of(FakeApi()).body({"name": "A", "colour": "red"})
    writer = writer_of(FakeApi(custom={"customer_number": "text"}))
    with pytest.raises(TerminalError, match=r"no account custom field\(s\) payment_term$"):
        writer.body({"custom_fields": {"payment_term": "NET30", "customer_number": "1"}})
    # Without the custom-fields:read scope there is nothing to check against.
    assert writer_of(FakeApi()).body({"custom_fields": {"x": 1}}) == {"custom_fields": {"x": 1}}


def test_deactivation_archives_and_a_gone_account_is_nothing_to_do() -> None:
    api = FakeApi()
    writer = writer_of(api)
    key = writer.upsert(MATCH, {"name": "A"}, None)
    writer.deactivate(key)
    assert api.accounts[key]["is_active"] is False
    writer.deactivate("gone")


def page(rows: list[dict[str, Any]], count: int) -> dict[str, Any]:
    return {
        "active_accounts": {"open_accounts": rows, "open_accounts_count": count},
        "closed_accounts": {"close_accounts": [], "close_accounts_count": 0},
        "countries": [["DE", "Germany"]],
    }


def api_over(handler: Any) -> Api:
    return Api("http://crm.test", "bcrm_pat_x", 5, 0, transport=httpx.MockTransport(handler))


def test_a_listing_pages_through_both_halves_of_the_account_list() -> None:
    rows = [{"id": f"a{i}"} for i in range(5)]
    seen: list[dict[str, str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        params = dict(request.url.params)
        seen.append(params)
        assert request.headers["Authorization"] == "Bearer bcrm_pat_x"
        if params["is_active"] == "false":
            body = {
                **page([], 0),
                "closed_accounts": {"close_accounts": [{"id": "z"}], "close_accounts_count": 1},
            }
            return httpx.Response(200, content=orjson.dumps(body))
        offset, limit = int(params["offset"]), int(params["limit"])
        return httpx.Response(200, content=orjson.dumps(page(rows[offset : offset + limit], 5)))

    listed = api_over(handler).list_all("accounts", {"name": "x"}, 2)
    assert [r["id"] for r in listed] == ["a0", "a1", "a2", "a3", "a4", "z"]
    assert [(p["offset"], p["is_active"]) for p in seen] == [
        ("0", "true"),
        ("2", "true"),
        ("4", "true"),
        ("0", "false"),
    ]
    assert all(p["name"] == "x" for p in seen)


def test_a_listing_that_keeps_changing_while_read_is_a_transient_failure() -> None:
    calls = [0]

    def handler(request: httpx.Request) -> httpx.Response:
        calls[0] += 1  # a record is added between every two pages
        offset = int(request.url.params["offset"])
        rows = [{"id": f"a{offset}"}, {"id": f"a{offset + 1}"}]
        return httpx.Response(200, content=orjson.dumps(page(rows, 3 + calls[0])))

    with pytest.raises(TransientError, match="kept changing"):
        api_over(handler).list_all("accounts", {}, 2, inactive=False)


@pytest.mark.parametrize(
    ("status", "kind", "text"),
    [
        (401, TerminalError, "refused the token"),
        (403, TerminalError, "scopes"),
        (404, NotFound, "404"),
        (400, Refused, "400"),
        (429, TransientError, "429"),
        (503, TransientError, "503"),
    ],
)
def test_error_answers_are_sorted_into_transient_and_terminal(
    status: int, kind: type[Exception], text: str
) -> None:
    request = httpx.Request("GET", "http://crm.test/api/accounts/")
    response = httpx.Response(
        status, json={"errors": {"name": ["taken"]}}, request=request, headers={"Retry-After": "2"}
    )
    error = classify(response)
    assert isinstance(error, kind)
    assert text in error.message
    if status == 429:
        assert error.retry_after == 2
    if status == 400:
        assert isinstance(error, Refused) and error.errors == {"name": ["taken"]}


def test_a_network_failure_is_transient() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(TransientError, match="ConnectError"):
        api_over(handler).get("/accounts/")


def test_a_null_goes_out_to_an_account_bottlecrm_has_and_not_into_a_new_one() -> None:
    """A field cleared at the hub comes as null: patched as null (BottleCRM empties a field
    so, and drops a custom field key), but left out of a create, where `on_create` and
    BottleCRM's own defaults apply. Review: the null went into the create, over them."""
    api = FakeApi()
    writer = writer_of(api)
    spec = BottleCrmWrite(on_create={"industry": "RETAIL", "custom_fields": {"tier": "B"}})
    payload = {"name": "A", "industry": None, "email": None, "custom_fields": {"tier": None}}
    key = writer.upsert(spec, payload, None)
    assert api.calls[-1] == (
        "create",
        {"name": "A", "industry": "RETAIL", "custom_fields": {"tier": "B"}, "is_active": True},
    )
    api.accounts[key].update(email="a@example.com")
    writer.upsert(spec, payload, key)
    assert api.calls[-1] == (
        "patch",
        (key, {"industry": None, "email": None, "custom_fields": {"tier": None}}),
    )
