"""API consumers and their credentials: an API key that is also the OAuth2 client secret."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
from collections import Counter
from collections.abc import Callable, Iterable

from mastersync.domain.governance.access import check_scopes
from mastersync.domain.landscape.policy import CompiledLandscape
from mastersync.pipeline.ids import utc_now
from mastersync.ports.governance import Consumer, Governance, SigningKey, Usage

NAME = re.compile(r"^[a-z][a-z0-9_-]{0,39}$")


class ConsumerError(ValueError):
    """A consumer cannot be registered or changed as asked."""


def _hash(secret: str) -> str:
    # The secret is 256 random bits, so one SHA-256 round is enough (a password would need
    # a slow hash; this is not one).
    return hashlib.sha256(secret.encode()).hexdigest()


def add_consumer(
    governance: Governance,
    landscape: CompiledLandscape,
    name: str,
    *,
    scopes: Iterable[str],
    person: str | None = None,
    system: str | None = None,
    partner_channel: str | None = None,
    rate_per_minute: int = 600,
    quota_per_day: int | None = None,
    clock: Callable[[], str] = utc_now,
) -> tuple[Consumer, str]:
    """Register a consumer; returns it with its API key, which is shown only this once."""
    if not NAME.match(name):
        raise ConsumerError(
            f"consumer name {name!r}: use 1-40 lower-case letters, digits, '_' or '-', "
            "starting with a letter"
        )
    if system is not None and system not in landscape.config.systems:
        raise ConsumerError(
            f"consumer {name}: unknown system {system!r}; the systems of the landscape are "
            f"{', '.join(landscape.config.systems)}"
        )
    if partner_channel is not None and system is None:
        raise ConsumerError(
            f"consumer {name}: a channel partner needs its own system (--system) so that "
            "its customers can be told apart"
        )
    if rate_per_minute < 1 or (quota_per_day is not None and quota_per_day < 1):
        raise ConsumerError(f"consumer {name}: rate and quota must be at least 1")
    try:
        checked = check_scopes(scopes)
    except ValueError as exc:
        raise ConsumerError(f"consumer {name}: {exc}") from None
    secret = secrets.token_hex(32)
    consumer = Consumer(
        name=name,
        person=person or name,
        scopes=checked,
        secret_hash=_hash(secret),
        created_at=clock(),
        system=system,
        partner_channel=partner_channel,
        rate_per_minute=rate_per_minute,
        quota_per_day=quota_per_day,
    )
    governance.add_consumer(consumer)
    return consumer, f"{name}.{secret}"


def check_secret(governance: Governance, name: str, secret: str) -> Consumer | None:
    """The active consumer whose secret this is, else None (no hint which part was wrong)."""
    consumer = governance.consumer(name)
    presented = _hash(secret)
    if consumer is None or consumer.status != "active":
        hmac.compare_digest(presented, presented)  # same work whether or not the name exists
        return None
    return consumer if hmac.compare_digest(presented, consumer.secret_hash) else None


def check_api_key(governance: Governance, key: str) -> Consumer | None:
    """The active consumer an API key (``name.secret``) belongs to, else None."""
    name, dot, secret = key.rpartition(".")
    if not dot or not NAME.match(name) or not secret:
        return None
    return check_secret(governance, name, secret)


def signing_key(governance: Governance, clock: Callable[[], str] = utc_now) -> SigningKey:
    """The key that signs new tokens: the newest active one (made on first use)."""
    keys = governance.signing_keys()
    if keys:
        return keys[0]
    return rotate_key(governance, clock)


def rotate_key(governance: Governance, clock: Callable[[], str] = utc_now) -> SigningKey:
    """Add a new signing key; older keys still verify tokens until they are retired."""
    key = SigningKey(f"k{secrets.token_hex(6)}", secrets.token_hex(32), clock())
    governance.add_signing_key(key)
    return key


class UsageCounter:
    """Counts calls per consumer, version and route in memory; ``flush`` writes them."""

    def __init__(self, governance: Governance, clock: Callable[[], str] = utc_now) -> None:
        self.governance = governance
        self.clock = clock
        self._lock = threading.Lock()
        self._counts: Counter[tuple[str, str, str, str]] = Counter()
        self._last: dict[tuple[str, str, str, str], str] = {}

    def count(self, consumer: str, api_version: str, route: str) -> None:
        """One call."""
        now = self.clock()
        key = (consumer, api_version, route, now[:10])
        with self._lock:
            self._counts[key] += 1
            self._last[key] = now

    def flush(self) -> int:
        """Write the counts gathered so far; returns how many calls were written."""
        with self._lock:
            counts, last = self._counts, self._last
            self._counts, self._last = Counter(), {}
        rows = [Usage(*key, calls, last[key]) for key, calls in counts.items()]
        self.governance.add_usage(rows)
        return sum(counts.values())
