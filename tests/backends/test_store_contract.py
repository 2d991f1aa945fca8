"""The store contract: SQLite and PostgreSQL must behave the same for every case here."""

from __future__ import annotations

import dataclasses

import pytest

from mastersync.bootstrap import BootstrapError, open_store
from mastersync.domain.delivery import Delivery
from mastersync.domain.golden import ChangeEvent, Contribution, GoldenRecord
from mastersync.domain.ledger import KeyChange
from mastersync.domain.records import BatchSummary, ExceptionEntry, ExceptionStatus, LineageEntry
from mastersync.ports.store import ChangeSet, ConcurrencyError, ExceptionFilter, Store

NOW = "2026-11-27T10:00:00.000000Z"


def golden(master: str = "itm_1", version: int = 1, **attrs: object) -> GoldenRecord:
    attributes = {"name": "Pen", "lifecycle_state": "active", **attrs}
    return GoldenRecord(
        master,
        "item",
        version,
        attributes,
        {"name": {"system": "erp", "key": "A1", "version": "3", "at": NOW}},
        NOW,
        NOW,
        0.75,
        "trace-1",
    )


def contribution(key: str = "A1", master: str = "itm_1", version: int | str = 3) -> Contribution:
    return Contribution("item", "erp", key, master, version, None, {"name": "Pen"}, "dg", NOW)


def event(master: str = "itm_1", version: int = 1) -> ChangeEvent:
    return ChangeEvent(
        f"evt_{master}_{version}",
        master,
        "item",
        version,
        "created",
        {"name": {"before": None, "after": "Pen"}},
        "1.0",
        "trace-1",
        "bat/1",
        NOW,
        {"system": "erp", "key": "A1", "version": "3"},
    )


def entry(key: str = "A1", signature: str = "sig1", message: str = "bad") -> ExceptionEntry:
    return ExceptionEntry(
        "validation_error",
        "erp",
        "item",
        "gtin_check_digit",
        message,
        signature,
        {"sku": key, "ean": "123"},
        NOW,
        source_key=key,
        field="gtin",
        locator="items.csv:2",
        trace_id="t1",
        batch_id="bat",
    )


def write(store: Store, changes: ChangeSet) -> None:
    with store.unit_of_work() as uow:
        uow.write(changes)
        uow.commit()


def test_a_change_set_round_trips(store: Store) -> None:
    lineage = LineageEntry(
        "trace-1",
        "ingest",
        "accepted",
        NOW,
        "item",
        "itm_1",
        1,
        "erp",
        "A1",
        "3",
        "bat",
        {"changed": ["name"]},
    )
    write(
        store,
        ChangeSet(
            contributions=[
                contribution(),
                contribution("P1", version="2026-01-01T00:00:00.000000Z"),
            ],
            golden=[golden()],
            keys=[KeyChange("item", "gtin", "04006381333931", "itm_1", True)],
            events=[event()],
            lineage=[lineage],
        ),
    )
    with store.unit_of_work(write=False) as uow:
        assert uow.golden("itm_1") == golden()
        assert uow.find_master("item", "erp", "A1") == "itm_1"
        assert uow.find_master(None, "erp", "nope") is None
        xrefs = uow.load_xrefs("item", [("erp", "A1"), ("erp", "P1"), ("erp", "missing")])
        assert sorted(x.key for x in xrefs) == ["A1", "P1"]
        versions = {x.key: x.version for x in xrefs}
        assert versions == {"A1": 3, "P1": "2026-01-01T00:00:00.000000Z"}
        # The lean look-up an ingest uses to spot exact redeliveries agrees with the rows.
        digests = {x.key: (x.version, x.digest) for x in xrefs}
        assert uow.source_digests("item", "erp", ["A1", "P1", "missing"]) == digests
        assert uow.source_digests("item", "crm", ["A1"]) == {}
        assert uow.load_natural_keys("item", [("gtin", "04006381333931"), ("gtin", "x")]) == {
            ("gtin", "04006381333931"): "itm_1"
        }
        records, members = uow.load_golden(["itm_1", "itm_404"])
        assert [g.master_id for g in records] == ["itm_1"]
        assert sorted(m.key for m in members) == ["A1", "P1"]
        assert uow.events("itm_1") == [event()]
        [entry_] = uow.lineage(master_id="itm_1")
        assert entry_.detail == {"changed": ["name"]}
        assert entry_.id is not None
        assert uow.lineage(trace_id="trace-1") == [entry_]
        assert [c.domain for c in uow.domain_counts()] == ["item"]
        assert uow.list_golden("item")[0].master_id == "itm_1"


def test_upserts_replace_and_key_changes_move(store: Store) -> None:
    write(
        store,
        ChangeSet(
            contributions=[contribution()],
            golden=[golden()],
            keys=[KeyChange("item", "gtin", "G1", "itm_1", True)],
        ),
    )
    write(
        store,
        ChangeSet(
            contributions=[contribution(version=4)],
            golden=[golden(version=2, name="Ink")],
            keys=[
                KeyChange("item", "gtin", "G1", "itm_1", False),
                KeyChange("item", "gtin", "G2", "itm_1", True),
            ],
        ),
    )
    with store.unit_of_work(write=False) as uow:
        g = uow.golden("itm_1")
        assert g is not None
        assert g.version == 2
        assert g.attributes["name"] == "Ink"
        assert uow.load_xrefs("item", [("erp", "A1")])[0].version == 4
        assert uow.load_natural_keys("item", [("gtin", "G1"), ("gtin", "G2")]) == {
            ("gtin", "G2"): "itm_1"
        }


def test_bulk_writes_of_many_rows(store: Store) -> None:
    # Above the COPY threshold of the PostgreSQL writer, below it for SQLite: same result.
    n = 300
    write(
        store,
        ChangeSet(
            contributions=[contribution(f"A{i}", f"itm_{i}") for i in range(n)],
            golden=[golden(f"itm_{i}") for i in range(n)],
            keys=[KeyChange("item", "gtin", f"G{i}", f"itm_{i}", True) for i in range(n)],
            events=[event(f"itm_{i}") for i in range(n)],
        ),
    )
    write(store, ChangeSet(golden=[golden(f"itm_{i}", 2, name=f"v2-{i}") for i in range(n)]))
    with store.unit_of_work(write=False) as uow:
        records, members = uow.load_golden([f"itm_{i}" for i in range(n)])
        assert len(records) == n
        assert len(members) == n
        assert {g.attributes["name"] for g in records} == {f"v2-{i}" for i in range(n)}
        assert uow.domain_counts()[0].golden == n


def test_a_duplicate_natural_key_is_a_concurrency_error(store: Store) -> None:
    write(store, ChangeSet(keys=[KeyChange("item", "gtin", "G1", "itm_1", True)]))
    with pytest.raises(ConcurrencyError), store.unit_of_work() as uow:
        uow.write(ChangeSet(keys=[KeyChange("item", "gtin", "G1", "itm_2", True)]))


def test_nothing_is_written_without_commit(store: Store) -> None:
    with store.unit_of_work() as uow:
        uow.write(ChangeSet(golden=[golden()], events=[event()]))
    with store.unit_of_work(write=False) as uow:
        assert uow.golden("itm_1") is None
        assert uow.events("itm_1") == []


def test_a_failing_write_leaves_no_part_behind(store: Store) -> None:
    write(store, ChangeSet(events=[event()]))
    # Same event id again: the outbox refuses it, and the golden row in the same set is gone too.
    with store.unit_of_work() as uow, pytest.raises(ConcurrencyError):
        uow.write(ChangeSet(golden=[golden("itm_9")], events=[event()]))
    with store.unit_of_work(write=False) as uow:
        assert uow.golden("itm_9") is None


def test_a_repeated_failure_counts_attempts_on_one_open_entry(store: Store) -> None:
    write(store, ChangeSet(exceptions=[entry()]))
    write(store, ChangeSet(exceptions=[entry(message="bad again")]))
    write(store, ChangeSet(exceptions=[entry(signature="sig2")]))
    with store.unit_of_work(write=False) as uow:
        open_ = uow.exceptions(ExceptionFilter())
        assert sorted((e.signature, e.attempts) for e in open_) == [("sig1", 2), ("sig2", 1)]
        first = next(e for e in open_ if e.signature == "sig1")
        assert first.message == "bad again"
        assert first.payload == {"sku": "A1", "ean": "123"}
        assert uow.open_exception_keys("item", "erp", ["A1", "B2"]) == {
            "A1": sorted([(e.id, e.signature, e.kind, e.field, e.rule) for e in open_])
        }
        groups = uow.exception_groups(ExceptionFilter())
        assert sorted((g.signature, g.count) for g in groups) == [("sig1", 1), ("sig2", 1)]
        assert uow.exception_counts() == {("item", "validation_error", "gtin_check_digit"): 2}
        ids = sorted(e.id or 0 for e in open_)
        assert uow.exceptions_by_id([*ids, 999_999]) == {e.id: e for e in open_}
        assert uow.exceptions_by_id([]) == {}


def test_settled_entries_leave_the_open_list_and_a_new_failure_opens_a_new_one(
    store: Store,
) -> None:
    write(store, ChangeSet(exceptions=[entry()]))
    with store.unit_of_work(write=False) as uow:
        [first] = uow.exceptions(ExceptionFilter())
    assert first.id is not None
    with store.unit_of_work() as uow:
        uow.settle_exception(
            first.id, ExceptionStatus.IGNORED, {"by": "ana", "why": "test data", "at": NOW}
        )
        uow.commit()
    write(store, ChangeSet(exceptions=[entry()]))
    with store.unit_of_work(write=False) as uow:
        settled = uow.exception(first.id)
        assert settled is not None
        assert settled.status is ExceptionStatus.IGNORED
        assert settled.resolution == {"by": "ana", "why": "test data", "at": NOW}
        assert [e.id for e in uow.exceptions(ExceptionFilter())] != [first.id]
        assert len(uow.exceptions(ExceptionFilter(status=None))) == 2
        assert len(uow.exceptions(ExceptionFilter(status=ExceptionStatus.IGNORED))) == 1


def test_batches_are_recorded_and_updated(store: Store) -> None:
    batch = BatchSummary("bat_1", "erp", "item", "items.csv", NOW)
    with store.unit_of_work() as uow:
        uow.save_batch(batch)
        uow.commit()
    batch.finished_at, batch.counts = NOW, {"accepted": 3}
    with store.unit_of_work() as uow:
        uow.save_batch(batch)
        uow.commit()
    with store.unit_of_work(write=False) as uow:
        assert uow.batches() == [batch]


def test_open_parse_errors_are_those_of_the_source_named_alone(store: Store) -> None:
    # A source's name is matched as it is: "_" and "%" are no wildcards (a_b.csv is not
    # axb.csv), and another source whose name starts the same is not this one.
    def parse_error(locator: str) -> ExceptionEntry:
        return dataclasses.replace(
            entry(f"@{locator}", "sig-parse"),
            kind="parse_error",
            rule="csv_row",
            field=None,
            locator=locator,
        )

    locators = ["a_b.csv:3", "axb.csv:4", "a%b.csv:5", "a/b.csv:6", "a_b.csv.old:7"]
    write(store, ChangeSet(exceptions=[parse_error(loc) for loc in locators]))
    with store.unit_of_work(write=False) as uow:
        found = {
            source: sorted(uow.open_parse_errors("item", "erp", source))
            for source in ("a_b.csv", "a%b.csv", "a/b.csv", "axb.csv", "a")
        }
    assert found == {
        "a_b.csv": ["a_b.csv:3"],
        "a%b.csv": ["a%b.csv:5"],
        "a/b.csv": ["a/b.csv:6"],
        "axb.csv": ["axb.csv:4"],
        "a": [],
    }


def test_schema_revision_is_at_head(store: Store) -> None:
    current, head = store.schema_revision()
    assert current == head


def test_unknown_store_urls_are_refused() -> None:
    with pytest.raises(BootstrapError, match="unsupported store URL mysql://"):
        open_store("mysql://root@localhost/x")


def test_due_holds_a_version_back_behind_an_earlier_one_open_or_not_yet_queued(
    store: Store,
) -> None:
    """A bus may hand events over out of order: a version waits while an earlier one is in
    the outbox but not queued, and while an earlier one is open in the queue."""
    now, later = "2026-11-28T00:00:00.000000Z", "2026-11-28T01:00:00.000000Z"
    v1, v2, other = event("itm_1", 1), event("itm_1", 2), event("itm_2", 1)
    with store.unit_of_work() as uow:
        uow.write(ChangeSet(events=[v1, v2, other]))
        uow.commit()
    with store.unit_of_work(write=False) as uow:
        position = {e.event_id: p for p, e in uow.outbox_after(0, ["item"], 10)}

    def queue(*events: ChangeEvent, at: str = now) -> None:
        with store.unit_of_work() as uow:
            uow.enqueue([Delivery.pending("shop", position[e.event_id], e, at) for e in events])
            uow.commit()

    def due(ordered: bool) -> list[tuple[str, int]]:
        with store.unit_of_work(write=False) as uow:
            return [(d.master_id, d.version) for d in uow.due("shop", now, 10, ordered=ordered)]

    queue(v2, other)
    assert due(ordered=False) == [("itm_2", 1)]  # v1 exists, not queued yet
    assert due(ordered=True) == [("itm_1", 2), ("itm_2", 1)]  # an ordered feed cannot skip
    queue(v1)
    assert due(ordered=False) == [("itm_2", 1), ("itm_1", 1)]  # v2 waits for open v1
    third = event("itm_3", 1)
    with store.unit_of_work() as uow:
        uow.write(ChangeSet(events=[third]))
        uow.commit()
    with store.unit_of_work(write=False) as uow:
        position.update({e.event_id: p for p, e in uow.outbox_after(0, ["item"], 10)})
    queue(third, at=later)
    assert ("itm_3", 1) not in due(ordered=False)  # not due before its time


def test_latency_percentiles_are_nearest_rank() -> None:
    from mastersync.backends.sql.queue import _percentile

    # With two latencies the median was the larger one (index int(0.5 * 2) = 1).
    assert _percentile([10.0, 90.0], 0.5) == 10.0
    assert _percentile([float(n) for n in range(1, 101)], 0.99) == 99.0
    assert _percentile([5.0], 0.99) == 5.0
    assert _percentile([], 0.5) is None


def test_outbox_events_after_a_position_are_counted_per_domain(store: Store) -> None:
    """What `deliveries --bus` adds to each subscription's lag: only its domain's events
    not on the bus yet (every subscription carried every domain's)."""
    customer = dataclasses.replace(event("cus_1"), domain="customer")
    write(store, ChangeSet(events=[event("itm_1"), event("itm_2"), customer]))
    with store.unit_of_work(write=False) as uow:
        head = uow.outbox_head()
        assert uow.outbox_counts_after(0) == {"item": 2, "customer": 1}
        assert uow.outbox_counts_after(head - 1) == {"customer": 1}
        assert uow.outbox_counts_after(head) == {}
