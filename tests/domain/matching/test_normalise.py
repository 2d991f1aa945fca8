"""Normalisers: each cleaning rule on real-world spellings."""

from __future__ import annotations

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from mastersync.domain.matching import normalise as n
from mastersync.domain.matching.normalise import compile_normalisers
from mastersync.domain.matching.vocab import (
    LEGAL_FORM_PREFIXES,
    LEGAL_FORM_SUFFIXES,
    STREET_WORDS,
)
from mastersync.domain.problems import ConfigError


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("  Müller   & Söhne ", "muller sohne"),
        ("O'Brien-Smith", "obrien smith"),
        ("Łódź Straße", "lodz strasse"),
        ("ÆRØ", "aero"),
        ("", ""),
    ],
)
def test_text(raw: str, clean: str) -> None:
    assert n.text(raw) == clean


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("ACME GmbH & Co. KG", "acme"),
        ("Acme GmbH", "acme"),
        ("ACME G.m.b.H.", "acme"),
        ("Foo Holdings Co., Ltd.", "foo holdings"),
        ("Müller S.p.A.", "muller"),
        ("Rossi S.r.l.", "rossi"),
        ("Dupont SARL", "dupont"),
        ("Dupont S.à r.l.", "dupont"),
        ("Philips N.V.", "philips"),
        ("Shell B.V.", "shell"),
        ("Nordic A/S", "nordic"),
        ("Volvo AB", "volvo"),
        ("Nokia Oyj", "nokia"),
        ("Kowalski Sp. z o.o.", "kowalski"),
        ("Acme Inc.", "acme"),
        ("Acme Corporation", "acme"),
        ("Smith & Co", "smith"),
        ("Procter & Gamble Co", "procter gamble"),
        ("Procter and Gamble", "procter gamble"),
        ("OOO Romashka", "romashka"),
        ("Telefonica S.A.", "telefonica"),
        ("Bimbo S.A. de C.V.", "bimbo"),
        ("Tata Pvt Ltd", "tata"),
        # A name that is nothing but a legal form stays itself.
        ("AG", "ag"),
        ("Limited", "limited"),
    ],
)
def test_legal_forms(raw: str, clean: str) -> None:
    assert n.legal_form(raw) == clean


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("Hauptstraße 5", "hauptst 5"),
        ("Hauptstrasse 5", "hauptst 5"),
        ("Hauptstr. 5", "hauptst 5"),
        ("123 Main Street", "123 main st"),
        ("123 Main St.", "123 main st"),
        ("Fifth Avenue 1", "fifth ave 1"),
        ("Avenida de Mayo", "ave de mayo"),
        ("Boulevard Haussmann", "blvd haussmann"),
        ("Piazza Duomo", "pza duomo"),
        ("Via Roma, 10", "via roma 10"),
    ],
)
def test_street(raw: str, clean: str) -> None:
    assert n.street(raw) == clean


@pytest.mark.parametrize(
    ("raw", "region", "clean"),
    [
        ("030 1234567", "DE", "+49301234567"),
        ("+49 (0)30 1234567", None, "+49301234567"),
        ("+49 30 1234567", "FR", "+49301234567"),
        ("(415) 555-2671", "US", "+14155552671"),
        ("020 7946 0958", "GB", "+442079460958"),
        # No region and not international: the digits still meet other spellings.
        ("555-2671", None, "5552671"),
        ("n/a", "DE", None),
    ],
)
def test_phone_e164(raw: str, region: str | None, clean: str | None) -> None:
    assert n.phone(raw, region) == clean


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("John.Doe+news@GoogleMail.com", "johndoe@gmail.com"),
        ("j.o.h.n.doe@gmail.com", "johndoe@gmail.com"),
        # Only Gmail ignores dots and tags; elsewhere they may be distinct mailboxes.
        ("John.Doe+news@Example.com", "john.doe+news@example.com"),
        ("not-an-address", "not-an-address"),
    ],
)
def test_email(raw: str, clean: str) -> None:
    assert n.email(raw) == clean


def test_identifiers() -> None:
    assert n.gtin("4006381333931") == "04006381333931"
    assert n.gtin("9638-5074") == "00000096385074"
    assert n.gtin("12345") is None
    assert n.postal_code(" sw1a 1aa ") == "SW1A1AA"
    assert n.postal_code("80-331") == "80331"
    assert n.alnum("de 123.456-789") == "DE123456789"
    assert n.digits("+49 (30) 12") == "493012"
    assert n.email_domain("x@Acme.com") == "acme.com"


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("Robert", "R163"),
        ("Rupert", "R163"),
        ("Ashcraft", "A261"),
        ("Tymczak", "T522"),
        ("Pfister", "P236"),
        ("Müller", "M460"),
        ("Lee", "L000"),
        ("123", None),
    ],
)
def test_soundex(raw: str, code: str | None) -> None:
    assert n.soundex(raw) == code


def test_dates() -> None:
    assert n.iso_date("19151111") == "1915-11-11"
    assert n.iso_date("2020-01-02T10:00:00Z") == "2020-01-02"
    assert n.iso_date("02.01.2020") == "2020-01-02"
    # Not a real date, but its shape is kept so a typo still compares closely.
    assert n.iso_date("19151311") == "1915-13-11"
    assert n.iso_date("yesterday") is None


def test_chains_with_arguments() -> None:
    prefix = compile_normalisers(["legal_form", "first(3)"])
    assert prefix("Schneider Logistik GmbH", None) == "sch"
    tail = compile_normalisers(["phone", "last(7)"])
    assert tail("030 1234567", "DE") == "1234567"
    assert compile_normalisers(["sorted_tokens"])("smith john", None) == "john smith"
    # Nothing left is None, never an empty string (empty keys would block everything).
    assert compile_normalisers(["digits"])("n/a", None) is None
    assert compile_normalisers([])("  x ", None) == "x"


@pytest.mark.parametrize(
    ("names", "message", "loc"),
    [
        (["txet"], "unknown normaliser 'txet'; did you mean 'text'?", ("p", 0)),
        (["text", "first"], "normaliser 'first' needs a positive length", ("p", 1)),
        (["first(0)"], "normaliser 'first(0)' needs a positive length", ("p", 0)),
        (["text(2)"], "normaliser 'text' takes no argument", ("p", 0)),
    ],
)
def test_normaliser_mistakes(names: list[str], message: str, loc: tuple[str, int]) -> None:
    with pytest.raises(ConfigError) as caught:
        compile_normalisers(names, ("p",))
    assert caught.value.message.startswith(message)
    assert caught.value.loc == loc


_ANY_TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=20)


@settings(max_examples=500)
@given(_ANY_TEXT)
@example("\U0001d400\U0001d402\U0001d40c\U0001d404 GmbH")  # mathematical bold capitals
@example("\uff21\uff23\uff2d\uff25 Street")  # fullwidth "ACME"
@example("0:Æ&")  # "&" hid the legal form "AE" from the first clean-up, not the second
@example("AO & PP piazzale")  # two legal-form prefixes: one pass stripped one
def test_text_clean_ups_are_stable_and_lower_case(value: str) -> None:
    """What a clean-up returns, cleaned up again, stays as it is: otherwise the same name
    stored cleaned and arriving raw would not meet. NFKD turns compatibility letters into
    capitals, so folding happens after it too."""
    for clean in (n.text, n.legal_form, n.street):
        once = clean(value)
        assert clean(once) == once
        assert once == once.casefold()


def test_fullwidth_and_styled_letters_meet_their_plain_spelling() -> None:
    assert n.text("\uff21\uff23\uff2d\uff25") == n.text("acme") == "acme"
    assert n.legal_form("\U0001d400\U0001d402\U0001d40c\U0001d404 GmbH") == "acme"


# Names made of the words the clean-ups act on: legal forms, street words, "&" and "and",
# accents and compatibility letters, joined by spaces and punctuation. Random text seldom
# holds two of them, which is where a clean-up that is not stable hides.
_WORDS = st.sampled_from(
    [
        *LEGAL_FORM_SUFFIXES,
        *LEGAL_FORM_PREFIXES,
        *STREET_WORDS,
        *STREET_WORDS.values(),
        "&",
        "and",
        "Æ",
        "ß",
        "Müller",
        "Straße",
        "0",
        "acme",
        "\u2019",
        "\uff21\uff22",
        "\ufb01",
    ]
)
_NAMES = st.lists(
    st.tuples(_WORDS, st.sampled_from([" ", "", ",", ".", " & ", "-"])), min_size=1, max_size=5
).map(lambda parts: "".join(w + sep for w, sep in parts))


@settings(max_examples=500)
@given(_NAMES)
def test_clean_ups_of_names_made_of_legal_forms_and_street_words_are_stable(value: str) -> None:
    for clean in (n.text, n.legal_form, n.street):
        once = clean(value)
        assert clean(once) == once, (clean.__name__, once)
