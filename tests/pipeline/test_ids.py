"""Identifiers: time-ordered, unique, and in the shapes their standards ask for."""

from __future__ import annotations

import os
import random
import re
import time
import warnings

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


def test_ids_stay_unique_when_the_shared_random_generator_is_seeded() -> None:
    # Test tools (hypothesis) and programs seed the random module's shared generator to
    # fixed values; ids draw from one of their own and do not repeat.
    random.seed(7)
    first = [new_id("itm")[-20:] for _ in range(5)]
    random.seed(7)
    again = [new_id("itm")[-20:] for _ in range(5)]
    assert not set(first) & set(again)


def test_a_forked_process_draws_other_ids_than_its_parent() -> None:
    read, write = os.pipe()
    with warnings.catch_warnings():
        # Python 3.12 warns of fork() in a process with threads (an earlier test's).
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # the child: its next ids, then out without running the tests' teardown
        os.write(write, " ".join(new_id("itm") for _ in range(5)).encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    child = os.read(read, 4096).decode().split()
    os.close(read)
    mine = [new_id("itm") for _ in range(5)]
    assert len(child) == 5
    assert not {c[-20:] for c in child} & {m[-20:] for m in mine}
