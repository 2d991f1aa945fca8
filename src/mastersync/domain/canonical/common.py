"""Parts shared by several canonical models: addresses, contacts, money, dimensions."""

from __future__ import annotations

from enum import StrEnum
from typing import Protocol

from pydantic import BaseModel, ConfigDict, EmailStr, Field

from mastersync.domain.canonical.types import (
    Amount,
    CountryCode,
    CurrencyCode,
    Text,
    vat_prefixed,
)


class _Party(Protocol):
    tax_id: str | None
    country: str | None


def give_vat_prefix(party: _Party) -> None:
    """An EU VAT number without its prefix gets the one of the party's ``country``."""
    prefixed = vat_prefixed(party.tax_id, party.country)
    # Assigned only when it changes: assigning marks the field as set, and a record that
    # named no tax id must not appear to write one (a write check would want its scope).
    if prefixed != party.tax_id:
        party.tax_id = prefixed


class CanonicalModel(BaseModel):
    """Base of every canonical model: unknown fields are errors, text is trimmed (and NFC)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, validate_default=False)


class AddressType(StrEnum):
    """What an address is used for."""

    BILLING = "billing"
    SHIPPING = "shipping"
    REGISTERED = "registered"
    REMIT_TO = "remit_to"
    OTHER = "other"


class Address(CanonicalModel):
    """A postal address."""

    type: AddressType = AddressType.OTHER
    lines: list[Text] = Field(default_factory=list, max_length=4)
    city: Text | None = None
    postal_code: Text | None = None
    region: Text | None = None
    country: CountryCode | None = None


class Contact(CanonicalModel):
    """A person to talk to at a customer or supplier."""

    name: Text | None = None
    role: Text | None = None
    email: EmailStr | None = None
    phone: Text | None = None


class Money(CanonicalModel):
    """An amount in a currency."""

    amount: Amount
    currency: CurrencyCode


class Dimensions(CanonicalModel):
    """Outer dimensions in centimetres."""

    length_cm: Amount | None = Field(default=None, ge=0)
    width_cm: Amount | None = Field(default=None, ge=0)
    height_cm: Amount | None = Field(default=None, ge=0)
