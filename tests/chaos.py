"""The distribution crash scenario, shared by the test (a few kills) and the benchmark (many).

A producer feeds changes at a steady rate while the hub process is killed with SIGKILL at
random moments and restarted. Afterwards, for every record and every consumer: no version
lost, none applied twice, versions applied in increasing order, and the consumer holds the
golden record's latest version.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from mastersync.bootstrap import open_store
from mastersync.connectors.sandbox.target import SandboxTarget
from mastersync.landscape import load_landscape
from mastersync.pipeline.ingest import Ingestor
from mastersync.ports.connector import SourceRecord

LANDSCAPE = """\
name: chaos
systems:
  erp:
    kind: erp
    inbound:
      item:
        key: sku
        version: {from: v, kind: counter}
        fields: {sku: sku, name: name, list_price: {from: price, number: true}}
  shop:
    kind: ecommerce
    connector:
      type: sandbox
      database: shop.db
      faults: {duplicate_ack_rate: 0.05, error_rate: 0.02, seed: 1}
    delivery: {max_attempts: 100, backoff: {initial: 20ms, max: 200ms}, timeout: 2s}
    outbound:
      items: {domain: item, mapping: {fields: {title: name, price: list_price}}}
  wms:
    kind: wms
    connector: {type: sandbox, database: wms.db, faults: {duplicate_ack_rate: 0.05, seed: 2}}
    delivery: {max_attempts: 100, backoff: {initial: 20ms, max: 200ms}, timeout: 2s}
    outbound:
      items: {domain: item, fields: [sku, name]}
"""


@dataclass
class ChaosResult:
    """What the scenario did and found."""

    kills: int = 0
    changes: int = 0
    records: int = 0
    deliveries: int = 0
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    disordered: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No guarantee broken."""
        return not (self.lost or self.duplicated or self.disordered or self.stale)


def _hub(folder: Path, store_url: str, bus: str | None, until_idle: bool) -> list[str]:
    command = [
        sys.executable,
        "-m",
        "mastersync.cli",
        "-l",
        str(folder / "landscape.yaml"),
        "--store",
        store_url,
        "run",
    ]
    if bus:
        command += ["--bus", bus]
    if until_idle:
        command += ["--until-idle", "--timeout", "300"]
    return command


def run_chaos(
    folder: Path,
    store_url: str,
    *,
    bus: str | None = None,
    kills: int = 5,
    records: int = 60,
    rate: float = 100.0,
    seed: int = 1,
) -> ChaosResult:
    """Feed ``rate`` changes a second while killing the hub ``kills`` times; then check."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "landscape.yaml").write_text(LANDSCAPE)
    landscape = load_landscape(folder / "landscape.yaml")
    store = open_store(store_url)
    store.upgrade()
    ingestor = Ingestor(store, landscape, chunk_size=50)
    rng = random.Random(seed)
    result = ChaosResult(records=records)
    versions = [0] * records
    stop = threading.Event()
    errors: list[BaseException] = []

    def produce() -> None:
        try:
            while not stop.is_set():
                batch = []
                for _ in range(max(1, int(rate / 10))):
                    i = rng.randrange(records)
                    versions[i] += 1
                    batch.append(
                        SourceRecord(
                            {
                                "sku": f"S{i:04d}",
                                "v": versions[i],
                                "name": f"item {i} v{versions[i]}",
                                "price": f"{versions[i]}.5",
                            }
                        )
                    )
                ingestor.ingest("erp", "item", batch)
                result.changes += len(batch)
                time.sleep(0.1)
        except BaseException as exc:  # surfaced after the run
            errors.append(exc)

    producer = threading.Thread(target=produce, daemon=True)
    producer.start()
    try:
        for _ in range(kills):
            hub = subprocess.Popen(
                _hub(folder, store_url, bus, False),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            time.sleep(rng.uniform(0.6, 2.0))
            hub.send_signal(signal.SIGKILL)
            hub.wait()
            result.kills += 1
    finally:
        stop.set()
        producer.join(30)
    if errors:
        raise errors[0]
    done = subprocess.run(
        _hub(folder, store_url, bus, True), capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"the final hub run failed: {done.stderr}")
    _check(store, folder, result)
    store.close()
    return result


def _check(store: object, folder: Path, result: ChaosResult) -> None:
    with store.unit_of_work(write=False) as uow:  # type: ignore[attr-defined]
        golden = {g.master_id: g.version for g in uow.list_golden("item", limit=100_000)}
    for target in ("shop", "wms"):
        applied: dict[str, list[int]] = defaultdict(list)
        for master, version, _ in SandboxTarget(folder / f"{target}.db").log():
            applied[master].append(version)
            result.deliveries += 1
        for master, latest in golden.items():
            got = applied.get(master, [])
            name = f"{target}:{master}"
            if len(set(got)) != len(got):
                result.duplicated.append(name)
            if got != sorted(got):
                result.disordered.append(name)
            if set(range(1, latest + 1)) - set(got):
                result.lost.append(name)
            if not got or got[-1] != latest:
                result.stale.append(name)
