"""The demo: write the sandbox estate's files, then load them in dependency order."""

from __future__ import annotations

import errno
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from mastersync.connectors.files.readers import count_records
from mastersync.connectors.files.settings import file_settings, open_records
from mastersync.domain.landscape.policy import CompiledLandscape
from mastersync.pipeline.ingest import BatchReport, Ingestor
from mastersync.sandbox.systems import Faults
from mastersync.sandbox.systems.crm import write_crm
from mastersync.sandbox.systems.erp import write_erp
from mastersync.sandbox.systems.pim import write_pim
from mastersync.sandbox.systems.shop import write_shop
from mastersync.sandbox.systems.wms import write_wms
from mastersync.sandbox.world import build_world

# (system, domain, file): references must exist before what refers to them.
PLAN = [
    ("erp", "location", "locations.csv"),
    ("wms", "location", "sites.csv"),
    ("erp", "supplier", "suppliers.csv"),
    ("erp", "item", "items.csv"),
    ("pim", "item", "products.jsonl"),
    ("wms", "item", "item_master.csv"),
    ("shop", "item", "products.jsonl"),
    ("erp", "customer", "customers.csv"),
    ("crm", "customer", "accounts.jsonl"),
    ("shop", "customer", "customers.jsonl"),
    ("erp", "price", "prices.csv"),
    ("wms", "inventory", "inventory.csv"),
    ("erp", "item", "items_delta.csv"),
]


@dataclass
class Step:
    """One file to load."""

    system: str
    domain: str
    path: Path

    @property
    def records(self) -> int | None:
        """How many records the file holds (for progress)."""
        return count_records(self.path)


def write_landscape(target: Path, *, replace: bool = True) -> Path:
    """Copy the sandbox landscape (landscape.yaml + mappings/) into ``target``."""
    source = resources.files("mastersync.sandbox") / "landscape"
    with resources.as_file(source) as folder:
        names = [
            Path("landscape.yaml"),
            *(p.relative_to(folder) for p in sorted((folder / "mappings").rglob("*.yaml"))),
        ]
        if not replace:
            # FileExistsError naming the first file there, raised before any is written:
            # `init` must not replace mapping files someone has edited.
            for name in names:
                if (target / name).exists():
                    raise FileExistsError(errno.EEXIST, "exists", str(target / name))
        for name in names:
            parent = (target / name).parent
            try:
                parent.mkdir(parents=True, exist_ok=True)
            except FileExistsError:
                # A file where the folder goes: FileExistsError means a landscape file here.
                raise NotADirectoryError(errno.ENOTDIR, "not a folder", str(parent)) from None
            shutil.copy(folder / name, target / name)
    return target / "landscape.yaml"


def write_data(
    target: Path, *, seed: int = 7, scale: float = 1.0, faults: Faults | None = None
) -> list[Step]:
    """Generate every system's files under ``target/data``; returns the load plan."""
    faults = faults or Faults()
    world = build_world(
        seed,
        items=max(10, int(1200 * scale)),
        customers=max(10, int(800 * scale)),
        suppliers=max(5, int(120 * scale)),
    )
    data = target / "data"
    writers = {
        "erp": write_erp,
        "crm": write_crm,
        "pim": write_pim,
        "wms": write_wms,
        "shop": write_shop,
    }
    for system, write in writers.items():
        write(world, data / system, seed, faults)
    return [Step(system, domain, data / system / name) for system, domain, name in PLAN]


def load(
    ingestor: Ingestor,
    landscape: CompiledLandscape,
    steps: list[Step],
    progress: Callable[[Step, int], None] | None = None,
) -> list[BatchReport]:
    """Ingest every step's file with its system's file settings."""
    reports = []
    for step in steps:
        settings = file_settings(landscape.config.systems[step.system].connector)
        records = open_records(step.path, settings)

        def tick(n: int, step: Step = step) -> None:
            if progress is not None:
                progress(step, n)

        reports.append(
            ingestor.ingest(
                step.system, step.domain, records, source=str(step.path.name), progress=tick
            )
        )
    return reports
