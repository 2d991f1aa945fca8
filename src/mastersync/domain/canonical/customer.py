"""The canonical customer: who a distributor sells to, on what terms."""

from __future__ import annotations

from enum import StrEnum

from pydantic import EmailStr, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from mastersync.domain.canonical.common import (
    Address,
    CanonicalModel,
    Contact,
    Money,
    give_vat_prefix,
)
from mastersync.domain.canonical.types import CountryCode, CurrencyCode, TaxId, Text

# 1.1: the published schema leaves objects open (no additionalProperties: false):
# a consumer holding it accepts later minor versions' added optional fields.
SCHEMA_VERSION = "1.1"


class CustomerLifecycle(StrEnum):
    """Where a customer is in its life."""

    PROSPECT = "prospect"
    PENDING = "pending"
    ACTIVE = "active"
    BLOCKED = "blocked"
    INACTIVE = "inactive"


class Customer(CanonicalModel):
    """A customer master record."""

    customer_number: Text | None = Field(default=None, max_length=64)
    name: Text | None = Field(default=None, max_length=200)
    legal_name: Text | None = Field(default=None, max_length=200)
    tax_id: TaxId | None = None
    country: CountryCode | None = None
    currency: CurrencyCode | None = None
    segment: Text | None = None
    credit_terms: Text | None = Field(default=None, description="payment terms code, e.g. NET30")
    credit_limit: Money | None = None
    sales_rep: Text | None = None
    email: EmailStr | None = None
    phone: Text | None = None
    website: Text | None = None
    addresses: list[Address] | None = None
    contacts: list[Contact] | None = None
    lifecycle_state: CustomerLifecycle | None = None

    @field_validator("credit_limit")
    @classmethod
    def _credit_limit_not_negative(cls, value: Money | None) -> Money | None:
        if value is not None and value.amount < 0:
            raise PydanticCustomError(
                "greater_than_equal",
                "a credit limit cannot be negative (got {amount})",
                {"amount": str(value.amount)},
            )
        return value

    @model_validator(mode="after")
    def _vat_prefix(self) -> Customer:
        """An EU VAT number without its prefix gets it, from ``country``."""
        give_vat_prefix(self)
        return self
