"""Process steps against real stores: a step is recorded only if its write took effect,
starts and steps of one record are serialised, a step never reverts a write made while it
ran, and a process can be cancelled (its lifecycle lock released)."""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

import mastersync.pipeline.governance.processes as processes
from mastersync.bootstrap import Hub, build_hub
from mastersync.domain.governance.access import Principal
from mastersync.pipeline.governance.processes import ProcessError, advance, start
from mastersync.pipeline.governance.writes import write_record
from mastersync.ports.connector import SourceRecord
from mastersync.ports.governance import ProcessRecord

LANDSCAPE = """\
name: process-test
systems:
  erp:
    kind: erp
    inbound:
      customer:
        key: no
        version: {from: v, kind: counter}
        fields:
          customer_number: no
          name: name
          country: {from: country, optional: true}
          tax_id: {from: vat, optional: true}
          lifecycle_state: {from: status, optional: true}
  portal: {kind: other, description: the customer portal (API)}
"""
# The same landscape after the ERP took the customer lifecycle over.
ERP_OWNS_LIFECYCLE = LANDSCAPE + "domains:\n  customer:\n    ownership: {lifecycle_state: [erp]}\n"
ONBOARDING = "customer-onboarding"
TAX_ID = "DE136695976"

SALES = Principal("crm", "sam", frozenset({"customer:read", "customer:write"}), system="portal")
CREDIT = Principal("credit", "cora", frozenset({"customer:read", "approve"}))
CFO = Principal("cfo", "carl", frozenset({"customer:read", "approve"}))


def _hub(tmp_path: Path, store_url: str, landscape: str = LANDSCAPE, name: str = "hub") -> Hub:
    path = tmp_path / f"{name}.yaml"
    path.write_text(landscape)
    return build_hub(path, store_url)


@pytest.fixture
def hub(tmp_path: Path, store_url: str) -> Iterator[Hub]:
    h = _hub(tmp_path, store_url)
    h.store.upgrade()
    yield h
    h.close()


def _erp(hub: Hub, **record: Any) -> None:
    hub.ingestor.ingest("erp", "customer", [SourceRecord(record)], source="erp.csv")


def _golden(hub: Hub, master_id: str | None) -> dict[str, Any]:
    assert master_id is not None
    with hub.store.unit_of_work(write=False) as uow:
        record = uow.golden(master_id)
    assert record is not None
    return record.attributes


def _contribution(hub: Hub, key: str) -> dict[str, Any]:
    with hub.store.unit_of_work(write=False) as uow:
        master = uow.find_master("customer", "portal", key)
        assert master is not None
        found = [m for m in uow.members(master) if m.ref == ("portal", key)]
    return dict(found[0].values)


def _start(hub: Hub, key: str, request_id: str, **attributes: Any) -> ProcessRecord:
    given = {"name": "Nova GmbH", "country": "DE", **attributes}
    return start(hub.ingestor, hub.governance, SALES, ONBOARDING, key, given, request_id)


def _advance(hub: Hub, process: ProcessRecord, who: Principal, request_id: str) -> ProcessRecord:
    assert process.master_id is not None
    return advance(hub.ingestor, hub.governance, who, process, process.master_id, request_id)


def _portal_write(hub: Hub, key: str, request_id: str, **attributes: Any) -> str:
    result = write_record(
        hub.ingestor,
        hub.governance,
        consumer="crm",
        person="sam",
        system="portal",
        domain="customer",
        key=key,
        version=None,
        attributes={"country": "DE", "lifecycle_state": "pending", **attributes},
        request_id=request_id,
        route="POST /v1/customers",
    )
    return result.outcome


def _before_each_write(
    monkeypatch: pytest.MonkeyPatch, hook: Callable[[dict[str, Any]], None]
) -> None:
    """Run ``hook`` (with the write's arguments) just before each write a process makes:
    after the process read what it writes, before ingest's transaction."""
    real = processes.write_record

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        hook(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(processes, "write_record", wrapped)


# --- 1. a step is recorded only if its write took effect ---------------------------------


def test_a_step_whose_lifecycle_loses_to_another_system_is_not_taken(hub: Hub) -> None:
    _erp(hub, no="E1", name="Nova GmbH", country="DE", vat=TAX_ID, v=1)
    proc = _start(hub, "N-1", "start-N-1", tax_id=TAX_ID)
    assert _golden(hub, proc.master_id)["lifecycle_state"] == "pending"
    # The ERP blocks the customer; by source priority (erp before portal) its state wins.
    _erp(hub, no="E1", name="Nova GmbH", country="DE", vat=TAX_ID, status="blocked", v=2)
    with pytest.raises(ProcessError) as refused:
        _advance(hub, proc, CREDIT, "approve-N-1")
    message = str(refused.value)
    assert refused.value.status == 409
    for said in (str(proc.master_id), "N-1", "lifecycle_state", "source_priority", "erp"):
        assert said in message, (said, message)
    assert refused.value.problems == [
        {"field": "lifecycle_state", "rule": "source_priority", "message": message}
    ]
    stored = hub.governance.process(proc.id)
    assert stored is not None
    assert (stored.state, len(stored.history)) == ("awaiting_credit_approval", 1)
    assert _golden(hub, proc.master_id)["lifecycle_state"] == "blocked"
    # Nothing of the step was written: the portal's record still says pending.
    assert _contribution(hub, "N-1")["lifecycle_state"] == "pending"


def test_a_start_whose_lifecycle_loses_starts_nothing(hub: Hub) -> None:
    _erp(hub, no="E2", name="Alpen GmbH", country="AT", vat="ATU13585627", status="active", v=1)
    with pytest.raises(ProcessError) as refused:
        start(
            hub.ingestor,
            hub.governance,
            SALES,
            ONBOARDING,
            "N-2",
            {"name": "Alpen GmbH", "country": "AT", "tax_id": "ATU13585627"},
            "start-N-2",
        )
    assert "lifecycle_state" in str(refused.value) and "source_priority" in str(refused.value)
    with hub.store.unit_of_work(write=False) as uow:
        master = uow.find_master("customer", "erp", "E2")
        assert uow.find_master("customer", "portal", "N-2") is None
    assert master is not None
    assert hub.governance.processes_of(master) == []
    assert _golden(hub, master)["lifecycle_state"] == "active"


# --- 2. a process whose lifecycle owner changed can be cancelled -----------------------


def test_a_process_stranded_by_an_ownership_change_is_cancelled_and_unlocks(
    tmp_path: Path, store_url: str, hub: Hub
) -> None:
    proc = _start(hub, "N-3", "start-N-3")
    assert proc.master_id is not None
    moved = _hub(tmp_path, store_url, ERP_OWNS_LIFECYCLE, name="moved")
    try:
        # The portal may no longer write the lifecycle: the process cannot advance ...
        with pytest.raises(ProcessError) as stuck:
            _advance(moved, proc, CREDIT, "approve-N-3")
        assert f"POST /v1/processes/{proc.id}/cancel" in str(stuck.value)
        # ... and, under the landscape as it is now, no longer locks the record's lifecycle
        # (the ERP owns it); told nothing of the landscape, it still counts as open.
        assert processes.open_processes(moved.governance, proc.master_id, moved.landscape) == []
        assert [p.id for p in processes.open_processes(moved.governance, proc.master_id)] == [
            proc.id
        ]
        # The starter may not cancel an approval waiting for a second person.
        with pytest.raises(ProcessError) as own:
            processes.cancel(moved.governance, SALES, proc, "changed my mind", "cancel-1")
        assert own.value.status == 403
        done = processes.cancel(
            moved.governance, CREDIT, proc, "the ERP owns the lifecycle now", "c-2"
        )
        assert done.state == "cancelled"
        assert done.history[-1] | {"at": "-"} == {
            "at": "-",
            "step": "cancel",
            "from": "awaiting_credit_approval",
            "state": "cancelled",
            "by": "cora",
            "consumer": "credit",
            "reason": "the ERP owns the lifecycle now",
            "request_id": "c-2",
        }
        assert processes.open_processes(moved.governance, proc.master_id) == []
        # The same request again answers as before; another one finds nothing to cancel.
        stored = moved.governance.process(proc.id)
        assert stored is not None
        again = processes.cancel(
            moved.governance, CREDIT, stored, "the ERP owns the lifecycle now", "c-2"
        )
        assert again.history == done.history
        with pytest.raises(ProcessError) as closed:
            processes.cancel(moved.governance, CREDIT, stored, "twice", "c-3")
        assert closed.value.status == 409 and "cancelled" in str(closed.value)
        # The owner sets the lifecycle as it does any field.
        _erp(moved, no="E3", name="Nova GmbH", country="DE", status="active", v=1)
    finally:
        moved.close()


def test_a_cancelled_process_takes_no_step_and_a_new_one_may_start(hub: Hub) -> None:
    proc = _start(hub, "N-4", "start-N-4")
    processes.cancel(hub.governance, CFO, proc, "duplicate request", "cancel-N-4")
    stored = hub.governance.process(proc.id)
    assert stored is not None
    with pytest.raises(ProcessError) as late:
        _advance(hub, stored, CREDIT, "approve-N-4")
    assert "cancelled" in str(late.value)
    again = _start(hub, "N-4", "restart-N-4")
    assert again.id != proc.id and again.master_id == proc.master_id
    assert _advance(hub, again, CREDIT, "approve-N-4b").state == "active"


def test_a_cancel_needs_a_reason_and_a_current_view(hub: Hub) -> None:
    proc = _start(hub, "N-5", "start-N-5")
    with pytest.raises(ProcessError) as blank:
        processes.cancel(hub.governance, CREDIT, proc, "  ", "cancel-N-5")
    assert blank.value.status == 422
    # The caller's copy is from before the step: the process moved on, nothing cancelled.
    stale = copy.deepcopy(proc)
    _advance(hub, proc, CFO, "approve-N-5")
    with pytest.raises(ProcessError) as moved_on:
        processes.cancel(hub.governance, CREDIT, stale, "too late", "cancel-N-5b")
    assert moved_on.value.status == 409
    stored = hub.governance.process(proc.id)
    assert stored is not None and stored.state == "active"


# --- 3. starts and steps of one record are serialised ------------------------------------


def _race(n: int, work: Callable[[int], Any]) -> list[Any]:
    """Run ``work(i)`` in ``n`` threads at once; each result, or the ProcessError raised."""

    def one(i: int) -> Any:
        try:
            return work(i)
        except ProcessError as exc:
            return exc

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(one, range(n)))


def test_concurrent_starts_of_one_record_open_one_process(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    n = 4
    # Every start has checked for an open process before any of them writes.
    gate = threading.Barrier(n, timeout=30)
    _before_each_write(monkeypatch, lambda _: gate.wait())
    results = _race(n, lambda i: _start(hub, "N-6", f"start-N-6-{i}"))
    won = [r for r in results if isinstance(r, ProcessRecord)]
    lost = [r for r in results if isinstance(r, ProcessError)]
    assert (len(won), len(lost)) == (1, n - 1), results
    for exc in lost:
        assert exc.status == 409 and "open process" in str(exc), str(exc)
    assert [p.id for p in hub.governance.processes_of(str(won[0].master_id))] == [won[0].id]


def test_concurrent_steps_of_one_process_take_it_once(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    proc = _start(hub, "N-7", "start-N-7")
    gate = threading.Barrier(2, timeout=30)
    _before_each_write(monkeypatch, lambda _: gate.wait())
    people = (CREDIT, CFO)
    results = _race(2, lambda i: _advance(hub, proc, people[i], f"approve-N-7-{i}"))
    won = [r for r in results if isinstance(r, ProcessRecord)]
    lost = [r for r in results if isinstance(r, ProcessError)]
    assert (len(won), len(lost)) == (1, 1), results
    assert lost[0].status == 409 and proc.id in str(lost[0]), str(lost[0])
    stored = hub.governance.process(proc.id)
    assert stored is not None
    assert [h["step"] for h in stored.history] == ["start", "active"]


# --- 4. a step never reverts a write made while it ran ---------------------------------


def _meanwhile(hub: Hub, monkeypatch: pytest.MonkeyPatch, **attributes: Any) -> None:
    """Before the step's first write, the portal writes its record again (another request,
    in another thread: it lands between the step's read and its transaction)."""
    landed: list[str] = []

    def concurrent(kwargs: dict[str, Any]) -> None:
        if landed:
            return
        with ThreadPoolExecutor(1) as pool:
            write = pool.submit(_portal_write, hub, kwargs["key"], "meanwhile", **attributes)
            landed.append(write.result())
        assert landed == ["accepted"]

    _before_each_write(monkeypatch, concurrent)


def test_a_step_does_not_revert_a_write_landing_after_its_read(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    proc = _start(hub, "N-8", "start-N-8")
    _meanwhile(hub, monkeypatch, name="Nova Systems GmbH")
    done = _advance(hub, proc, CREDIT, "approve-N-8")
    assert done.state == "active"
    got = _golden(hub, proc.master_id)
    assert (got["name"], got["lifecycle_state"]) == ("Nova Systems GmbH", "active")


def test_a_step_does_not_revert_a_source_value_another_system_outranks(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The golden name is the ERP's (source priority): the portal's own change of its name
    # changes its record only, and the golden record's version not at all.
    _erp(hub, no="E9", name="Nova (ERP)", country="DE", vat=TAX_ID, v=1)
    proc = _start(hub, "N-9", "start-N-9", tax_id=TAX_ID, name="Nova (portal)")
    _meanwhile(hub, monkeypatch, name="Nova (portal, renamed)", tax_id=TAX_ID)
    assert _advance(hub, proc, CREDIT, "approve-N-9").state == "active"
    assert _contribution(hub, "N-9")["name"] == "Nova (portal, renamed)"
    got = _golden(hub, proc.master_id)
    assert (got["name"], got["lifecycle_state"]) == ("Nova (ERP)", "active")


def test_a_step_meeting_a_cancel_writes_nothing(hub: Hub, monkeypatch: pytest.MonkeyPatch) -> None:
    proc = _start(hub, "N-10", "start-N-10")
    cancelled: list[ProcessRecord] = []

    def withdraw(_: dict[str, Any]) -> None:
        current = hub.governance.process(proc.id)
        assert current is not None
        if not cancelled:
            cancelled.append(processes.cancel(hub.governance, CFO, current, "withdrawn", "c-10"))

    _before_each_write(monkeypatch, withdraw)
    with pytest.raises(ProcessError) as late:
        _advance(hub, proc, CREDIT, "approve-N-10")
    assert late.value.status == 409 and "changed by another request" in str(late.value)
    stored = hub.governance.process(proc.id)
    assert stored is not None and stored.state == "cancelled"
    # The step's write went with it: the customer was not activated.
    assert _golden(hub, proc.master_id)["lifecycle_state"] == "pending"


def test_a_step_meeting_a_write_at_every_try_gives_up_with_a_conflict(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    proc = _start(hub, "N-11", "start-N-11")
    names = iter(f"Nova {i}" for i in range(1, 10))

    def rename(kwargs: dict[str, Any]) -> None:
        with ThreadPoolExecutor(1) as pool:
            name = next(names)
            assert pool.submit(_portal_write, hub, kwargs["key"], name, name=name).result() == (
                "accepted"
            )

    _before_each_write(monkeypatch, rename)
    with pytest.raises(ProcessError) as busy:
        _advance(hub, proc, CREDIT, "approve-N-11")
    assert busy.value.status == 409 and "try again" in str(busy.value), str(busy.value)
    stored = hub.governance.process(proc.id)
    assert stored is not None and stored.state == "awaiting_credit_approval"
    got = _golden(hub, proc.master_id)
    assert (got["name"], got["lifecycle_state"]) == (f"Nova {processes.ATTEMPTS}", "pending")
