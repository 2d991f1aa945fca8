"""The canonical inventory position: item x location quantities."""

from __future__ import annotations

from pydantic import Field

from mastersync.domain.canonical.common import CanonicalModel
from mastersync.domain.canonical.types import Amount, Instant, MasterRef, UomCode

# 1.1: the published schema leaves objects open (no additionalProperties: false):
# a consumer holding it accepts later minor versions' added optional fields.
SCHEMA_VERSION = "1.1"


class Inventory(CanonicalModel):
    """Quantities of one item at one location."""

    item: MasterRef | None = Field(default=None, description="master id of the item")
    location: MasterRef | None = Field(default=None, description="master id of the location")
    uom: UomCode | None = None
    on_hand: Amount | None = None
    allocated: Amount | None = Field(default=None, ge=0)
    available: Amount | None = None
    on_order: Amount | None = Field(default=None, ge=0)
    as_of: Instant | None = None
