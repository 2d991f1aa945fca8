"""Push intake: message ids are remembered for their lifetime, then forgotten."""

from __future__ import annotations

from pathlib import Path

from mastersync.bootstrap import build_hub
from mastersync.pipeline.pushes import PushIntake
from mastersync.ports.connector import SourceRecord

LANDSCAPE = """
name: pushes
systems:
  crm:
    kind: crm
    inbound:
      customer: {key: id, fields: {name: name}}
"""


def test_ids_are_forgotten_after_their_lifetime(tmp_path: Path) -> None:
    (tmp_path / "landscape.yaml").write_text(LANDSCAPE)
    hub = build_hub(tmp_path / "landscape.yaml", f"sqlite:///{tmp_path / 'hub.db'}")
    now = [1_800_000_000.0]
    intake = PushIntake(hub.ingestor, clock=lambda: now[0])
    record = [SourceRecord({"id": "C1", "name": "Alpha"})]
    try:
        first = intake.accept("crm", "customer", "m1", record, id_lifetime=600)
        assert not first.duplicate and first.outcomes == {"accepted": 1}
        assert intake.accept("crm", "customer", "m1", record, id_lifetime=600).duplicate
        now[0] += 601  # past its lifetime (and the pruning interval)
        intake.accept("crm", "customer", "m2", record, id_lifetime=600)
        assert not intake.seen("crm", "m1") and intake.seen("crm", "m2")
        # Were the old message to come back, ingest would still apply nothing twice.
        again = intake.accept("crm", "customer", "m1", record, id_lifetime=600)
        assert not again.duplicate and again.outcomes == {"unchanged": 1}
    finally:
        hub.close()
