"""Record states by version, shared by the deliverers of one hub."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from typing import Any


class StateCache:
    """Record states by (master id, version), shared by the deliverers of one hub.

    A version's state never changes, and every subscription of a domain sends the same
    versions: the first deliverer to plan one reads it, the others find it here.
    """

    def __init__(self, size: int = 20_000) -> None:
        self.size = size
        self._states: OrderedDict[tuple[str, int], tuple[dict[str, Any], str]] = OrderedDict()
        # Deliverers plan in worker threads at the same time.
        self._lock = threading.Lock()

    def __contains__(self, key: tuple[str, int]) -> bool:
        with self._lock:
            return key in self._states

    def get(self, key: tuple[str, int]) -> tuple[dict[str, Any], str] | None:
        """A state and its trace id, if held."""
        return self.get_many([key]).get(key)

    def put(self, key: tuple[str, int], value: tuple[dict[str, Any], str]) -> None:
        """Hold a state, dropping the least recently used beyond the size."""
        self.put_many({key: value})

    def get_many(
        self, keys: Iterable[tuple[str, int]]
    ) -> dict[tuple[str, int], tuple[dict[str, Any], str]]:
        """The states held among these (one lock for a round's lookups)."""
        found = {}
        with self._lock:
            states = self._states
            for key in keys:
                value = states.get(key)
                if value is not None:
                    states.move_to_end(key)
                    found[key] = value
        return found

    def put_many(self, values: Mapping[tuple[str, int], tuple[dict[str, Any], str]]) -> None:
        """Hold states, dropping the least recently used beyond the size."""
        with self._lock:
            states = self._states
            for key, value in values.items():
                states[key] = value
                states.move_to_end(key)
            while len(states) > self.size:
                states.popitem(last=False)
