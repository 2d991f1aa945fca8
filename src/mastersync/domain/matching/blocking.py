"""Blocking: which pairs are worth comparing. A pair is a candidate when the two records share
the value of at least one blocking key, so a pair one key misses another can catch.

Blocks larger than ``max_block_size`` are skipped and counted: one over-common value ("gmbh",
a shared switchboard number) would otherwise turn into millions of pointless comparisons.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from mastersync.domain.matching.compiled import CompiledConfig, Record


@dataclass(slots=True)
class Blocked:
    """Candidate pairs of a batch, as sorted codes ``i * n + j`` (i < j, record positions)."""

    codes: list[int]
    size: int
    pairs_skipped: int = 0
    # key name -> number of blocks skipped for being too large
    capped_blocks: dict[str, int] = field(default_factory=dict)

    def pair(self, code: int) -> tuple[int, int]:
        """The two record positions of a pair code."""
        return divmod(code, self.size)


def _key_name(key: str) -> str:
    return key.split(":", 1)[0]


def block(
    config: CompiledConfig,
    keys: Sequence[Sequence[str]],
    split: int | None = None,
) -> Blocked:
    """Candidate pairs from every record's keys; with ``split``, only pairs across it.

    ``split`` is the position of the first right-hand record when linking two sets (positions
    below it are the left set), so pairs within one set are never formed.
    """
    blocks: dict[str, list[int]] = {}
    for position, record_keys in enumerate(keys):
        for key in record_keys:
            members = blocks.get(key)
            if members is None:
                blocks[key] = [position]
            elif members[-1] != position:  # two values of one record can give the same key
                members.append(position)
    n = len(keys)
    cap = config.config.max_block_size
    found: set[int] = set()
    result = Blocked([], n)
    for key, members in blocks.items():
        if len(members) < 2:
            continue
        if split is None:
            if len(members) > cap:
                result.pairs_skipped += len(members) * (len(members) - 1) // 2
                name = _key_name(key)
                result.capped_blocks[name] = result.capped_blocks.get(name, 0) + 1
                continue
            for a, i in enumerate(members):
                base = i * n
                found.update([base + j for j in members[a + 1 :]])
        else:
            # Members are in position order: the left set comes first.
            cut = next((k for k, p in enumerate(members) if p >= split), len(members))
            left, right = members[:cut], members[cut:]
            if not left or not right:
                continue
            if len(members) > cap:
                result.pairs_skipped += len(left) * len(right)
                name = _key_name(key)
                result.capped_blocks[name] = result.capped_blocks.get(name, 0) + 1
                continue
            for i in left:
                base = i * n
                found.update([base + j for j in right])
    result.codes = sorted(found)
    return result


class MatchIndex:
    """Blocking key value -> record ids, kept current as records are added, changed, removed.

    Incremental matching asks it for the candidates of one new record. Keys are stored by
    their hash to halve memory; a collision only adds a candidate, which scoring then rejects.
    """

    __slots__ = ("_blocks", "_config", "_keys", "skipped")

    def __init__(self, config: CompiledConfig):
        self._config = config
        # key hash -> one id, or a list of ids once a second record shares the key
        self._blocks: dict[int, str | list[str]] = {}
        # id -> its key hashes, to take it out again
        self._keys: dict[str, tuple[int, ...]] = {}
        # Pairs the last candidates() call skipped in blocks over max_block_size.
        self.skipped = 0

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, record_id: object) -> bool:
        return record_id in self._keys

    def add(self, record_id: str, record: Record) -> None:
        """Index a record (replacing what was indexed under the same id)."""
        if record_id in self._keys:
            self.remove(record_id)
        hashes = tuple(dict.fromkeys(hash(k) for k in self._config.block_keys(record)))
        self._keys[record_id] = hashes
        blocks = self._blocks
        for h in hashes:
            members = blocks.get(h)
            if members is None:
                blocks[h] = record_id
            elif isinstance(members, str):
                blocks[h] = [members, record_id]
            else:
                members.append(record_id)

    update = add

    def remove(self, record_id: str) -> bool:
        """Take a record out; False when it was not indexed."""
        hashes = self._keys.pop(record_id, None)
        if hashes is None:
            return False
        blocks = self._blocks
        for h in hashes:
            members = blocks.get(h)
            if members is None:
                continue
            if isinstance(members, str):
                if members == record_id:
                    del blocks[h]
                continue
            if record_id in members:
                members.remove(record_id)
            if len(members) == 1:
                blocks[h] = members[0]
        return True

    def candidates(self, record: Record, exclude: str | None = None) -> list[str]:
        """Ids sharing at least one blocking key with the record, first-found first."""
        cap = self._config.config.max_block_size
        found: dict[str, None] = {}
        skipped = 0
        for key in self._config.block_keys(record):
            members = self._blocks.get(hash(key))
            if members is None:
                continue
            if isinstance(members, str):
                found[members] = None
            elif len(members) > cap:
                skipped += len(members)
            else:
                found.update(dict.fromkeys(members))
        self.skipped = skipped
        if exclude is not None:
            found.pop(exclude, None)
        return list(found)
