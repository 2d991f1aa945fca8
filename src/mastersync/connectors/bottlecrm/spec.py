"""Settings and registry entry of the BottleCRM connector (light: imports no HTTP client).

BottleCRM (django-crm) has a REST API under /api/ with personal access tokens. Its lists
have no "changed since" filter and its accounts carry no change time, so the connector
lists a domain in full on every poll and hands over what differs from the last listing.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from mastersync.connectors.registry import ConnectorSettings, ConnectorSpec
from mastersync.ports.connector import Capability

Resource = Literal["accounts", "contacts"]

# What is handed over when `fields` is not given. Left out on purpose: computed values that
# change without the record changing (an account's `rollups`, its deals and tickets), and
# who created it or is assigned to it (people, not master data).
DEFAULT_FIELDS: dict[str, list[str]] = {
    "accounts": [
        "name",
        "email",
        "phone",
        "website",
        "industry",
        "currency",
        "address_line",
        "city",
        "state",
        "postcode",
        "country",
        "description",
        "is_active",
        "custom_fields",
    ],
    "contacts": [
        "first_name",
        "last_name",
        "email",
        "phone",
        "title",
        "department",
        "organization",
        "address_line",
        "city",
        "state",
        "postcode",
        "country",
        "is_active",
        "account",
        "custom_fields",
        "updated_at",
    ],
}
DEFAULT_CONTACT_FIELDS = ["first_name", "last_name", "email", "phone", "title"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BottleCrmContacts(_Model):
    """An account's contacts (people), embedded in the account: a change to one of them is a
    change of the account. A contact belongs to the accounts it is linked to (its primary
    account and the account's contact list)."""

    fields: list[str] = Field(default_factory=lambda: list(DEFAULT_CONTACT_FIELDS), min_length=1)
    # Archived contacts (is_active false) are embedded too.
    inactive: bool = False


class BottleCrmRead(_Model):
    """How one domain is read: a resource listed in full, the fields handed over."""

    resource: Resource
    # Field names of the listed records; the record's id is always there.
    fields: list[str] | None = None
    # Accounts only: their contacts embedded under "contacts".
    contacts: BottleCrmContacts | None = None
    # Read archived records too (is_active false), so that archiving is a change.
    inactive: bool = True
    # Query parameters of BottleCRM's own list filters (industry, tags, cf_<key>, ...).
    filter: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _contacts_of_accounts(self) -> BottleCrmRead:
        if self.contacts is not None and self.resource != "accounts":
            raise ValueError("'contacts' are embedded in accounts only")
        if self.fields is not None and "id" in self.fields:
            raise ValueError("'id' is always read; leave it out of 'fields'")
        return self

    def field_names(self) -> list[str]:
        """The fields handed over, the defaults when none are given."""
        return list(self.fields) if self.fields is not None else DEFAULT_FIELDS[self.resource]


class BottleCrmWrite(_Model):
    """How one subscription's records are written: accounts created or updated."""

    resource: Literal["accounts"] = "accounts"
    # Fields that find an account BottleCRM already has (created by hand, or by an attempt
    # whose answer was lost), tried in order: "name" (unique per organisation, compared
    # without case), "email", or "custom_fields.<key>". The first that finds one is used.
    # Default "name": BottleCRM refuses a second account of that name, so without it a
    # create whose answer was lost could only end as a dead letter when sent again.
    match: list[str] = Field(default_factory=lambda: ["name"])
    # Values written on creation only.
    on_create: dict[str, Any] = Field(default_factory=dict)


class BottleCrmSettings(ConnectorSettings):
    """type: bottlecrm."""

    type: Literal["bottlecrm"]
    # The API's base URL, without /api: http://crm.internal:8000
    url: str
    # A personal access token (bcrm_pat_...), a secret reference. Its scopes must cover the
    # resources read and written (accounts:read, accounts:write, contacts:read).
    token: str
    timeout: float = Field(default=30.0, gt=0)
    # Reads and updates: how often a transient failure (network, 429, 5xx) is retried.
    retries: int = Field(default=3, ge=0, le=20)
    read: dict[str, BottleCrmRead] = Field(default_factory=dict)
    # subscription name (under the system's outbound) -> how its records are written
    write: dict[str, BottleCrmWrite] = Field(default_factory=dict)
    # Every poll lists the domain in full: poll less often than a feed with a cursor.
    poll_every: float = Field(default=60.0, ge=0.05)
    # Records per listing request, and per page handed to ingest.
    page_size: int = Field(default=100, ge=1, le=1000)


SPEC = ConnectorSpec(
    name="bottlecrm",
    description="BottleCRM (django-crm): accounts and contacts by full-list diffing; accounts out",
    capabilities=frozenset(
        {
            Capability.READ_FULL,
            Capability.READ_INCREMENTAL,
            Capability.WRITE_UPSERT,
            Capability.WRITE_DEACTIVATE,
            Capability.READ_STATE,
        }
    ),
    settings=BottleCrmSettings,
    factory="mastersync.connectors.bottlecrm.connector:BottleCrmConnector",
    writes="write",
)
