"""Settings and registry entry of the SQL connector (light: imports no driver)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from mastersync.connectors.registry import ConnectorSettings, ConnectorSpec
from mastersync.ports.connector import Capability


class SqlRead(BaseModel):
    """How one domain is read: a table or a query, ordered by a monotonic column."""

    model_config = ConfigDict(extra="forbid")
    table: str | None = None
    query: str | None = None
    # A column that grows with every change (a sequence, a modification counter, a timestamp).
    cursor: str
    cursor_kind: Literal["number", "timestamp"] = "number"
    # A unique column: orders rows that share a cursor value (ties at a page boundary).
    key: str
    # Re-read this much before the cursor on each poll (cursor units; seconds for
    # timestamps): rows a long transaction commits late with an earlier cursor value.
    lookback: float = Field(default=0, ge=0)

    @model_validator(mode="after")
    def _one_source(self) -> SqlRead:
        if (self.table is None) == (self.query is None):
            raise ValueError("give exactly one of 'table' or 'query'")
        return self


class SqlWrite(BaseModel):
    """How one subscription's records are written: upserted into a table by a key column."""

    model_config = ConfigDict(extra="forbid")
    table: str
    # The column identifying a row; the outbound mapping must fill it (e.g. with _master_id).
    key: str
    # Deactivation: set this column to this value (default: delete the row).
    deactivate_column: str | None = None
    deactivate_value: bool | int | str = False


class SqlSettings(ConnectorSettings):
    """type: sql."""

    type: Literal["sql"]
    url: str
    # Kept out of the URL so that it can be a secret reference.
    password: str | None = None
    read: dict[str, SqlRead] = Field(default_factory=dict)
    # subscription name (under the system's outbound) -> table
    write: dict[str, SqlWrite] = Field(default_factory=dict)
    poll_every: float = Field(default=30.0, ge=0.05)
    page_size: int = Field(default=1000, ge=1, le=100_000)


SPEC = ConnectorSpec(
    name="sql",
    description="Any SQLAlchemy database: tables or queries read incrementally, upserts out",
    capabilities=frozenset(
        {
            Capability.READ_FULL,
            Capability.READ_INCREMENTAL,
            Capability.WRITE_UPSERT,
            Capability.WRITE_DEACTIVATE,
            Capability.READ_STATE,
        }
    ),
    settings=SqlSettings,
    factory="mastersync.connectors.sql.client:SqlConnector",
    writes="write",
)
