"""Push intake: each message id (or, where the id is not signed, each signed content) is
taken once, also when the same push arrives several times at once; ids and digests are
remembered for their lifetime, then forgotten."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mastersync.bootstrap import Hub, build_hub
from mastersync.pipeline.ingest import BatchReport
from mastersync.pipeline.pushes import InFlight, PushIntake, PushOutcome
from mastersync.pipeline.queries import get_record
from mastersync.ports.connector import SourceRecord

LANDSCAPE = """
name: pushes
systems:
  crm:
    kind: crm
    inbound:
      customer: {key: id, fields: {name: name}}
      supplier: {key: id, fields: {name: name}}
"""
NOW = 1_800_000_000.0


@pytest.fixture
def hub(tmp_path: Path, store_url: str) -> Iterator[Hub]:
    (tmp_path / "landscape.yaml").write_text(LANDSCAPE)
    opened = build_hub(tmp_path / "landscape.yaml", store_url)
    yield opened
    opened.close()


def _record(name: str) -> list[SourceRecord]:
    return [SourceRecord({"id": "C1", "name": name})]


def _name(hub: Hub) -> object:
    return get_record(hub.store, "customer", "crm:C1").golden.attributes["name"]


def test_ids_are_forgotten_after_their_lifetime(hub: Hub) -> None:
    now = [NOW]
    intake = PushIntake(hub.ingestor, clock=lambda: now[0])
    record = _record("Alpha")
    first = intake.accept("crm", "customer", "m1", record, id_lifetime=600)
    assert not first.duplicate and first.outcomes == {"accepted": 1}
    assert intake.accept("crm", "customer", "m1", record, id_lifetime=600).duplicate
    now[0] += 601  # past its lifetime (and the pruning interval)
    intake.accept("crm", "customer", "m2", record, id_lifetime=600)
    assert not intake.seen("crm", "m1") and intake.seen("crm", "m2")
    # Were the old message to come back, ingest would still apply nothing twice.
    again = intake.accept("crm", "customer", "m1", record, id_lifetime=600)
    assert not again.duplicate and again.outcomes == {"unchanged": 1}


def test_a_digest_catches_a_replay_under_any_id_and_is_kept_as_long_as_ids(hub: Hub) -> None:
    """Where the signature does not cover the id, a captured request re-sent with a new id
    (or none) set the record back to the captured version."""
    now = [NOW]
    intake = PushIntake(hub.ingestor, clock=lambda: now[0])
    old, new = _record("Old name"), _record("New name")
    assert not intake.accept("crm", "customer", "e1", old, 600, digest="d-old").duplicate
    assert not intake.accept("crm", "customer", "e2", new, 600, digest="d-new").duplicate
    assert intake.accept("crm", "customer", "e1-forged", old, 600, digest="d-old").duplicate
    assert intake.accept("crm", "customer", None, old, 600, digest="d-old").duplicate
    # The id alone still counts too (a retry that the sender signed anew).
    assert intake.accept("crm", "customer", "e1", old, 600, digest="d-other").duplicate
    assert _name(hub) == "New name"
    # A message id that looks like a digest's row names nothing but itself.
    fresh = intake.accept("crm", "customer", "hook-body:crm:customer:d-new", new, 600)
    assert not fresh.duplicate and fresh.outcomes == {"unchanged": 1}
    now[0] += 601  # digests are pruned with the ids, after the same lifetime
    assert not intake.accept("crm", "customer", "e3", new, 600, digest="d-3").duplicate
    replayed = intake.accept("crm", "customer", "e4", old, 600, digest="d-old")
    assert not replayed.duplicate


def test_one_signed_body_posted_for_two_domains_is_two_pushes(hub: Hub) -> None:
    """The digest's row named the system only: the same signed body posted to a second
    domain's URL was answered duplicate and never taken."""
    intake = PushIntake(hub.ingestor, clock=lambda: NOW)
    body = _record("Acme")
    assert not intake.accept("crm", "customer", None, body, 600, digest="d-1").duplicate
    assert not intake.accept("crm", "supplier", None, body, 600, digest="d-1").duplicate
    assert intake.accept("crm", "supplier", None, body, 600, digest="d-1").duplicate


def test_a_retry_taken_at_once_cannot_land_after_a_newer_push(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Checking the id and ingesting were two steps: a retry that arrived while the first
    delivery was being taken passed the check, and a newer push stored meanwhile was then
    set back to the retry's old version."""
    ingestor = hub.ingestor
    real: Callable[..., BatchReport] = ingestor.ingest
    first_in, let_first_finish = threading.Event(), threading.Event()
    retry_waits, newer_stored = threading.Event(), threading.Event()
    calls: list[str] = []

    def ingest(system: str, domain: str, records: Any, **kw: Any) -> BatchReport:
        name = records[0].payload["name"]
        calls.append(name)
        if len(calls) == 1:  # the first delivery: stored, not yet marked as taken
            report = real(system, domain, records, **kw)
            first_in.set()
            assert let_first_finish.wait(30)
            return report
        if name == "Old name":  # the retry, should it get this far
            retry_waits.set()
            assert newer_stored.wait(30)
        return real(system, domain, records, **kw)

    monkeypatch.setattr(ingestor, "ingest", ingest)
    intake = PushIntake(ingestor, clock=lambda: NOW, wait=30)

    def pause(seconds: float) -> None:
        retry_waits.set()  # the retry is waiting for the first delivery
        threading.Event().wait(seconds)

    intake.pause = pause
    results: dict[str, PushOutcome] = {}

    def deliver(key: str) -> None:
        results[key] = intake.accept("crm", "customer", "m1", _record("Old name"), 600)

    first = threading.Thread(target=deliver, args=("first",))
    first.start()
    assert first_in.wait(30)
    retry = threading.Thread(target=deliver, args=("retry",))
    retry.start()
    assert retry_waits.wait(30)
    newer = intake.accept("crm", "customer", "m2", _record("New name"), 600)
    assert not newer.duplicate
    newer_stored.set()
    let_first_finish.set()
    first.join(30)
    retry.join(30)
    assert not results["first"].duplicate
    assert results["retry"].duplicate
    assert calls == ["Old name", "New name"]
    assert _name(hub) == "New name"


def test_a_failed_ingest_frees_its_claim_for_the_retry(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    ingestor = hub.ingestor
    intake = PushIntake(ingestor, clock=lambda: NOW, wait=0)
    real = ingestor.ingest

    def broken(*args: Any, **kw: Any) -> BatchReport:
        raise ConnectionError("the store went away")

    monkeypatch.setattr(ingestor, "ingest", broken)
    with pytest.raises(ConnectionError):
        intake.accept("crm", "customer", "m1", _record("Alpha"), 600, digest="d1")
    assert not intake.seen("crm", "m1")
    monkeypatch.setattr(ingestor, "ingest", real)
    # Not InFlight (the claim is gone), not a duplicate (nothing was taken).
    retried = intake.accept("crm", "customer", "m1", _record("Alpha"), 600, digest="d1")
    assert not retried.duplicate and retried.outcomes == {"accepted": 1}


def test_a_claim_whose_holder_never_finishes_ends_with_its_lease(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [NOW]
    ingestor = hub.ingestor
    intake = PushIntake(ingestor, clock=lambda: now[0], wait=0.05, lease=300)
    real = ingestor.ingest
    stuck, unstick = threading.Event(), threading.Event()

    def hangs(system: str, domain: str, records: Any, **kw: Any) -> BatchReport:
        if records[0].payload["name"] == "Stuck":
            stuck.set()
            assert unstick.wait(30)
        return real(system, domain, records, **kw)

    monkeypatch.setattr(ingestor, "ingest", hangs)
    holder = threading.Thread(
        target=intake.accept, args=("crm", "customer", "m1", _record("Stuck"), 600)
    )
    holder.start()
    try:
        assert stuck.wait(30)
        with pytest.raises(InFlight, match="push m1 is being taken by another request"):
            intake.accept("crm", "customer", "m1", _record("Alpha"), 600)
        now[0] += 301  # the lease is over: the sender's retry takes the push over
        retried = intake.accept("crm", "customer", "m1", _record("Alpha"), 600)
        assert not retried.duplicate and retried.outcomes == {"accepted": 1}
        assert intake.seen("crm", "m1")
    finally:
        unstick.set()
        holder.join(30)
