"""How a sandbox consumer misbehaves (settings only; light to import)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class RateLimit(BaseModel):
    """Every ``every`` requests, ``burst`` of them get 429 with a Retry-After."""

    model_config = ConfigDict(extra="forbid")
    every: int = Field(ge=1)
    burst: int = Field(default=1, ge=1)
    retry_after: float = Field(default=1.0, ge=0)


class Faults(BaseModel):
    """How the sandbox target misbehaves."""

    model_config = ConfigDict(extra="forbid")
    error_rate: float = Field(default=0.0, ge=0, le=1)  # 503s
    timeout_rate: float = Field(default=0.0, ge=0, le=1)  # hangs past the timeout
    rate_limit: RateLimit | None = None  # 429 bursts
    slow_ms: float = Field(default=0.0, ge=0)  # added to every call
    # Down between these epoch seconds; every call fails (connection refused).
    outages: list[tuple[float, float]] = Field(default_factory=list)
    # Applies the change, then loses the acknowledgement: the hub must retry, and the
    # retry must come back as a duplicate, never as a second application.
    duplicate_ack_rate: float = Field(default=0.0, ge=0, le=1)
    # Records it always rejects (422), as a condition on the payload.
    reject_when: str | None = None
    # Records it always fails on with a 503 (a transient error that never clears).
    fail_when: str | None = None
    seed: int | None = None
