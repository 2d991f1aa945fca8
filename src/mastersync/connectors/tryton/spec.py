"""Settings and registry entry of the Tryton connector (light: imports no HTTP client).

mastersync never imports trytond: it talks to a running Tryton server over HTTP, JSON-RPC
with a session (user and password) or the REST API with a user application key.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, model_validator

from mastersync.connectors.registry import ConnectorSettings, ConnectorSpec
from mastersync.ports.connector import Capability

# Tryton's order clauses; NULLS FIRST/LAST as Tryton's own orders use them (a sequence).
Order = Literal[
    "ASC", "DESC", "ASC NULLS FIRST", "ASC NULLS LAST", "DESC NULLS FIRST", "DESC NULLS LAST"
]
_ASC: Order = "ASC"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TrytonChild(_Model):
    """Records of another model embedded in each record (a party's addresses); a change to
    one of them is a change of the record."""

    model: str
    # The child's Many2One back to the record (party.address.party).
    parent: str
    # The record's field that the child's parent points to, when it is not the record itself:
    # a product's supplier references hang on its template (purchase.product_supplier.template
    # points to product.product.template).
    via: str = "id"
    # A field of the child that, when set, ties it to one of the records sharing its parent
    # (purchase.product_supplier.product: a reference for one variant only).
    only_for: str | None = None
    fields: list[str] = Field(min_length=1)
    # A Tryton domain limiting the children embedded ([[party.categories.name, "=", Supplier]]);
    # a change to any child is still a change of the record.
    filter: list[Any] = Field(default_factory=list)
    # Children are listed in this order (Tryton order clauses: [["sequence", "ASC"], ...]).
    order: list[tuple[str, Order]] = Field(default_factory=lambda: [("id", _ASC)])


class TrytonRelated(_Model):
    """A model the record points to whose changes change the record (a product's template:
    its name and list price live there)."""

    model: str
    # The record's Many2One to it (product.product.template).
    via: str


class TrytonRead(_Model):
    """How one domain is read: a model, its fields, and what else changes a record."""

    model: str
    # Field names; dotted paths read a related record's field ("template.list_price").
    fields: list[str] = Field(min_length=1)
    # A Tryton domain limiting the records (parties in the category "Customer", say).
    filter: list[Any] = Field(default_factory=list)
    children: dict[str, TrytonChild] = Field(default_factory=dict)
    related: list[TrytonRelated] = Field(default_factory=list)
    # Re-read changes this many seconds before the last change seen: a transaction that
    # committed late with an earlier write_date, and records sharing one timestamp.
    lookback: float = Field(default=5.0, ge=0)
    # Read deactivated records too (active = false), so that deactivation is a change.
    inactive: bool = True


class TrytonStock(_Model):
    """Stock quantities per product and location (the inventory domain), as Tryton computes
    them from its done stock moves (product.product's quantity in a location's context)."""

    # Marks a stock read (a model read has none).
    kind: Literal["stock"]
    # A Tryton domain on stock.location: the locations quantities are read for. A location's
    # quantity includes its child locations'.
    locations: list[Any] = Field(default_factory=lambda: [["type", "=", "warehouse"]])
    # A Tryton domain on product.product: the products read (archived ones included).
    products: list[Any] = Field(default_factory=list)
    # Fields of the product and of the location handed over with each quantity.
    fields: list[str] = Field(default_factory=lambda: ["code", "default_uom.symbol"])
    location_fields: list[str] = Field(default_factory=lambda: ["code", "name"])
    # A warehouse counts its storage zone only, not goods still in its input or output zone
    # (Tryton's stock_skip_warehouse).
    storage_only: bool = True
    # Re-read stock moves this many seconds before the last change seen (late commits).
    lookback: float = Field(default=5.0, ge=0)


def _read_kind(value: Any) -> str:
    kind = value.get("kind") if isinstance(value, dict) else getattr(value, "kind", None)
    return "stock" if kind == "stock" else "model"


# A domain is read from a model's records, or (kind: stock) from stock quantities.
TrytonReadSpec = Annotated[
    Annotated[TrytonRead, Tag("model")] | Annotated[TrytonStock, Tag("stock")],
    Discriminator(_read_kind),
]


class TrytonLink(_Model):
    """A Many2One (or Many2Many) value written by another field of the target record: the
    outbound mapping says "DE" and the connector finds the country whose code is DE."""

    model: str
    by: str


class TrytonWriteChild(_Model):
    """A One2Many written with its record (a party's addresses), matched by position."""

    links: dict[str, TrytonLink] = Field(default_factory=dict)


class TrytonWrite(_Model):
    """How one subscription's records are written: created or updated in a model."""

    model: str
    # Fields that identify a record Tryton may already have (created by hand, or by an
    # attempt whose answer was lost): it is updated rather than created twice.
    match: list[str] = Field(default_factory=list)
    links: dict[str, TrytonLink] = Field(default_factory=dict)
    children: dict[str, TrytonWriteChild] = Field(default_factory=dict)
    # Values written on creation only (a party category, say).
    on_create: dict[str, Any] = Field(default_factory=dict)
    # Deactivation sets this Boolean field to false.
    active_field: str = "active"


class TrytonSettings(ConnectorSettings):
    """type: tryton."""

    type: Literal["tryton"]
    # The server's base URL, without the database: http://erp.internal:8000
    url: str
    database: str
    # JSON-RPC with a session: user and password (a secret reference) ...
    user: str | None = None
    password: str | None = None
    # ... or the REST API with a user application key (application "rest").
    application_key: str | None = None
    # Context for every call (company, language). With a session the user's preferences
    # are read at login and these are laid over them.
    context: dict[str, Any] = Field(default_factory=dict)
    timeout: float = Field(default=30.0, gt=0)
    # Reads: how often a transient failure (network, 5xx, a locked database) is retried.
    retries: int = Field(default=3, ge=0, le=20)
    read: dict[str, TrytonReadSpec] = Field(default_factory=dict)
    # subscription name (under the system's outbound) -> model
    write: dict[str, TrytonWrite] = Field(default_factory=dict)
    poll_every: float = Field(default=30.0, ge=0.05)
    page_size: int = Field(default=200, ge=1, le=10_000)

    @model_validator(mode="after")
    def _credentials(self) -> TrytonSettings:
        session = self.user is not None or self.password is not None
        if session and (self.user is None or self.password is None):
            raise ValueError("a session needs both 'user' and 'password'")
        if session == (self.application_key is not None):
            raise ValueError("give 'user' and 'password', or 'application_key' (not both)")
        return self


SPEC = ConnectorSpec(
    name="tryton",
    description=(
        "Tryton ERP over JSON-RPC or REST: parties, products, prices, supplier references, "
        "stock quantities; upserts out"
    ),
    capabilities=frozenset(
        {
            Capability.READ_FULL,
            Capability.READ_INCREMENTAL,
            Capability.WRITE_UPSERT,
            Capability.WRITE_DEACTIVATE,
            Capability.READ_STATE,
        }
    ),
    settings=TrytonSettings,
    factory="mastersync.connectors.tryton.connector:TrytonConnector",
    writes="write",
)
