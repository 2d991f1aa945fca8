"""NATS JetStream as the event bus: a relay from the outbox, durable pull consumers."""

from mastersync.backends.nats.bus import NatsFeed, NatsRelay

__all__ = ["NatsFeed", "NatsRelay"]
