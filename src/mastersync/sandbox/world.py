"""The sandbox's ground truth: the real items, companies and sites every system describes."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from decimal import Decimal

from faker import Faker

from mastersync.sandbox.identifiers import gtin13, iban_number, vat_number

# (English name, German name, category, base unit, hazmat UN number, shelf life days)
_PRODUCTS = [
    ("Nitrile gloves", "Nitrilhandschuhe", "PPE", "BX", None, 1825),
    ("Safety goggles", "Schutzbrille", "PPE", "EA", None, None),
    ("Isopropyl alcohol 99%", "Isopropanol 99 %", "Chemicals", "BT", "UN1219", 1095),
    ("Aerosol contact cleaner", "Kontaktreiniger Spray", "Chemicals", "CN", "UN1950", 730),
    ("Pallet stretch film", "Palettenstretchfolie", "Packaging", "RL", None, None),
    ("Cable ties", "Kabelbinder", "Electrical", "PK", None, None),
    ("Copy paper A4", "Kopierpapier A4", "Office", "RM", None, None),
    ("Hand soap", "Flüssigseife", "Hygiene", "BT", None, 900),
    ("Paper towels", "Papierhandtücher", "Hygiene", "PK", None, None),
    ("Hex bolts M8", "Sechskantschrauben M8", "Fasteners", "BX", None, None),
    ("Work gloves leather", "Arbeitshandschuhe Leder", "PPE", "PR", None, None),
    ("Lithium batteries AA", "Lithium-Batterien AA", "Electrical", "PK", "UN3090", 3650),
    ("Cleaning wipes", "Reinigungstücher", "Hygiene", "PK", None, 1095),
    ("Adhesive tape 50 mm", "Klebeband 50 mm", "Packaging", "RL", None, 1460),
    ("Ear plugs", "Gehörschutzstöpsel", "PPE", "BX", None, 1825),
]
_VARIANTS = ["S", "M", "L", "XL", "100", "250", "500", "1 l", "5 l", "blue", "black", "clear"]
_BRANDS = [
    "Würth",
    "3M",
    "Ansell",
    "Tork",
    "Kärcher",
    "Uvex",
    "Tesa",
    "Varta",
    "Fischer",
    "Hartmann",
    "Lyreco",
    "Élan",
    "Nordlys",
    "Señor Clean",
    "Żubr",
]
# Country -> Faker locale, currency, time zone.
COUNTRIES = {
    "DE": ("de_DE", "EUR"),
    "AT": ("de_AT", "EUR"),
    "FR": ("fr_FR", "EUR"),
    "NL": ("nl_NL", "EUR"),
    "BE": ("nl_BE", "EUR"),
    "IT": ("it_IT", "EUR"),
    "PL": ("pl_PL", "PLN"),
    "DK": ("da_DK", "DKK"),
}
_TERMS = ["NET30", "NET45", "NET60", "NET14", "PREPAID"]
_SEGMENTS = ["Industrial", "Healthcare", "Food service", "Public sector", "Retail"]
_ROLES = ["Purchasing", "Accounts payable", "Warehouse lead", "Owner", "Facility manager"]


@dataclass
class Item:
    """A real item, as the distributor would describe it with perfect data."""

    sku: str
    gtin: str
    name_en: str
    name_de: str
    description_en: str
    description_de: str
    brand: str
    category: str
    base_uom: str
    case_qty: int
    case_gtin: str
    pallet_qty: int
    list_price: Decimal
    cost_price: Decimal
    net_weight_kg: Decimal
    dims_cm: tuple[Decimal, Decimal, Decimal]
    hazmat_un: str | None
    shelf_life_days: int | None
    lot_controlled: bool
    country_of_origin: str
    hs_code: str
    status: str
    supplier_no: str


@dataclass
class Company:
    """A real company: a customer or a supplier."""

    number: str
    name: str
    legal_name: str
    country: str
    vat: str
    street: str
    postal_code: str
    city: str
    email: str
    phone: str
    website: str
    currency: str
    terms: str
    credit_limit: Decimal
    segment: str
    iban: str
    lead_time_days: int
    contacts: list[tuple[str, str, str, str]] = field(default_factory=list)


@dataclass
class Site:
    """A warehouse or store."""

    code: str
    name: str
    kind: str
    gln: str
    street: str
    postal_code: str
    city: str
    country: str
    timezone: str


@dataclass
class World:
    """Everything that exists, before any system gets it slightly wrong."""

    items: list[Item]
    customers: list[Company]
    suppliers: list[Company]
    sites: list[Site]


def _company(number: str, rng: random.Random, fakers: dict[str, Faker]) -> Company:
    country = rng.choice(list(COUNTRIES))
    fake = fakers[country]
    name = fake.company()
    base = name.split(",")[0]
    contacts = []
    for _ in range(rng.randint(1, 3)):
        person = fake.name()
        user = "".join(ch for ch in person.lower().split()[-1] if ch.isalpha() and ch.isascii())
        domain = "".join(ch for ch in base.lower() if ch.isalnum() and ch.isascii())[:18] or "co"
        contacts.append(
            (person, f"{user or 'info'}@{domain}.example", fake.phone_number(), rng.choice(_ROLES))
        )
    domain = contacts[0][1].split("@")[1]
    return Company(
        number=number,
        name=base,
        legal_name=name,
        country=country,
        vat=vat_number(country, rng),
        street=fake.street_address().replace("\n", " "),
        postal_code=fake.postcode(),
        city=fake.city(),
        email=f"orders@{domain}",
        phone=fake.phone_number(),
        website=f"https://www.{domain}",
        currency=COUNTRIES[country][1],
        terms=rng.choice(_TERMS),
        credit_limit=Decimal(rng.choice([5000, 10000, 25000, 50000, 100000, 250000])),
        segment=rng.choice(_SEGMENTS),
        iban=iban_number(country, rng),
        lead_time_days=rng.randint(2, 45),
        contacts=contacts,
    )


def _item(n: int, rng: random.Random, suppliers: list[Company]) -> Item:
    en, de, category, uom, hazmat, shelf = rng.choice(_PRODUCTS)
    variant = rng.choice(_VARIANTS)
    brand = rng.choice(_BRANDS)
    cost = Decimal(rng.randint(50, 25000)) / 100
    weight = Decimal(rng.randint(20, 12000)) / 1000
    return Item(
        sku=f"A{100000 + n}",
        gtin=gtin13(rng),
        name_en=f"{brand} {en} {variant}",
        name_de=f"{brand} {de} {variant}",
        description_en=f"{en} ({variant}) by {brand}, for professional use.",
        description_de=f"{de} ({variant}) von {brand}, für den professionellen Einsatz.",
        brand=brand,
        category=category,
        base_uom=uom,
        case_qty=rng.choice([6, 10, 12, 24, 50]),
        case_gtin=gtin13(rng, "41"),
        pallet_qty=rng.choice([40, 60, 80, 120]) * 10,
        list_price=(cost * Decimal("1.45")).quantize(Decimal("0.01")),
        cost_price=cost,
        net_weight_kg=weight,
        dims_cm=(
            Decimal(rng.randint(5, 60)),
            Decimal(rng.randint(5, 40)),
            Decimal(rng.randint(2, 30)),
        ),
        hazmat_un=hazmat,
        shelf_life_days=shelf,
        lot_controlled=shelf is not None,
        country_of_origin=rng.choice(["DE", "PL", "CN", "IT", "US", "CZ", "MY"]),
        hs_code=rng.choice(["401519", "900490", "290512", "340290", "392010", "482010"]),
        status=rng.choices(["A", "N", "D"], weights=[85, 8, 7])[0],
        supplier_no=rng.choice(suppliers).number,
    )


def build_world(
    seed: int = 7, *, items: int = 1200, customers: int = 800, suppliers: int = 120
) -> World:
    """A reproducible world of the given size."""
    rng = random.Random(seed)
    fakers: dict[str, Faker] = {}
    for country, (locale, _) in COUNTRIES.items():
        fake = Faker(locale)
        fake.seed_instance(seed + len(fakers))
        fakers[country] = fake
    supplier_list = [_company(f"7{10000 + i}", rng, fakers) for i in range(suppliers)]
    customer_list = [_company(f"1{100000 + i}", rng, fakers) for i in range(customers)]
    item_list = [_item(i, rng, supplier_list) for i in range(items)]
    sites = [
        Site(
            "DC01",
            "Zentrallager Kassel",
            "distribution_center",
            gtin13(rng, "42")[:13],
            "Industriestraße 12",
            "34123",
            "Kassel",
            "DE",
            "Europe/Berlin",
        ),
        Site(
            "DC02",
            "Entrepôt Lyon",
            "warehouse",
            gtin13(rng, "30"),
            "12 Rue de l'Industrie",
            "69007",
            "Lyon",
            "FR",
            "Europe/Paris",
        ),
        Site(
            "DC03",
            "Magazyn Łódź",
            "warehouse",
            gtin13(rng, "59"),
            "ul. Składowa 7",
            "90-127",
            "Łódź",
            "PL",
            "Europe/Warsaw",
        ),
        Site(
            "3PL1",
            "Rotterdam 3PL (Blue Harbor)",
            "third_party",
            gtin13(rng, "87"),
            "Waalhaven Z.z. 44",
            "3089 JH",
            "Rotterdam",
            "NL",
            "Europe/Amsterdam",
        ),
        Site(
            "ST01",
            "Trade counter München",
            "store",
            gtin13(rng, "42"),
            "Lindwurmstraße 88",
            "80337",
            "München",
            "DE",
            "Europe/Berlin",
        ),
    ]
    return World(item_list, customer_list, supplier_list, sites)
