"""The sandbox consumer: a bulk apply has the effect of applying its requests one by one."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from mastersync.connectors.sandbox.target import SandboxTarget
from mastersync.domain.subscriptions import Operation
from mastersync.ports.outbound import DeliveryRequest


def request(
    master: str,
    version: int,
    *,
    operation: Operation = Operation.UPSERT,
    key: str | None = None,
    replay: str = "",
    name: str | None = None,
) -> DeliveryRequest:
    return DeliveryRequest(
        "shop.items",
        "shop",
        "item",
        master,
        version,
        operation,
        f"{master}:{version}{':' + replay if replay else ''}",
        key,
        {"name": name or f"{master} v{version}"},
        "trace",
    )


def test_a_batch_sees_its_own_applies(tmp_path: Path) -> None:
    target = SandboxTarget(tmp_path / "shop.db")
    out = target.apply_many(
        [
            request("m1", 1),
            request("m1", 1),  # the same idempotency key again: a duplicate
            request("m1", 3),
            request("m1", 2),  # older than what the batch applied: acknowledged, not applied
            request("m2", 1, key="K-2"),
            request("m2", 2, operation=Operation.DEACTIVATE),
        ]
    )
    acks = [(ack.target_key, ack.duplicate, applied) for ack, applied in out]
    first_key = acks[0][0]
    assert first_key.startswith("T-")
    assert acks == [
        (first_key, False, False),
        (first_key, True, True),
        (first_key, False, False),
        (first_key, True, True),
        ("K-2", False, False),
        ("K-2", False, False),
    ]
    assert out[3][0].response == {"key": first_key, "version": 3, "stale": True}
    held = target.records("item")
    assert held["m1"]["version"] == 3 and held["m1"]["payload"] == {"name": "m1 v3"}
    # A deactivation keeps the last payload the consumer had.
    assert held["m2"] == {
        "key": "K-2",
        "version": 2,
        "active": False,
        "payload": {"name": "m2 v1"},
    }
    assert target.log() == [
        ("m1", 1, "upsert"),
        ("m1", 3, "upsert"),
        ("m2", 1, "upsert"),
        ("m2", 2, "deactivate"),
    ]
    # Across batches too: a key applied before answers with its stored response.
    [(ack, applied)] = target.apply_many([request("m1", 3)])
    assert applied and ack.duplicate and ack.response == {"key": first_key, "version": 3}


def test_a_failing_batch_applies_nothing(tmp_path: Path) -> None:
    target = SandboxTarget(tmp_path / "shop.db")
    target.apply_many([request("m1", 1, key="K-1")])
    with pytest.raises(sqlite3.IntegrityError):
        # The consumer's key of m1 sent for a new record m2 breaks the one-key-per-record rule.
        target.apply_many(
            [request("m3", 1), request("m2", 1, key="K-9"), request("m1", 2, key="K-2")]
        )
    assert set(target.records("item")) == {"m1"}
    assert target.log() == [("m1", 1, "upsert")]
    # Nor does it leave behind what it noted of its records (m1 under K-2).
    [(ack, applied)] = target.apply_many([request("m1", 2)])
    assert (ack.target_key, applied) == ("K-1", False)


def test_what_another_connection_writes_is_read_again(tmp_path: Path) -> None:
    """The target keeps what its records hold between applies: a write by anyone else
    (a test, an operator, another process) must not leave it answering from that."""
    target = SandboxTarget(tmp_path / "shop.db")
    target.apply_many([request("m1", 3, key="K-1")])
    db = sqlite3.connect(tmp_path / "shop.db")
    with db:
        db.execute("DELETE FROM records WHERE master_id = 'm1'")
    db.close()
    # Gone there: an older version is applied, not acknowledged as stale.
    [(ack, applied)] = target.apply_many([request("m1", 2)])
    assert not applied and ack.target_key != "K-1"
    assert target.records("item")["m1"]["version"] == 2


def test_a_batch_larger_than_one_statement_takes(tmp_path: Path) -> None:
    target = SandboxTarget(tmp_path / "shop.db")
    target.apply_many([request(f"m{i}", 1) for i in range(1200)])
    out = target.apply_many([request(f"m{i}", 1) for i in range(1200)] + [request("m7", 2)])
    assert all(applied for _, applied in out[:1200])
    assert not out[1200][1]
    assert len(target.records("item")) == 1200


_requests = st.lists(
    st.builds(
        request,
        st.sampled_from(["m1", "m2", "m3"]),
        st.integers(1, 4),
        operation=st.sampled_from([Operation.UPSERT, Operation.DEACTIVATE]),
        # Keys the hub names, shared across records too (review found the bulk apply
        # updated the wrong record's version when a key was another record's).
        key=st.sampled_from([None, None, "K1", "K2"]),
        replay=st.sampled_from(["", "", "r1"]),
        name=st.sampled_from(["a", "b", None]),
    ),
    max_size=12,
)


def _normalised(target: SandboxTarget, out: list[Any]) -> tuple[Any, ...]:
    """What a target holds and answered, with its generated keys named by first use."""
    names: dict[str, str] = {}

    def name(key: str) -> str:
        return names.setdefault(key, f"key{len(names)}")

    answers = [
        (name(a.target_key or ""), a.target_version, a.duplicate, applied) for a, applied in out
    ]
    log = target.log()
    held = {
        m: (name(r["key"]), r["version"], r["active"], r["payload"])
        for m, r in sorted(target.records("item").items())
    }
    return answers, log, held


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(first=_requests, second=_requests)
def test_bulk_equals_one_by_one(
    tmp_path_factory: pytest.TempPathFactory, first: Any, second: Any
) -> None:
    folder = tmp_path_factory.mktemp("sandbox")
    bulk, single = SandboxTarget(folder / "bulk.db"), SandboxTarget(folder / "single.db")
    try:
        out_bulk = bulk.apply_many(first) + bulk.apply_many(second)
        out_single = [single.apply_many([r])[0] for r in [*first, *second]]
    except sqlite3.IntegrityError:
        # A new record under a key another record has: a bulk call fails whole, one by one
        # only that request, and the two part ways from there.
        assume(False)
    assert _normalised(bulk, out_bulk) == _normalised(single, out_single)


def test_faults_can_be_changed_in_the_targets_file_while_a_connector_sends(
    tmp_path: Path,
) -> None:
    """A target never given faults had no row: an UPDATE of it changed nothing, silently."""
    import asyncio
    import time

    from mastersync.connectors.sandbox.target import SandboxConnector
    from mastersync.ports.outbound import TerminalFailure

    connector = SandboxConnector(tmp_path / "shop.db")
    with sqlite3.connect(tmp_path / "shop.db") as db:
        changed = db.execute(
            "UPDATE faults SET config = ? WHERE id = 1", ('{"reject_when": "name == \'x\'"}',)
        ).rowcount
    assert changed == 1
    time.sleep(0.6)  # a connector reads its faults again every half second
    [outcome] = asyncio.run(connector.send_batch([request("m1", 1, name="x")]))
    assert isinstance(outcome, TerminalFailure)
