"""What fitting and batch deduplication report, and clustering of auto-linked pairs."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from mastersync.domain.matching.estimation import Parameters
from mastersync.domain.matching.explain import Decision

# (stage, done, total): stages are "prepare", "compare", "estimate" and "score".
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True, slots=True)
class ScoredPair:
    """One candidate pair at or above the review threshold."""

    left: str
    right: str
    probability: float
    weight: float
    decision: Decision

    def to_dict(self) -> dict[str, Any]:
        """JSON-shaped form."""
        return {
            "left": self.left,
            "right": self.right,
            "probability": self.probability,
            "weight": round(self.weight, 4),
            "decision": self.decision.value,
        }


@dataclass(frozen=True)
class FitReport:
    """How the weights were estimated."""

    parameters: Parameters
    candidate_pairs: int
    # Candidate pairs EM ran on (all, or a sample of em.sample_size).
    pairs_used: int
    random_pairs: int
    iterations: int
    converged: bool
    # Comparisons whose level never varied, ignored (em.on_constant: ignore).
    ignored: tuple[str, ...]
    labelled_pairs: int
    pairs_skipped: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-shaped form, parameters included."""
        return {
            "candidate_pairs": self.candidate_pairs,
            "pairs_used": self.pairs_used,
            "random_pairs": self.random_pairs,
            "iterations": self.iterations,
            "converged": self.converged,
            "ignored": list(self.ignored),
            "labelled_pairs": self.labelled_pairs,
            "pairs_skipped": self.pairs_skipped,
            "parameters": self.parameters.model_dump(),
        }


@dataclass(frozen=True)
class DedupeReport:
    """The outcome of a batch run: pairs to link or review, and clusters of linked records."""

    records: int
    pairs_compared: int
    # Pairs not compared because their block was larger than max_block_size (an upper bound:
    # another key may still have found some of them).
    pairs_skipped: int
    capped_blocks: dict[str, int]
    links: list[ScoredPair]
    reviews: list[ScoredPair]
    # Connected components of the auto-link pairs, two records or more, largest first.
    clusters: list[list[str]]
    fit: FitReport | None = None
    decisions: dict[str, int] = field(default_factory=dict)

    @property
    def cluster_sizes(self) -> dict[int, int]:
        """Cluster size -> number of clusters of that size."""
        return dict(sorted(Counter(len(c) for c in self.clusters).items()))

    def to_dict(self) -> dict[str, Any]:
        """JSON-shaped form."""
        return {
            "records": self.records,
            "pairs_compared": self.pairs_compared,
            "pairs_skipped": self.pairs_skipped,
            "capped_blocks": self.capped_blocks,
            "decisions": self.decisions,
            "cluster_sizes": {str(k): v for k, v in self.cluster_sizes.items()},
            "clusters": self.clusters,
            "links": [p.to_dict() for p in self.links],
            "reviews": [p.to_dict() for p in self.reviews],
            "fit": self.fit.to_dict() if self.fit else None,
        }


def connected_components(ids: Sequence[str], edges: Iterable[tuple[int, int]]) -> list[list[str]]:
    """Clusters (transitive closure) of the edges over record positions, two or more records."""
    parent = list(range(len(ids)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]  # path halving keeps trees flat
            i = parent[i]
        return i

    for a, b in edges:
        ra, rb = root(a), root(b)
        if ra != rb:
            if ra < rb:
                parent[rb] = ra
            else:
                parent[ra] = rb
    groups: dict[int, list[str]] = {}
    for i in range(len(ids)):
        groups.setdefault(root(i), []).append(ids[i])
    clusters = [g for g in groups.values() if len(g) > 1]
    clusters.sort(key=lambda g: (-len(g), g[0]))
    return clusters
