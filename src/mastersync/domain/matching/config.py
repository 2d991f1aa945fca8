"""Matching configuration, as it sits in the landscape under ``domains.<domain>.matching``.

Pydantic checks the shape; names (comparators, normalisers) and cross-field rules are checked
when a ``Matcher`` compiles the configuration, as ``ConfigError`` with the key path.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

NAME_PATTERN = r"^[a-z][a-z0-9_]{0,39}$"


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ComparisonConfig(_Config):
    """One comparison: the fields it reads, how values are cleaned, how they become a level."""

    name: str = Field(pattern=NAME_PATTERN)
    # Dotted paths, descending into lists ("addresses.city"); values of all fields are pooled
    # and the best-agreeing pair counts (name vs legal_name, email vs contacts.email).
    fields: list[str] = Field(min_length=1)
    normalisers: list[str] = Field(default_factory=list)
    comparator: str
    # Similarities (jaro_winkler, token_set) best first, or distances (edit_distance: edits,
    # date: days, numeric: gap) smallest first; None takes the comparator's defaults.
    thresholds: list[float] | None = None
    # numeric only: thresholds are fractions of the larger value (0.05 = within 5%).
    relative: bool = False


class KeyPart(_Config):
    """One part of a blocking key: a field (or several, values pooled) and its normalisers."""

    # Several fields pool their values: [given_name, surname] still meets when they are swapped.
    field: str | list[str]
    normalisers: list[str] = Field(default_factory=list)


class BlockingKey(_Config):
    """Records sharing every part's value are candidate pairs (parts joined into one key)."""

    name: str = Field(pattern=NAME_PATTERN)
    parts: list[KeyPart] = Field(min_length=1)

    @field_validator("parts", mode="before")
    @classmethod
    def _short_parts(cls, value: Any) -> Any:
        # "postal_code" is short for {field: postal_code} in YAML.
        if isinstance(value, list):
            return [{"field": p} if isinstance(p, str) else p for p in value]
        return value


class Thresholds(_Config):
    """Where decisions change: at or above ``link`` auto-link, at or above ``review`` review."""

    link: float = 0.99
    review: float = 0.8
    # probability: 0..1 match probability; weight: the log2 Bayes factor incl. the prior.
    scale: Literal["probability", "weight"] = "probability"


class EMConfig(_Config):
    """How m and u probabilities are estimated from the user's own data."""

    max_iterations: int = Field(default=100, ge=1, le=10_000)
    tolerance: float = Field(default=1e-4, gt=0)
    seed: int = 42
    # Candidate pairs compared by fit() (a deterministic sample when blocking finds more).
    sample_size: int = Field(default=200_000, ge=1)
    # Random pairs compared to initialise u (what agreement looks like by chance).
    u_sample_size: int = Field(default=10_000, ge=0)
    # Re-estimate u on the candidate pairs (classic EM, the default: candidates are what gets
    # scored); false keeps u from random pairs, as splink does.
    train_u: bool = True
    # Fix the prior match probability among candidate pairs instead of estimating it.
    prior: float | None = Field(default=None, gt=0, lt=1)
    # Labelled pairs refine EM's estimates; the EM estimate counts as this many pairs.
    label_strength: float = Field(default=50.0, ge=0)
    # Fewer candidate pairs than this cannot support an estimate: fitting fails (TooFewPairs)
    # and callers keep the weights they have.
    min_pairs: int = Field(default=100, ge=1)
    # A comparison whose level never varies cannot be estimated: fail, or ignore it (weight 0).
    on_constant: Literal["error", "ignore"] = "error"


class MatchConfig(_Config):
    """Matching of one domain: comparisons, blocking keys, thresholds and estimation."""

    comparisons: list[ComparisonConfig] = Field(min_length=1)
    blocking: list[BlockingKey] = Field(min_length=1)
    thresholds: Thresholds = Field(default_factory=Thresholds)
    # Auto-link needs both sides' values in at least (1 - max_missing) of the comparisons;
    # sparser pairs go to review at most.
    max_missing: float = Field(default=0.5, ge=0, le=1)
    # A block holding more records than this is skipped (and counted) rather than compared.
    max_block_size: int = Field(default=1_000, ge=2)
    # Incremental matching (ingest, Matcher.match) scores at most this many candidates per new
    # record: those sharing the most blocking keys with it first, then those sharing the
    # smallest block, then the newest (highest id). Fewer candidates are all scored.
    max_candidates: int = Field(default=50, ge=1)
    # Field holding the record's ISO country: the default region for phone numbers.
    country_field: str | None = "country"
    em: EMConfig = Field(default_factory=EMConfig)
