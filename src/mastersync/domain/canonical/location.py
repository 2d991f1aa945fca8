"""The canonical location: warehouses, stores and third-party sites."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from mastersync.domain.canonical.common import Address, CanonicalModel
from mastersync.domain.canonical.types import Text

# 1.1: the published schema leaves objects open (no additionalProperties: false):
# a consumer holding it accepts later minor versions' added optional fields.
SCHEMA_VERSION = "1.1"


class LocationKind(StrEnum):
    """What kind of site a location is."""

    WAREHOUSE = "warehouse"
    DISTRIBUTION_CENTER = "distribution_center"
    STORE = "store"
    THIRD_PARTY = "third_party"
    SUPPLIER_SITE = "supplier_site"


class Location(CanonicalModel):
    """A location master record."""

    code: Text | None = Field(default=None, max_length=32)
    name: Text | None = None
    kind: LocationKind | None = None
    gln: Text | None = Field(default=None, pattern=r"^\d{13}$")
    address: Address | None = None
    timezone: Text | None = None
    active: bool | None = None
