"""Normalisers: turn one raw value into the form that is compared or blocked on.

Each normaliser takes the value and the record's country (the default region for phone
numbers) and returns the cleaned text, or None when nothing usable is left. They are named in
configuration, optionally with a number argument: ``text``, ``legal_form``, ``first(3)``.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from datetime import date
from difflib import get_close_matches

import phonenumbers

from mastersync.domain.matching.vocab import (
    GMAIL_DOMAINS,
    LEGAL_FORM_PREFIXES,
    LEGAL_FORM_SUFFIXES,
    STREET_SUFFIXES,
    STREET_WORDS,
)
from mastersync.domain.problems import ConfigError

Normaliser = Callable[[str, str | None], str | None]

# Letters that NFKD does not decompose into a base letter plus accents.
_UNDECOMPOSABLE = str.maketrans(
    {
        "ø": "o",
        "æ": "ae",
        "œ": "oe",
        "ł": "l",
        "đ": "d",
        "ð": "d",
        "þ": "th",
        "\u0131": "i",
        "ß": "ss",
    }
)
# Apostrophes: ASCII, right single quotation mark, grave and acute accents.
_APOSTROPHES = re.compile("['\u2019`\u00b4]")
_PUNCTUATION = re.compile(r"[^\w\s]|_")
# Legal forms are spotted on a lighter clean-up: dots and slashes join ("S.p.A." -> "spa",
# "A/S" -> "as") so abbreviations written with or without them meet.
_JOINERS = re.compile("['\u2019`\u00b4./]")
_NON_DIGIT = re.compile(r"\D")
_PHONE_SEPARATORS = re.compile(r"[\s.\-/]")
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_ARGUMENT = re.compile(r"^([a-z_]+)(?:\((\d+)\))?$")
# Distinct raw values remembered per normaliser chain before the memory starts over.
_CACHE_SIZE = 65_536


def strip_accents(value: str) -> str:
    """Remove accents ("Müller" -> "Muller"); plain ASCII passes through untouched."""
    if value.isascii():
        return value
    decomposed = unicodedata.normalize("NFKD", value.translate(_UNDECOMPOSABLE))
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def _fold(value: str) -> str:
    """Case-folded without accents; folded again after NFKD, which turns compatibility
    letters into capitals (fullwidth or mathematical "A" -> "A")."""
    folded = value.casefold()
    return folded if folded.isascii() else strip_accents(folded).casefold()


def text(value: str) -> str:
    """Case-fold, strip accents and punctuation, collapse whitespace: the base clean-up."""
    folded = _fold(value)
    return " ".join(_PUNCTUATION.sub(" ", _APOSTROPHES.sub("", folded)).split())


def _legal_tokens(value: str) -> list[str]:
    folded = _fold(value).replace("&", " and ")
    tokens = _PUNCTUATION.sub(" ", _JOINERS.sub("", folded)).split()
    # "&" is spelt "and" so that "Smith & Co" meets "Smith and Co"; as a word it says
    # nothing, and is left out before legal forms are looked for: left in, it hid a form
    # behind it ("X AE &"), which the clean-up of the result then stripped (not stable).
    return [t for t in tokens if t != "and"] or tokens


_SUFFIXES = frozenset(tuple(_legal_tokens(form)) for form in LEGAL_FORM_SUFFIXES)
_PREFIXES = frozenset(t for form in LEGAL_FORM_PREFIXES for t in _legal_tokens(form))
_LONGEST = max(len(s) for s in _SUFFIXES)


def legal_form(value: str) -> str:
    """``text`` without company legal forms ("ACME GmbH & Co. KG" -> "acme")."""
    tokens = _legal_tokens(value)
    # Several forms can stack ("Foo Holdings Co., Ltd.", "OOO PP Foo"): strip from the end
    # and the start until none is left, but never the whole name ("AG" alone stays "ag").
    # To the end, not one pass: what one pass left would be stripped when the result is
    # cleaned again, and a name stored cleaned would not meet itself arriving raw.
    while True:
        size_before = len(tokens)
        for size in range(min(_LONGEST, len(tokens) - 1), 0, -1):
            if tuple(tokens[-size:]) in _SUFFIXES:
                del tokens[-size:]
                break
        if len(tokens) > 1 and tokens[0] in _PREFIXES:
            del tokens[0]
        if len(tokens) == size_before:
            return " ".join(tokens)


def street(value: str) -> str:
    """``text`` with street-type words contracted one way ("Main Street" -> "main st")."""
    out = []
    for token in text(value).split():
        short = STREET_WORDS.get(token)
        if short is None:
            short = token
            for suffix, code in STREET_SUFFIXES:
                if token.endswith(suffix) and len(token) > len(suffix) + 2:
                    short = token[: -len(suffix)] + code
                    break
        out.append(short)
    return " ".join(out)


def phone(value: str, region: str | None) -> str | None:
    """E.164 ("+4930123456") with the record's country as default region; else the digits."""
    compact = _PHONE_SEPARATORS.sub("", value)
    if _E164.match(compact):
        # Already international and without a trunk prefix such as "(0)": parsing it with
        # phonenumbers (tens of microseconds) would give back the same digits.
        return compact
    try:
        number = phonenumbers.parse(value, region.upper() if region else None)
        if phonenumbers.is_possible_number(number):
            return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    except phonenumbers.NumberParseException:
        pass
    # No region or an impossible number: the digits still match other spellings of it.
    digits = _NON_DIGIT.sub("", value)
    if not digits:
        return None
    return "+" + digits if value.lstrip().startswith("+") else digits


def email(value: str) -> str | None:
    """Lower-case address; for Gmail, dots and "+tag" in the local part are dropped."""
    address = value.strip().lower()
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain:
        return address or None
    if domain in GMAIL_DOMAINS:
        local = local.split("+", 1)[0].replace(".", "")
        domain = "gmail.com"
    return f"{local}@{domain}"


def email_domain(value: str) -> str | None:
    """The domain of an address ("acme.com")."""
    canonical = email(value)
    return canonical.rpartition("@")[2] or None if canonical else None


def gtin(value: str) -> str | None:
    """GTIN-8/12/13/14 as 14 digits (GS1's storage form); other shapes are not GTINs."""
    digits = _NON_DIGIT.sub("", value)
    return digits.zfill(14) if len(digits) in (8, 12, 13, 14) else None


def postal_code(value: str) -> str:
    """Upper case without spaces or dashes ("sw1a 1aa" -> "SW1A1AA")."""
    return "".join(ch for ch in value.upper() if ch.isalnum())


def alnum(value: str) -> str:
    """Upper-case letters and digits only: identifiers such as tax ids and SKUs."""
    return "".join(ch for ch in strip_accents(value).upper() if ch.isalnum())


def digits(value: str) -> str:
    """The digits only."""
    return _NON_DIGIT.sub("", value)


def iso_date(value: str) -> str | None:
    """A date as YYYY-MM-DD from ISO, ISO with time, YYYYMMDD or DD.MM.YYYY text.

    Eight digits that are no valid date keep their shape, so a typo still compares closely.
    """
    raw = value.strip()
    if len(raw) >= 10 and raw[4] == "-" and raw[7] == "-":
        raw = raw[:10].replace("-", "")
    elif len(raw) == 10 and raw[2] == "." and raw[5] == ".":
        raw = raw[6:] + raw[3:5] + raw[:2]
    if len(raw) != 8 or not (raw.isascii() and raw.isdigit()):
        return None
    return f"{raw[:4]}-{raw[4:6]}-{raw[6:]}"


def parse_date(value: str) -> date | None:
    """A YYYY-MM-DD string as a date, or None when it is no real date."""
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def sorted_tokens(value: str) -> str:
    """Words in alphabetical order, so "Smith John" meets "John Smith"."""
    return " ".join(sorted(value.split()))


_SOUNDEX = {
    ch: code
    for letters, code in (
        ("bfpv", "1"),
        ("cgjkqsxz", "2"),
        ("dt", "3"),
        ("l", "4"),
        ("mn", "5"),
        ("r", "6"),
    )
    for ch in letters
}


def soundex(value: str) -> str | None:
    """American Soundex of the letters ("Robert" -> "R163"); a phonetic blocking key."""
    letters = [ch for ch in text(value) if "a" <= ch <= "z"]
    if not letters:
        return None
    out = [letters[0].upper()]
    last = _SOUNDEX.get(letters[0], "")
    for ch in letters[1:]:
        code = _SOUNDEX.get(ch, "")
        if code and code != last:
            out.append(code)
            if len(out) == 4:
                break
        # Vowels separate two equal codes ("Tymczak"); h and w do not ("Ashcraft").
        if ch not in "hw":
            last = code
    return "".join(out).ljust(4, "0")


def _memoised(fn: Normaliser, regional: bool) -> Normaliser:
    # Master data repeats itself (cities, first names, brands): remembering recent results
    # halves the cost of preparing records. Only phone numbers depend on the region.
    cache: dict[object, str | None] = {}

    def cached(value: str, region: str | None) -> str | None:
        key: object = (value, region) if regional else value
        try:
            return cache[key]
        except KeyError:
            pass
        out = fn(value, region)
        if len(cache) >= _CACHE_SIZE:
            cache.clear()
        cache[key] = out
        return out

    return cached


def _plain(fn: Callable[[str], str | None]) -> Callable[[int | None], Normaliser]:
    def make(arg: int | None) -> Normaliser:
        return lambda value, region: fn(value)

    return make


def _shared(fn: Callable[[str], str | None]) -> Callable[[int | None], Normaliser]:
    # One memory per costly normaliser, shared by every chain using it: the name is cleaned
    # for its comparison and again for two blocking keys, but computed once.
    cached = _memoised(lambda value, region: fn(value), regional=False)

    def make(arg: int | None) -> Normaliser:
        return cached

    return make


def _first(arg: int | None) -> Normaliser:
    n = arg or 1
    return lambda value, region: value[:n]


def _last(arg: int | None) -> Normaliser:
    n = arg or 1
    return lambda value, region: value[-n:]


def _phone(arg: int | None) -> Normaliser:
    return _shared_phone


# name -> (factory, whether it takes a number argument)
NORMALISERS: dict[str, tuple[Callable[[int | None], Normaliser], bool]] = {
    "text": (_shared(text), False),
    "casefold": (_plain(str.casefold), False),
    "strip_accents": (_plain(strip_accents), False),
    "strip_punctuation": (_plain(lambda v: _PUNCTUATION.sub(" ", _APOSTROPHES.sub("", v))), False),
    "collapse_whitespace": (_plain(lambda v: " ".join(v.split())), False),
    "legal_form": (_shared(legal_form), False),
    "street": (_shared(street), False),
    "phone": (_phone, False),
    "email": (_shared(email), False),
    "email_domain": (_plain(email_domain), False),
    "gtin": (_plain(gtin), False),
    "postal_code": (_plain(postal_code), False),
    "alnum": (_plain(alnum), False),
    "digits": (_plain(digits), False),
    "date": (_plain(iso_date), False),
    "sorted_tokens": (_plain(sorted_tokens), False),
    "soundex": (_shared(soundex), False),
    "first": (_first, True),
    "last": (_last, True),
}


def compile_normalisers(names: Sequence[str], loc: tuple[str | int, ...] = ()) -> Normaliser:
    """One function applying the named normalisers in order; unknown names are config errors."""
    steps: list[Normaliser] = []
    for i, spec in enumerate(names):
        match = _ARGUMENT.match(spec.strip())
        entry = NORMALISERS.get(match.group(1)) if match else None
        if match is None or entry is None:
            close = get_close_matches(spec, list(NORMALISERS), n=1, cutoff=0.5)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(
                f"unknown normaliser {spec!r}{hint} (known: {', '.join(NORMALISERS)})", (*loc, i)
            )
        factory, takes_number = entry
        number = int(match.group(2)) if match.group(2) else None
        if takes_number and not number:
            raise ConfigError(
                f"normaliser {spec!r} needs a positive length, e.g. first(3)", (*loc, i)
            )
        if not takes_number and number is not None:
            raise ConfigError(f"normaliser {match.group(1)!r} takes no argument", (*loc, i))
        steps.append(factory(number))
    if not steps:
        return _identity

    def chain(value: str, region: str | None) -> str | None:
        out = value
        for step in steps:
            cleaned = step(out, region)
            if not cleaned:
                return None
            out = cleaned
        return out

    if len(steps) == 1:
        only = steps[0]
        # Nothing left is None, never "": an empty key would put unrelated records together.
        return lambda value, region: only(value, region) or None
    return chain


_shared_phone = _memoised(phone, regional=True)


def _identity(value: str, region: str | None) -> str | None:
    return value.strip() or None
