"""Settings and registry entry of the generic REST connector (light: imports no HTTP client)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import jmespath
from pydantic import BaseModel, ConfigDict, Field, model_validator

from mastersync.connectors.registry import ConnectorSettings, ConnectorSpec
from mastersync.ports.connector import Capability


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ApiKeyAuth(_Model):
    """A fixed key sent in a header (or a query parameter)."""

    kind: Literal["api_key"]
    value: str
    header: str = "X-API-Key"
    # Send it as this query parameter instead of a header.
    query_param: str | None = None


class BearerAuth(_Model):
    """A fixed bearer token."""

    kind: Literal["bearer"]
    token: str


class BasicAuth(_Model):
    """HTTP basic authentication."""

    kind: Literal["basic"]
    username: str
    password: str


class OAuth2Auth(_Model):
    """OAuth 2.0 tokens from a token endpoint, fetched again before they expire."""

    kind: Literal["oauth2"]
    token_url: str
    client_id: str
    client_secret: str
    grant: Literal["client_credentials", "password"] = "client_credentials"
    # The password grant (Akeneo, for one) also needs a user.
    username: str | None = None
    password: str | None = None
    scope: str | None = None
    # How the client proves itself: HTTP basic (RFC 6749 2.3.1, the default) or form fields.
    client_auth: Literal["basic", "body"] = "basic"
    # Fetch a new token this many seconds before the old one expires.
    refresh_margin: float = Field(default=30.0, ge=0)
    # Where the token goes: "Authorization: Bearer <token>" unless the API wants otherwise
    # (Shopify: header X-Shopify-Access-Token, no prefix).
    header: str = "Authorization"
    prefix: str = "Bearer "

    @model_validator(mode="after")
    def _user_for_password(self) -> OAuth2Auth:
        if self.grant == "password" and (self.username is None or self.password is None):
            raise ValueError("the password grant needs 'username' and 'password'")
        return self


Auth = Annotated[ApiKeyAuth | BearerAuth | BasicAuth | OAuth2Auth, Field(discriminator="kind")]


class RateLimit(_Model):
    """A client-side cap: at most ``per_second`` requests, bursts of up to ``burst``."""

    per_second: float = Field(gt=0)
    burst: int = Field(default=1, ge=1)


class Pagination(_Model):
    """How a list endpoint hands out pages."""

    kind: Literal["none", "page", "offset", "cursor", "link", "next_url", "search_after"] = "none"
    # page: ?page=1,2,… (first_page first); offset: ?offset=0,size,…
    page_param: str = "page"
    first_page: int = 1
    offset_param: str = "offset"
    # The parameter carrying the page size (limit, per_page, pageSize …); none: not sent.
    size_param: str | None = "limit"
    # cursor: the token for the next page is at this JMESPath in the body and goes back
    # as cursor_param; next_url: the next page's URL is at this JMESPath in the body.
    next: str | None = None
    cursor_param: str = "cursor"
    # search_after: the last record's value at search_after_field (default: the key) goes
    # back as search_after_param.
    search_after_param: str = "search_after"
    search_after_field: str | None = None

    @model_validator(mode="after")
    def _needs_next(self) -> Pagination:
        if self.kind in ("cursor", "next_url") and not self.next:
            raise ValueError(f"{self.kind} pagination needs 'next' (where the body says it)")
        return self


class ReadSpec(_Model):
    """How one domain is read: a list endpoint, its records, and how to ask for changes."""

    path: str
    params: dict[str, str | int | float | bool] = Field(default_factory=dict)
    # JMESPath to the list of records in a response (none: the body is the list).
    records: str | None = None
    # JMESPath to a record's key.
    key: str = "id"
    pagination: Pagination = Field(default_factory=Pagination)
    # Incremental: the parameter asking for records changed since a value, and where each
    # record says when it changed (JMESPath); the highest value read is the next "since".
    since_param: str | None = None
    since_field: str | None = None
    # Re-read this many seconds before the last change seen (clock skew, late commits).
    lookback: float = Field(default=0, ge=0)
    # Numeric change stamps are epoch seconds or milliseconds: a pass is then capped at the
    # server's clock as ISO times are (unset, a number may be a sequence and is not).
    since_epoch: Literal["seconds", "milliseconds"] | None = None
    # Whether this listing (path and params, as the API answers them) holds records the
    # write's `deactivate` request deactivated: a flag or status changed, the row kept. The
    # API decides, not the connector, so it is declared: false when they are left out (a
    # DELETE removed them, or params such as `status: active` filter them), which lets
    # reconciliation report such a record listed again as active there (and repair it).
    lists_inactive: bool = True
    # JMESPath on a listed record that is true when it is active there (`is_active`,
    # `status == 'active'`): where the listing holds deactivated records, reconciliation
    # then tells one the hub deactivated and someone turned on again (anything but a
    # boolean: it cannot tell).
    active: str | None = None

    @model_validator(mode="after")
    def _since_pair(self) -> ReadSpec:
        if (self.since_param is None) != (self.since_field is None):
            raise ValueError("'since_param' and 'since_field' go together")
        if self.since_epoch is not None and self.since_param is None:
            raise ValueError("'since_epoch' needs 'since_param' and 'since_field'")
        if self.active is not None:
            try:
                jmespath.compile(self.active)
            except jmespath.exceptions.ParseError as exc:
                raise ValueError(f"'active' is not a JMESPath expression: {exc}") from None
        return self


class RequestTemplate(_Model):
    """One HTTP request made from a delivery.

    The path and query values are templates: ``{target_key}``, ``{master_id}``, ``{version}``,
    ``{keys.<name>}`` and ``{payload.<field>}`` are filled in (URL-encoded). In the body a
    string that is exactly ``$payload`` becomes the mapped record, ``$target_key``,
    ``$master_id``, ``$version`` or ``$payload.<field>`` that value; the rest is sent as is.
    A payload field sent as null is null in an update's body and left out of a create's.
    """

    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "POST"
    path: str
    params: dict[str, str] = Field(default_factory=dict)
    body: Any = "$payload"


class LookupSpec(_Model):
    """Find a record the consumer may already have before creating it (a lost ack, a record
    created by hand), so that a retry updates it instead of making a duplicate."""

    path: str
    params: dict[str, str] = Field(default_factory=dict)
    records: str | None = None
    key: str = "id"


class ResponseSpec(_Model):
    """Where a write's response says the consumer's key and version of the record."""

    key: str | None = None
    version: str | None = None
    # Other keys records referencing this one need, by name: JMESPaths into the response.
    keys: dict[str, str] = Field(default_factory=dict)


class WriteSpec(_Model):
    """How one subscription's records are written."""

    # A record the consumer does not have yet is created; one it has is updated. An API
    # with one idempotent call for both (PUT by a natural key) gives only `upsert`.
    create: RequestTemplate | None = None
    update: RequestTemplate | None = None
    upsert: RequestTemplate | None = None
    deactivate: RequestTemplate | None = None
    lookup: LookupSpec | None = None
    response: ResponseSpec = Field(default_factory=ResponseSpec)

    @model_validator(mode="after")
    def _can_write(self) -> WriteSpec:
        if self.upsert is None and (self.create is None or self.update is None):
            raise ValueError("give 'upsert', or both 'create' and 'update'")
        if self.create is not None and not self.response.key:
            raise ValueError("'create' needs 'response.key': where the new record's key is")
        return self


class RestSettings(ConnectorSettings):
    """type: rest."""

    type: Literal["rest"]
    base_url: str
    auth: Auth | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    timeout: float = Field(default=30.0, gt=0)
    rate_limit: RateLimit | None = None
    # Reads: how often a 429, 5xx or network error is tried again (waits honour
    # Retry-After up to max_wait). Deliveries are retried by the delivery engine instead.
    retries: int = Field(default=4, ge=0, le=20)
    max_wait: float = Field(default=60.0, gt=0)
    # Deliveries: the longest wait for the rate cap or a 429's pause spent in place. A longer
    # one fails the attempt at once, with that wait as its Retry-After, and the slot is kept
    # for the retry: waited in place it would run out the subscription's delivery timeout
    # (which the connector is not told), so keep this well under that.
    delivery_wait: float = Field(default=0.5, ge=0)
    # The header carrying each delivery's idempotency key (none: not sent).
    idempotency_header: str | None = "Idempotency-Key"
    read: dict[str, ReadSpec] = Field(default_factory=dict)
    # subscription name (under the system's outbound) -> requests
    write: dict[str, WriteSpec] = Field(default_factory=dict)
    poll_every: float = Field(default=60.0, ge=0.05)
    page_size: int = Field(default=100, ge=1, le=10_000)


SPEC = ConnectorSpec(
    name="rest",
    description="Any JSON REST API: paginated incremental reads, templated writes",
    capabilities=frozenset(
        {
            Capability.READ_FULL,
            Capability.READ_INCREMENTAL,
            Capability.WRITE_UPSERT,
            Capability.WRITE_DEACTIVATE,
            Capability.READ_STATE,
        }
    ),
    settings=RestSettings,
    factory="mastersync.connectors.rest.client:RestConnector",
    writes="write",
)
