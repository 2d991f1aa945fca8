"""The governance port's processes on each store: a change is made over the version it
read (compare-and-set), and of two made at once over one version, exactly one lands."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

from mastersync.backends.sql.governance import SqlGovernance
from mastersync.backends.sql.store import SqlStore
from mastersync.ports.governance import ProcessRecord
from mastersync.ports.store import Store

AT = "2026-12-07T10:00:00.000000Z"


def _governance(store: Store) -> SqlGovernance:
    assert isinstance(store, SqlStore)
    return SqlGovernance(store.engine)


def test_a_process_changes_only_over_the_version_it_read(store: Store) -> None:
    governance = _governance(store)
    first = ProcessRecord("prc_1", "customer-onboarding", "awaiting", "customer", "sam", AT, AT)
    governance.save_process(first)
    stored = governance.process("prc_1")
    assert stored is not None and stored.version == 0
    moved = replace(stored, state="active", history=[{"step": "active"}])
    assert governance.update_process(moved, expected=0)
    # A second change decided on version 0 (a request that read before the first) fails.
    assert not governance.update_process(replace(stored, state="cancelled"), expected=0)
    now = governance.process("prc_1")
    assert now is not None
    assert (now.state, now.version, now.history) == ("active", 1, [{"step": "active"}])
    # An unconditional save counts as a change too.
    governance.save_process(replace(now, state="cancelled"))
    saved = governance.process("prc_1")
    assert saved is not None and (saved.state, saved.version) == ("cancelled", 2)


def test_of_concurrent_changes_over_one_version_one_lands(store: Store) -> None:
    governance = _governance(store)
    governance.save_process(
        ProcessRecord("prc_2", "item-activation", "draft", "item", "pia", AT, AT)
    )
    n = 6
    gate = threading.Barrier(n, timeout=30)

    def change(i: int) -> bool:
        gate.wait()
        return governance.update_process(
            ProcessRecord("prc_2", "item-activation", f"state-{i}", "item", "pia", AT, AT),
            expected=0,
        )

    with ThreadPoolExecutor(n) as pool:
        landed = list(pool.map(change, range(n)))
    assert landed.count(True) == 1, landed
    stored = governance.process("prc_2")
    assert stored is not None
    assert (stored.state, stored.version) == (f"state-{landed.index(True)}", 1)
