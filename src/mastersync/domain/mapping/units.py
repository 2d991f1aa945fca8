"""Unit conversion factors from pint, computed once per unit pair."""

from __future__ import annotations

from decimal import Decimal
from functools import cache
from typing import Any

from mastersync.domain.problems import ConfigError

# UN/ECE Recommendation 20 codes and ERP abbreviations -> pint unit names.
UNIT_ALIASES: dict[str, str] = {
    "KGM": "kilogram",
    "KG": "kilogram",
    "KGS": "kilogram",
    "GRM": "gram",
    "G": "gram",
    "GR": "gram",
    "MGM": "milligram",
    "LBR": "pound",
    "LB": "pound",
    "LBS": "pound",
    "ONZ": "ounce",
    "OZ": "ounce",
    "TNE": "metric_ton",
    "MTR": "meter",
    "M": "meter",
    "CMT": "centimeter",
    "CM": "centimeter",
    "MMT": "millimeter",
    "MM": "millimeter",
    "INH": "inch",
    "IN": "inch",
    "FOT": "foot",
    "FT": "foot",
    "YRD": "yard",
    "LTR": "liter",
    "L": "liter",
    "MLT": "milliliter",
    "ML": "milliliter",
    "GLL": "gallon",
    "GAL": "gallon",
    "MTQ": "meter**3",
    "CMQ": "centimeter**3",
}


@cache
def _registry() -> Any:
    # Imported lazily: building pint's registry costs ~0.2 s and most runs convert nothing.
    import pint

    return pint.UnitRegistry()


def unit_name(code: str) -> str:
    """The pint name of a unit code, accepting Rec 20 codes and common abbreviations."""
    return UNIT_ALIASES.get(code.strip().upper(), code.strip())


@cache
def conversion_factor(source: str, target: str) -> Decimal:
    """Multiply a value in ``source`` units by this to express it in ``target`` units."""
    import pint

    ureg = _registry()
    try:
        magnitude = ureg.Quantity(1, unit_name(source)).to(unit_name(target)).magnitude
    except pint.errors.UndefinedUnitError as exc:
        raise ConfigError(f"unknown unit {exc.unit_names!r}") from None
    except pint.errors.DimensionalityError:
        raise ConfigError(
            f"cannot convert {source!r} to {target!r}: different dimensions"
        ) from None
    except Exception:
        # pint's parser fails in several ways on text that is no unit at all: TypeError,
        # ValueError, KeyError on "stone-ish", an AssertionError on a NUL character.
        raise ConfigError(f"cannot read {source!r} or {target!r} as a unit") from None
    # Twelve significant digits keep factors exact for every unit a distributor uses.
    return Decimal(f"{magnitude:.12g}")
