"""Valid identifiers for generated data: GTINs, VAT numbers, IBANs (checked by python-stdnum)."""

from __future__ import annotations

import random

from stdnum import ean, iban, luhn
from stdnum.at import uid
from stdnum.eu import vat as eu_vat
from stdnum.iso7064 import mod_11_10

# country -> (VAT prefix, digits); France is built from a SIREN below.
_VAT_SHAPES = {
    "DE": ("DE", 9),
    "NL": ("NL", 9),
    "IT": ("IT", 11),
    "PL": ("PL", 10),
    "BE": ("BE0", 9),
    "AT": ("ATU", 8),
    "DK": ("DK", 8),
}
# country -> BBAN length in digits (numeric BBANs only, which keeps generation simple).
_BBAN_DIGITS = {"DE": 18, "AT": 16, "DK": 14, "PL": 24}


def gtin13(rng: random.Random, prefix: str = "40") -> str:
    """A GTIN-13 with a correct check digit."""
    body = prefix + "".join(rng.choice("0123456789") for _ in range(12 - len(prefix)))
    return body + ean.calc_check_digit(body)


def corrupt_check_digit(code: str) -> str:
    """The same GTIN with a wrong check digit (for fault injection)."""
    return code[:-1] + str((int(code[-1]) + 1 + int(code[0])) % 10 or 1)


def _digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(n))


def _constructed_vat(country: str, rng: random.Random) -> str | None:
    """Build the VAT number from its check-digit rule where python-stdnum has the rule."""
    if country == "DE":
        body = rng.choice("123456789") + _digits(rng, 7)
        return f"DE{body}{mod_11_10.calc_check_digit(body)}"
    if country == "IT":
        body = _digits(rng, 7) + "001"
        return f"IT{body}{luhn.calc_check_digit(body)}"
    if country == "BE":
        be_number = int("0" + rng.choice("23456789") + _digits(rng, 6))
        return f"BE{be_number:08d}{97 - be_number % 97:02d}"
    if country == "AT":
        body = _digits(rng, 7)
        return f"ATU{body}{uid.calc_check_digit(body)}"
    if country == "FR":
        body = rng.choice("123456789") + _digits(rng, 7)
        number = body + luhn.calc_check_digit(body)
        return f"FR{(12 + 3 * (int(number) % 97)) % 97:02d}{number}"
    return None


def vat_number(country: str, rng: random.Random) -> str:
    """A VAT number that passes the country's checksum."""
    candidate = _constructed_vat(country, rng)
    if candidate is not None and eu_vat.is_valid(candidate):
        return candidate
    prefix, digits = _VAT_SHAPES.get(country, _VAT_SHAPES["DE"])
    for _ in range(10_000):
        candidate = prefix + _digits(rng, digits)
        if country == "NL":
            candidate += "B01"
        if eu_vat.is_valid(candidate):
            return candidate
    raise RuntimeError(f"could not generate a VAT number for {country}")


def iban_number(country: str, rng: random.Random) -> str:
    """An IBAN with correct check digits and a numeric BBAN of the country's length."""
    if country not in _BBAN_DIGITS:
        country = "DE"
    bban = _digits(rng, _BBAN_DIGITS[country])
    candidate = country + iban.calc_check_digits(country + "00" + bban) + bban
    if not iban.is_valid(candidate):
        raise RuntimeError(f"generated an invalid IBAN {candidate}")
    return candidate
