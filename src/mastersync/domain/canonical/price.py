"""The canonical price: item x price list x currency x unit x validity."""

from __future__ import annotations

import datetime as dt

from pydantic import Field, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from mastersync.domain.canonical.common import CanonicalModel
from mastersync.domain.canonical.types import Amount, CurrencyCode, MasterRef, Text, UomCode

# 1.1: the published schema leaves objects open (no additionalProperties: false):
# a consumer holding it accepts later minor versions' added optional fields.
SCHEMA_VERSION = "1.1"


class Price(CanonicalModel):
    """One price of one item on one price list."""

    item: MasterRef | None = Field(default=None, description="master id of the item")
    price_list: Text | None = None
    currency: CurrencyCode | None = None
    uom: UomCode | None = None
    amount: Amount | None = Field(default=None, ge=0)
    min_quantity: Amount | None = Field(default=None, ge=0)
    valid_from: dt.date | None = None
    valid_to: dt.date | None = None

    @field_validator("valid_to")
    @classmethod
    def _valid_to_not_before_valid_from(
        cls, value: dt.date | None, info: ValidationInfo
    ) -> dt.date | None:
        start = info.data.get("valid_from")
        if value is not None and start is not None and value < start:
            raise PydanticCustomError(
                "date_order",
                "valid_to {end} is before valid_from {start}",
                {"end": value.isoformat(), "start": start.isoformat()},
            )
        return value
