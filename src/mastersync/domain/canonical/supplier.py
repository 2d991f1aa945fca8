"""The canonical supplier: who a distributor buys from and how it pays them."""

from __future__ import annotations

from enum import StrEnum

from pydantic import EmailStr, Field, model_validator

from mastersync.domain.canonical.common import Address, CanonicalModel, Contact, give_vat_prefix
from mastersync.domain.canonical.types import BIC, IBAN, CountryCode, CurrencyCode, TaxId, Text

# 1.1: the published schema leaves objects open (no additionalProperties: false):
# a consumer holding it accepts later minor versions' added optional fields.
SCHEMA_VERSION = "1.1"


class SupplierLifecycle(StrEnum):
    """Where a supplier is in its life."""

    ONBOARDING = "onboarding"
    APPROVED = "approved"
    BLOCKED = "blocked"
    INACTIVE = "inactive"


class BankAccount(CanonicalModel):
    """Where payments to the supplier go."""

    iban: IBAN | None = None
    bic: BIC | None = None
    account_holder: Text | None = None
    bank_name: Text | None = None


class Supplier(CanonicalModel):
    """A supplier master record."""

    supplier_number: Text | None = Field(default=None, max_length=64)
    name: Text | None = Field(default=None, max_length=200)
    legal_name: Text | None = Field(default=None, max_length=200)
    tax_id: TaxId | None = None
    country: CountryCode | None = None
    currency: CurrencyCode | None = None
    bank_account: BankAccount | None = None
    payment_terms: Text | None = None
    lead_time_days: int | None = Field(default=None, ge=0, le=730)
    email: EmailStr | None = None
    phone: Text | None = None
    addresses: list[Address] | None = None
    contacts: list[Contact] | None = None
    lifecycle_state: SupplierLifecycle | None = None

    @model_validator(mode="after")
    def _vat_prefix(self) -> Supplier:
        """An EU VAT number without its prefix gets it, from ``country``."""
        give_vat_prefix(self)
        return self
