"""Blocking: which pairs are worth comparing. A pair is a candidate when the two records share
the value of at least one blocking key, so a pair one key misses another can catch.

Blocks larger than ``max_block_size`` are skipped and counted: one over-common value ("gmbh",
a shared switchboard number) would otherwise turn into millions of pointless comparisons.

Incremental matching (one new record against the golden records) also caps the candidates it
scores per record at ``max_candidates``: when the record's blocks hold more, the most promising
are kept, ranked by how many of the record's blocking keys they share (most first), then by the
smallest block they share with it (a rare value says more than a common one), then newest first
(the highest id: master ids are time-ordered). ``Candidates.cut_at`` names the last one kept,
so any pair can be told apart as compared or cut.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import chain

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
                name = key_name(key)
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
                name = key_name(key)
                result.capped_blocks[name] = result.capped_blocks.get(name, 0) + 1
                continue
            for i in left:
                base = i * n
                found.update([base + j for j in right])
    result.codes = sorted(found)
    return result


@dataclass(frozen=True, slots=True)
class Rank:
    """Where a candidate stands among a record's candidates: lower sorts first."""

    shared_keys: int
    # The size of the smallest of the record's blocks the candidate is in.
    block_size: int
    id: str

    def before(self, other: Rank) -> bool:
        """True when this rank comes first (is kept before ``other``)."""
        mine = (-self.shared_keys, self.block_size)
        theirs = (-other.shared_keys, other.block_size)
        return mine < theirs or (mine == theirs and self.id > other.id)

    def to_dict(self) -> dict[str, object]:
        """JSON-shaped form."""
        return {"shared_keys": self.shared_keys, "block_size": self.block_size, "id": self.id}


@dataclass(frozen=True, slots=True)
class Candidates:
    """The candidates one record is scored against, and what ``max_candidates`` cut."""

    ids: list[str]
    # Distinct records in the record's blocks (blocks over max_block_size left out).
    found: int
    max_candidates: int
    # Candidates ranked below the last one kept, never scored.
    cut: int = 0
    # The last candidate kept when the cap cut: a candidate ranking after it was not scored.
    cut_at: Rank | None = None

    def to_dict(self) -> dict[str, object]:
        """JSON-shaped form, stored with the decisions of a record whose candidates were cut."""
        return {
            "found": self.found,
            "scored": len(self.ids),
            "max_candidates": self.max_candidates,
            "cut": self.cut,
            "cut_at": self.cut_at.to_dict() if self.cut_at else None,
        }


def _ranked(blocks: Sequence[Collection[str]]) -> Iterator[Rank]:
    """Every member of the blocks, best first (see the module's docstring).

    Set operations do the heavy lifting: records in two or more of the blocks are counted and
    ranked together; the rest come block by block, smallest first, newest first.
    """
    sets = sorted(
        (b if isinstance(b, set | frozenset) else set(b) for b in blocks), key=len
    )  # stable: equal sizes keep the record's key order
    multi: set[str] = set()
    for i, a in enumerate(sets):
        for b in sets[i + 1 :]:
            multi |= a & b
    if multi:
        shared: Counter[str] = Counter()
        smallest: dict[str, int] = {}
        for members in reversed(sets):  # the smallest block writes last
            inside = members & multi
            shared.update(inside)
            smallest.update(dict.fromkeys(inside, len(members)))
        order = sorted(multi, reverse=True)
        order.sort(key=lambda m: (-shared[m], smallest[m]))
        for member in order:
            yield Rank(shared[member], smallest[member], member)
    start = 0
    while start < len(sets):
        size = len(sets[start])
        end = start
        while end < len(sets) and len(sets[end]) == size:
            end += 1
        singles = set().union(*sets[start:end]) - multi
        for member in sorted(singles, reverse=True):
            yield Rank(1, size, member)
        start = end


def ranked(blocks: Sequence[Collection[str]], exclude: str | None = None) -> list[Rank]:
    """Every candidate of a record's blocks in the order ``select`` keeps them over the cap."""
    return [r for r in _ranked(blocks) if r.id != exclude]


def key_name(key: str) -> str:
    """The blocking key definition a key value belongs to ("email" of "email:a@b.c")."""
    return key.split(":", 1)[0]


def select(
    blocks: Sequence[Collection[str]],
    max_candidates: int,
    usable: Callable[[str], bool] | None = None,
    exclude: str | None = None,
) -> Candidates:
    """The candidates to score from a record's blocks, at most ``max_candidates`` of them.

    ``blocks`` are the members of each of the record's (distinct) blocking keys, in key order.
    Within the cap every member is kept in first-found order, exactly as without a cap. Over
    it, the best-ranked are kept. ``exclude`` (the record itself) is never a candidate;
    ``usable`` leaves out candidates that cannot be scored (not loaded, merged away): they
    take no place under the cap and are not counted as cut.
    """
    union = dict.fromkeys(chain.from_iterable(blocks))
    if exclude is not None:
        union.pop(exclude, None)
    if len(union) > max_candidates:
        return _cut(blocks, len(union), max_candidates, usable, exclude)
    ids = list(union) if usable is None else [c for c in union if usable(c)]
    return Candidates(ids, len(union), max_candidates)


def _cut(
    blocks: Sequence[Collection[str]],
    found: int,
    max_candidates: int,
    usable: Callable[[str], bool] | None,
    exclude: str | None,
) -> Candidates:
    ids: list[str] = []
    last: Rank | None = None
    unusable = 0
    for rank in _ranked(blocks):
        if rank.id == exclude:
            continue
        if usable is not None and not usable(rank.id):
            unusable += 1
            continue
        ids.append(rank.id)
        last = rank
        if len(ids) == max_candidates:
            break
    cut = found - len(ids) - unusable
    return Candidates(ids, found, max_candidates, cut, last if cut else None)


class MatchIndex:
    """Blocking key value -> record ids, kept current as records are added, changed, removed.

    Incremental matching asks it for the candidates of one new record. Keys are stored by
    their hash to halve memory; a collision only adds a candidate, which scoring then rejects.
    """

    __slots__ = ("_blocks", "_config", "_keys", "last", "skipped")

    def __init__(self, config: CompiledConfig):
        self._config = config
        # key hash -> one id, or a list of ids once a second record shares the key
        self._blocks: dict[int, str | list[str]] = {}
        # id -> its key hashes, to take it out again
        self._keys: dict[str, tuple[int, ...]] = {}
        # Pairs the last candidates() call skipped in blocks over max_block_size.
        self.skipped = 0
        # The last candidates() call's selection: what max_candidates cut.
        self.last = Candidates([], 0, config.config.max_candidates)

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
        """Ids sharing at least one blocking key with the record, first-found first.

        At most ``max_candidates`` of them, the best-ranked (see ``select``); ``self.last``
        tells what the cap cut.
        """
        return self.select(record, exclude).ids

    def select(self, record: Record, exclude: str | None = None) -> Candidates:
        """The record's candidates (see ``select``), and how many its blocks held."""
        config = self._config.config
        cap = config.max_block_size
        blocks: list[Collection[str]] = []
        skipped = 0
        for key in dict.fromkeys(self._config.block_keys(record)):
            members = self._blocks.get(hash(key))
            if members is None:
                continue
            if isinstance(members, str):
                blocks.append((members,))
            elif len(members) > cap:
                skipped += len(members)
            else:
                blocks.append(members)
        self.skipped = skipped
        self.last = select(blocks, config.max_candidates, exclude=exclude)
        return self.last
