"""Value types shared by the canonical models, each validated by a well-kept checker."""

from __future__ import annotations

import datetime as dt
import unicodedata
from collections.abc import Mapping
from decimal import (
    MAX_EMAX,
    MIN_EMIN,
    Context,
    Decimal,
    DivisionByZero,
    InvalidOperation,
    Overflow,
    Rounded,
)
from typing import Annotated, Any

from pydantic import AfterValidator, GetJsonSchemaHandler, PlainSerializer
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, PydanticCustomError
from stdnum import bic as stdnum_bic
from stdnum import ean as stdnum_ean
from stdnum import iban as stdnum_iban
from stdnum.eu import vat as eu_vat
from stdnum.exceptions import ValidationError

# ISO 3166-1 alpha-2 codes in use (plus XK, widely used for Kosovo).
_COUNTRY_CODES = """
AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS
BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE
EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM
HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC
LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA
NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW
SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO
TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS XK YE YT ZA ZM ZW
"""
_COUNTRIES = frozenset(_COUNTRY_CODES.split())

# ISO 4217 codes a distributor meets; the list is closed so typos are caught.
_CURRENCY_CODES = """
AED ARS AUD BGN BRL CAD CHF CLP CNY COP CZK DKK EGP EUR GBP HKD HUF IDR ILS INR ISK JPY KRW MAD
MXN MYR NOK NZD PEN PHP PLN QAR RON RSD SAR SEK SGD THB TRY TWD UAH USD VND ZAR
"""
_CURRENCIES = frozenset(_CURRENCY_CODES.split())


def _gs1_check_digit_ok(digits: str) -> bool:
    # GS1 mod-10, inline: python-stdnum's generic ean.validate costs ~13 us a call and
    # GTINs are on the hot path of every item; stdnum still names the expected digit.
    # Summed as ASCII codes less 48 apiece (the caller passes ASCII digits only): a third
    # of the time of int() per digit.
    codes = digits.encode()
    odd, even = codes[-2::-2], codes[-3::-2]
    total = 3 * (sum(odd) - 48 * len(odd)) + sum(even) - 48 * len(even)
    return (10 - total % 10) % 10 == codes[-1] - 48


def _gtin(value: str) -> str:
    digits = value.replace(" ", "").replace("-", "")
    # isascii too: isdigit() is true for other scripts' digits ('٤', '²') as well.
    if not (digits.isascii() and digits.isdigit()) or len(digits) not in (8, 12, 13, 14):
        raise PydanticCustomError(
            "gtin_format", "GTIN must have 8, 12, 13 or 14 digits, got {value}", {"value": value}
        )
    if not digits.strip("0"):
        # All zeros passes the check digit, but GS1 issues no such GTIN: it is a "no GTIN"
        # placeholder, and as a natural key it joined every unrelated item that carried it.
        raise PydanticCustomError(
            "gtin_zero",
            "GTIN {value} is all zeros: no GTIN is (a placeholder for none)",
            {"value": value},
        )
    if not _gs1_check_digit_ok(digits):
        expected = stdnum_ean.calc_check_digit(digits[:-1])
        raise PydanticCustomError(
            "gtin_check_digit",
            "GTIN {value} has check digit {got}, expected {expected}",
            {"value": digits, "got": digits[-1], "expected": expected},
        )
    # GS1 recommends storing every GTIN as 14 digits; consumers re-shape on the way out.
    return digits.zfill(14)


def _iban(value: str) -> str:
    try:
        return str(stdnum_iban.validate(value))
    except ValidationError as exc:
        raise PydanticCustomError(
            "iban", "IBAN {value} is invalid: {reason}", {"value": value, "reason": str(exc)}
        ) from None


def _bic(value: str) -> str:
    try:
        return str(stdnum_bic.validate(value))
    except ValidationError as exc:
        raise PydanticCustomError(
            "bic", "BIC {value} is invalid: {reason}", {"value": value, "reason": str(exc)}
        ) from None


def _country(value: str) -> str:
    code = value.upper()
    if code not in _COUNTRIES:
        raise PydanticCustomError(
            "country_code", "{value} is not an ISO 3166-1 alpha-2 country code", {"value": value}
        )
    return code


def _currency(value: str) -> str:
    code = value.upper()
    if code not in _CURRENCIES:
        raise PydanticCustomError(
            "currency_code", "{value} is not a known ISO 4217 currency code", {"value": value}
        )
    return code


def _uom(value: str) -> str:
    code = value.upper()
    if not (1 <= len(code) <= 4 and code.isalnum()):
        raise PydanticCustomError(
            "uom_code",
            "{value} is not a unit-of-measure code (1-4 letters or digits)",
            {"value": value},
        )
    return code


def _tax_id(value: str) -> str:
    # Compact form only; checking it needs the country, which is a data-quality rule.
    compact = "".join(ch for ch in value.upper() if ch.isalnum())
    if not compact:
        raise PydanticCustomError(
            "tax_id_format", "tax id {value} has no letters or digits", {"value": value}
        )
    return compact


# python-stdnum's member states (GR among them) and EL, the prefix Greece's VAT numbers use.
_EU_VAT_PREFIXES = frozenset(eu_vat.MEMBER_STATES) | {"el"}


def vat_prefixed(tax_id: str | None, country: str | None) -> str | None:
    """An EU VAT number in one spelling: with its country prefix (from ``country`` when
    it was sent without, if it then checks as that country's VAT number), in
    python-stdnum's compact form (Belgium's leading 0; EL, not GR, for Greece). One
    company's number is then one natural key however a system writes it: an ERP's
    DE136695976 and a CRM's 136695976 with country DE made two golden records. Anything
    that does not check is kept as sent."""
    if not tax_id:
        return tax_id
    # Two letters are a prefix only if they are an EU VAT prefix and the number checks with
    # it: a French number's check characters may be letters (AJ732829320 is FRAJ732829320).
    if tax_id[:2].lower() in _EU_VAT_PREFIXES and eu_vat.is_valid(tax_id):
        candidate = tax_id
    elif country and country.lower() in eu_vat.MEMBER_STATES:
        candidate = ("EL" if country.upper() == "GR" else country.upper()) + tax_id
        if not eu_vat.is_valid(candidate):
            return tax_id
    else:
        return tax_id
    compact = str(eu_vat.compact(candidate))
    return "EL" + compact[2:] if compact.startswith("GR") else compact


# The context amounts are normalised in: 28 digits, the widest exponents. Passed to each
# operation rather than entered with localcontext() per value (and the value's digits
# counted for it): the validator then takes a third of the time, and an item has three
# amounts. Rounded is trapped: a value of more digits than that is normalised again in a
# context as precise as it is (see _normalise_decimal).
_AMOUNTS = Context(
    prec=28,
    Emax=MAX_EMAX,
    Emin=MIN_EMIN,
    traps=[InvalidOperation, DivisionByZero, Overflow, Rounded],
)
_ONE = Decimal(1)


def _normalise_decimal(value: Decimal) -> Decimal:
    if not value.is_finite():
        raise PydanticCustomError(
            "finite_number", "{value} is not a finite number", {"value": value}
        )
    # 1.50 and 1.5 are the same amount: one spelling keeps "no-op" updates from making versions.
    # So are -0 and 0 (and the published schema's pattern for amounts has no sign).
    # normalize() rounds to the context's precision (28 digits, which changed
    # 12345678901234567890.123456789): a context as precise as the value keeps every digit.
    if not value:
        normal = Decimal(0)
    else:
        try:
            normal = value.normalize(_AMOUNTS)
        except Rounded:
            digits = max(28, len(value.as_tuple().digits))
            normal = value.normalize(Context(prec=digits, Emax=MAX_EMAX, Emin=MIN_EMIN))
    if normal.adjusted() >= 24:
        # Beyond any real amount.
        raise PydanticCustomError(
            "number_too_large", "{value} is too large for an amount", {"value": value}
        )
    # Neither rounds here: to_integral_value() only tells a whole number (never signals
    # Rounded), and a whole number under 10^24 has fewer digits than the context holds.
    if normal == normal.to_integral_value(context=_AMOUNTS):
        return normal.quantize(_ONE, context=_AMOUNTS)
    return normal


def _decimal_text(value: Decimal) -> str:
    # str() writes the same text as format(value, "f") at a third of the cost, unless it
    # uses an exponent (1E+2, 1E-7; a context's capitals may make that a lower-case e).
    text = str(value)
    return format(value, "f") if "E" in text or "e" in text else text


# The text _decimal_text writes for a normalised amount other than zero: no leading or
# trailing zeros and at most 24 digits before the point (10^24 is number_too_large).
_NONZERO_TEXT = r"0\.[0-9]*[1-9]|[1-9][0-9]{0,23}(\.[0-9]*[1-9])?"
# Without lookarounds, which not every JSON Schema validator's regex engine has.
_AMOUNT_PATTERNS: dict[tuple[str, object] | None, str] = {
    None: rf"^(0|-?({_NONZERO_TEXT}))$",  # zero is "0", never "-0"
    ("ge", 0): rf"^(0|{_NONZERO_TEXT})$",
    ("gt", 0): rf"^({_NONZERO_TEXT})$",
}


def amount_text_schema(bounds: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON Schema of an amount's text under bounds (ge/gt/le/lt): a pattern."""
    # JSON Schema's minimum and friends apply to numbers only, and amounts go out as text.
    schema: dict[str, Any] = {"type": "string", "pattern": _AMOUNT_PATTERNS[None]}
    for key, bound in bounds.items():
        pattern = _AMOUNT_PATTERNS.get((key, bound))
        if pattern is None:  # no pattern says it: kept, as an extension keyword
            schema[f"x-{key}"] = bound
        else:
            schema["pattern"] = pattern
    return schema


class _AmountTextSchema:
    """The published (serialization) schema of an amount: its text, bounds included."""

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        """Serialization mode: a pattern of the text, with the bounds of a required field."""
        if handler.mode != "serialization":
            return handler(schema)  # what is taken in: numbers too, and any spelling
        # A required field's bounds sit on the inner decimal schema, where pydantic's own
        # serialization schema (a bare string) drops them; an optional field's come later,
        # as "ge"/"gt" on this node (see canonical.DomainSpec.json_schema).
        node: Mapping[str, Any] = schema
        while node.get("type") != "decimal" and "schema" in node:
            node = node["schema"]
        bounds = {key: node[key] for key in ("ge", "gt", "le", "lt") if key in node}
        return {**handler(schema), **amount_text_schema(bounds)}


def _nfc(value: str) -> str:
    # "Müller" with a combining diaeresis (NFD, as macOS and some exports write it) and with
    # the precomposed ü are one name: without this, a re-send in the other form made a
    # new golden version of an unchanged record.
    return unicodedata.normalize("NFC", value)


def _utc(value: dt.datetime) -> dt.datetime:
    # One instant, one value: 10:00+01:00 re-sent as 09:00Z is no change (a new version
    # and event before). A time without a zone is taken as UTC.
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


Instant = Annotated[dt.datetime, AfterValidator(_utc)]

# Surrounding whitespace is stripped by the models themselves (str_strip_whitespace).
Text = Annotated[str, AfterValidator(_nfc)]
GTIN = Annotated[str, AfterValidator(_gtin)]
IBAN = Annotated[str, AfterValidator(_iban)]
BIC = Annotated[str, AfterValidator(_bic)]
CountryCode = Annotated[str, AfterValidator(_country)]
CurrencyCode = Annotated[str, AfterValidator(_currency)]
UomCode = Annotated[str, AfterValidator(_uom)]
TaxId = Annotated[str, AfterValidator(_tax_id)]
# pydantic parses text, ints and floats (0.1 stays 0.1) into Decimal natively.
Amount = Annotated[
    Decimal,
    AfterValidator(_normalise_decimal),
    PlainSerializer(_decimal_text, return_type=str, when_used="json"),
    _AmountTextSchema(),
]
MasterRef = str
