"""Identifiers: time-ordered, unique, and in the shapes their standards ask for."""

from __future__ import annotations

import re
import time

from mastersync.pipeline.ids import new_id, new_trace_id


def test_trace_ids_are_w3c_shaped_unique_and_in_time_order() -> None:
    ids = []
    for _ in range(3):
        ids += [new_trace_id() for _ in range(500)]
        time.sleep(0.002)
    assert all(re.fullmatch(r"[0-9a-f]{32}", t) and t != "0" * 32 for t in ids)
    assert len(set(ids)) == len(ids)
    # Within a millisecond the order is random; across milliseconds it is time order.
    prefixes = [t[:12] for t in ids]
    assert prefixes == sorted(prefixes)


def test_master_ids_sort_by_time_as_text() -> None:
    first = new_id("itm")
    time.sleep(0.002)
    second = new_id("itm")
    assert re.fullmatch(r"itm_[0-9a-f]{32}", first)
    assert first < second
