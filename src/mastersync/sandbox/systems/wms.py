"""The WMS: comma CSV in US units (lb, in), its own sites, stock counts by item number."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from mastersync.sandbox.systems import Faults, rng_for, write_csv
from mastersync.sandbox.world import World

_LB = Decimal("2.20462")
_IN = Decimal("2.54")
_STORAGE = {"UN1219": "flammable", "UN1950": "aerosol", "UN3090": "battery"}


def write_wms(world: World, folder: Path, seed: int, faults: Faults) -> dict[str, Path]:
    """Write the WMS exports; returns file name -> path."""
    rng = rng_for(seed, "wms")
    out = {}
    path = folder / "sites.csv"
    write_csv(
        path,
        ["site_code", "site_name", "time_zone", "seq"],
        [[s.code, s.name, s.timezone, 1] for s in world.sites],
    )
    out["sites"] = path

    rows = []
    for it in world.items:
        if rng.random() > 0.95:
            continue
        weight = str((it.net_weight_kg * _LB).quantize(Decimal("0.001")))
        if rng.random() < faults.bad_number:
            weight = "n/a"
        length, width, height = (str((d / _IN).quantize(Decimal("0.01"))) for d in it.dims_cm)
        rows.append(
            [
                it.sku,
                it.gtin,
                it.name_en[:40],
                weight,
                length,
                width,
                height,
                it.hazmat_un or "",
                _STORAGE.get(it.hazmat_un or "", "ambient"),
                it.shelf_life_days or "",
                "Y" if it.lot_controlled else "N",
                rng.randint(1, 500),
            ]
        )
    path = folder / "item_master.csv"
    write_csv(
        path,
        [
            "sku",
            "upc",
            "description",
            "weight_lb",
            "length_in",
            "width_in",
            "height_in",
            "hazmat_un",
            "storage_class",
            "shelf_life_days",
            "lot_tracked",
            "seq",
        ],
        rows,
    )
    out["item_master"] = path

    rows = []
    for it in world.items:
        for site in rng.sample(world.sites[:4], k=rng.randint(1, 3)):
            on_hand = rng.randint(0, 4000)
            allocated = rng.randint(0, on_hand) if on_hand else 0
            sku = it.sku if rng.random() >= faults.unknown_reference else f"Z{rng.randint(1, 9999)}"
            rows.append(
                [
                    sku,
                    site.code,
                    on_hand,
                    allocated,
                    "EA",
                    f"2026-11-2{rng.randint(0, 6)}T0{rng.randint(0, 9)}:15:00",
                    1,
                ]
            )
    path = folder / "inventory.csv"
    write_csv(path, ["sku", "site_code", "on_hand", "allocated", "uom", "counted_at", "seq"], rows)
    out["inventory"] = path
    return out
