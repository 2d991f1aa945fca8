"""The canonical item: what a distributor buys, stocks and sells."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from mastersync.domain.canonical.common import CanonicalModel, Dimensions
from mastersync.domain.canonical.types import GTIN, Amount, CountryCode, MasterRef, Text, UomCode

# 1.1: optional supplier_item_name and supplier_lead_time_days (additive: 1.0 records stay valid).
# 1.2: the published schema leaves objects open (no additionalProperties: false):
# a consumer holding it accepts later minor versions' added optional fields.
SCHEMA_VERSION = "1.2"


class ItemLifecycle(StrEnum):
    """Where an item is in its life: only approved/active items reach sales channels."""

    DRAFT = "draft"
    ENRICHED = "enriched"
    APPROVED = "approved"
    ACTIVE = "active"
    DISCONTINUED = "discontinued"


class PackLevelKind(StrEnum):
    """The standard pack hierarchy."""

    EACH = "each"
    INNER = "inner"
    CASE = "case"
    PALLET = "pallet"


class PackLevel(CanonicalModel):
    """One level of the pack hierarchy and how many base units it holds."""

    level: PackLevelKind
    uom: UomCode
    quantity: Amount = Field(gt=0, description="base units in one of this pack")
    gtin: GTIN | None = None
    gross_weight_kg: Amount | None = Field(default=None, ge=0)
    dimensions: Dimensions | None = None


class Item(CanonicalModel):
    """An item master record (all fields optional: each system contributes a part)."""

    sku: Text | None = Field(default=None, max_length=64)
    gtin: GTIN | None = None
    name: Text | None = Field(default=None, max_length=200)
    description: Text | None = Field(default=None, max_length=4000)
    brand: Text | None = None
    manufacturer: Text | None = None
    category: Text | None = None
    base_uom: UomCode | None = None
    pack_levels: list[PackLevel] | None = None
    net_weight_kg: Amount | None = Field(default=None, ge=0)
    gross_weight_kg: Amount | None = Field(default=None, ge=0)
    dimensions: Dimensions | None = None
    hazmat_un_number: Text | None = Field(default=None, pattern=r"^UN\d{4}$")
    storage_class: Text | None = None
    shelf_life_days: int | None = Field(default=None, ge=0)
    lot_controlled: bool | None = None
    country_of_origin: CountryCode | None = None
    hs_code: Text | None = Field(default=None, pattern=r"^\d{6,10}$")
    primary_supplier: MasterRef | None = None
    supplier_item_number: Text | None = None
    # The primary supplier's own name for the item, and its lead time for it in days (added
    # later, optional like every field: records stored without them stay valid).
    supplier_item_name: Text | None = Field(default=None, max_length=200)
    supplier_lead_time_days: int | None = Field(default=None, ge=0, le=730)
    list_price: Amount | None = Field(default=None, ge=0)
    cost_price: Amount | None = Field(default=None, ge=0)
    images: list[Text] | None = None
    channels: list[Text] | None = None
    lifecycle_state: ItemLifecycle | None = None
