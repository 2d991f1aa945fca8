"""The JetStream pull consumer: batches, lingering waits, and nothing dropped in between."""

from __future__ import annotations

import asyncio
import uuid

import nats
import pytest
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, StreamConfig

from mastersync.backends.nats import NatsFeed, NatsRelay
from mastersync.backends.nats.pull import PullConsumer
from mastersync.bootstrap import open_store
from mastersync.pipeline.ids import utc_now
from tests.backends.test_event_feeds import NATS, _drop_stream, append, event, nats_url


async def _setup(ack_wait: float = 30.0) -> tuple[Client, JetStreamContext, str]:
    nats_url()  # fails clearly when NATS is down
    nc = await nats.connect(f"nats://{NATS[0]}:{NATS[1]}")
    js = nc.jetstream()
    stream = f"PULL{uuid.uuid4().hex[:8]}"
    await js.add_stream(StreamConfig(name=stream, subjects=[f"{stream}.>"]))
    await js.add_consumer(
        stream, ConsumerConfig(durable_name="d", ack_policy=AckPolicy.EXPLICIT, ack_wait=ack_wait)
    )
    return nc, js, stream


def test_batches_in_order_then_empty_after_the_timeout() -> None:
    async def main() -> None:
        nc, js, stream = await _setup()
        try:
            for i in range(25):
                await js.publish(f"{stream}.a", str(i).encode())
            consumer = PullConsumer(nc, stream, "d")
            seen: list[int] = []
            for _ in range(3):
                msgs = await consumer.fetch(10, 1.0)
                seen += [int(m.data) for m in msgs]
                for m in msgs:
                    await m.ack()
            assert seen == list(range(25))
            loop = asyncio.get_running_loop()
            started = loop.time()
            assert await consumer.fetch(10, 0.3) == []
            assert loop.time() - started >= 0.25
        finally:
            await js.delete_stream(stream)
            await nc.close()

    asyncio.run(main())


def test_a_lingering_fetch_returns_on_the_first_message_and_keeps_later_ones() -> None:
    async def main() -> None:
        nc, js, stream = await _setup()
        try:
            consumer = PullConsumer(nc, stream, "d")

            async def publish_later() -> None:
                await asyncio.sleep(0.1)
                await js.publish(f"{stream}.a", b"first")
                await asyncio.sleep(0.1)
                await js.publish(f"{stream}.a", b"second")

            publisher = asyncio.create_task(publish_later())
            loop = asyncio.get_running_loop()
            started = loop.time()
            msgs = await consumer.fetch(10, 5.0)
            assert [m.data for m in msgs] == [b"first"]
            assert loop.time() - started < 2.0  # well before the 5 s timeout
            await publisher
            # The open request brought the second message after the first fetch returned:
            # it waits in the consumer's buffer, not lost until the ack wait runs out.
            msgs += await consumer.fetch(10, 1.0)
            assert [m.data for m in msgs] == [b"first", b"second"]
        finally:
            await js.delete_stream(stream)
            await nc.close()

    asyncio.run(main())


def test_a_nak_comes_back_and_an_unacked_message_is_redelivered() -> None:
    async def main() -> None:
        nc, js, stream = await _setup(ack_wait=1.0)
        try:
            await js.publish(f"{stream}.a", b"x")
            await js.publish(f"{stream}.a", b"y")
            consumer = PullConsumer(nc, stream, "d")
            first = await consumer.fetch(10, 1.0)
            assert [m.data for m in first] == [b"x", b"y"]
            await first[0].nak()  # x comes back at once; y is neither acked nor naked
            again = await consumer.fetch(10, 1.0)
            assert [m.data for m in again] == [b"x"]
            await again[0].ack()
            later = await consumer.fetch(10, 3.0)  # y, after its 1 s ack wait
            assert [m.data for m in later] == [b"y"]
            assert later[0].metadata.num_delivered == 2
        finally:
            await js.delete_stream(stream)
            await nc.close()

    asyncio.run(main())


def test_a_deleted_consumer_makes_the_pull_consumer_suspect_whether_waiting_or_asking() -> None:
    """A waiting request gets 409 "Consumer Deleted"; a new one gets no answer at all."""

    async def main() -> None:
        nc, js, stream = await _setup()
        try:
            consumer = PullConsumer(nc, stream, "d")
            assert await consumer.fetch(5, 0.2) == []
            assert not consumer.suspect  # an existing consumer answers, even with nothing

            async def delete_soon() -> None:
                await asyncio.sleep(0.2)
                await js.delete_consumer(stream, "d")

            deleting = asyncio.create_task(delete_soon())
            assert await consumer.fetch(5, 1.0) == []
            await deleting
            assert consumer.suspect

            again = PullConsumer(nc, stream, "d")
            assert await again.fetch(5, 0.3) == []
            assert again.suspect
            await consumer.stop()
            await again.stop()
        finally:
            await js.delete_stream(stream)
            await nc.close()

    asyncio.run(main())


def test_the_feed_makes_a_deleted_consumer_anew_and_goes_on(sqlite_url: str) -> None:
    """An operator deleting a subscription's durable consumer does not silence it: the feed
    looks it up again, makes it anew, and later events arrive (earlier ones come again, for
    the queue's key and the applied versions to drop)."""
    store = open_store(sqlite_url)
    store.upgrade()
    bus = nats_url()
    feed, relay = NatsFeed(store, bus, utc_now), NatsRelay(store, bus, utc_now)
    append(store, [event(1), event(2)])

    async def main() -> list[list[str]]:
        rounds: list[list[str]] = []
        try:
            await relay.relay(100)
            events, settle = await feed.take("shop.items", "item", 10)
            await settle(True)
            rounds.append([e.event_id for _, e in events])
            js = await feed.connection.js()
            await js.delete_consumer(feed.settings.stream, feed.settings.durable("shop.items"))
            append(store, [event(3)])
            await relay.relay(100)
            for _ in range(3):
                events, settle = await feed.take("shop.items", "item", 10)
                await settle(True)
                rounds.append([e.event_id for _, e in events])
            return rounds
        finally:
            await feed.close()
            await relay.close()

    try:
        rounds = asyncio.run(main())
        assert rounds[0] == ["evt_0001", "evt_0002"]
        assert rounds[1] == []  # the first fetch after the delete finds it gone
        assert "evt_0003" in rounds[2] + rounds[3]
    finally:
        asyncio.run(_drop_stream(bus))
        store.close()


def test_a_suspect_consumer_that_still_exists_is_kept_with_what_it_buffered(
    sqlite_url: str,
) -> None:
    """A server slow to answer makes the consumer suspect too; the lookup finds it there,
    and the feed keeps the same pull consumer (and the messages it holds)."""
    store = open_store(sqlite_url)
    store.upgrade()
    bus = nats_url()
    feed, relay = NatsFeed(store, bus, utc_now), NatsRelay(store, bus, utc_now)
    append(store, [event(1)])

    async def main() -> tuple[bool, bool, list[str]]:
        try:
            await relay.relay(100)
            await feed.take("shop.items", "item", 0)  # makes the consumer, takes nothing
            consumer = feed._consumers["shop.items"]
            consumer.suspect = True
            events, settle = await feed.take("shop.items", "item", 10)
            await settle(True)
            same = feed._consumers["shop.items"] is consumer
            return same, consumer.suspect, [e.event_id for _, e in events]
        finally:
            await feed.close()
            await relay.close()

    try:
        same, suspect, taken = asyncio.run(main())
        assert same and not suspect
        assert taken == ["evt_0001"]
    finally:
        asyncio.run(_drop_stream(bus))
        store.close()


async def _take_all(feed: NatsFeed, rounds: int = 6) -> list[str]:
    """Event ids taken in a few rounds, a failed round (the stream gone) tried again."""
    taken: list[str] = []
    for _ in range(rounds):
        try:
            events, settle = await feed.take("shop.items", "item", 10)
        except Exception:
            continue
        await settle(True)
        taken += [e.event_id for _, e in events]
    return taken


def test_a_deleted_stream_is_made_again_and_the_outbox_published_to_it_again(
    sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Deleting the stream lost every event published and not yet taken, for good: the
    relay's cursor said published, the hub said idle, lag read 0. A hub started afterwards
    publishes the outbox again (deliverers drop what their subscriptions recorded)."""
    store = open_store(sqlite_url)
    store.upgrade()
    bus = nats_url()
    append(store, [event(1), event(2)])

    holder = NatsRelay(store, bus, utc_now).holder

    async def first() -> None:
        relay = NatsRelay(store, bus, utc_now)
        relay.holder = holder  # the restarted hub's relay takes the lease at once
        try:
            assert await relay.relay(100) == 2
            js = await relay.connection.js()
            await js.delete_stream(relay.settings.stream)
        finally:
            await relay.close()

    async def restarted() -> list[str]:
        feed, relay = NatsFeed(store, bus, utc_now), NatsRelay(store, bus, utc_now)
        relay.holder = holder
        try:
            await relay.relay(100)
            return await _take_all(feed)
        finally:
            await feed.close()
            await relay.close()

    try:
        asyncio.run(first())
        with caplog.at_level("WARNING", logger="mastersync.hub"):
            taken = asyncio.run(restarted())
        assert taken == ["evt_0001", "evt_0002"]
        assert "holds no message, though outbox events up to position 2" in caplog.text
    finally:
        asyncio.run(_drop_stream(bus))
        store.close()


def test_a_stream_deleted_under_a_running_hub_is_made_again_and_filled_again(
    sqlite_url: str,
) -> None:
    store = open_store(sqlite_url)
    store.upgrade()
    bus = nats_url()
    feed, relay = NatsFeed(store, bus, utc_now), NatsRelay(store, bus, utc_now)
    append(store, [event(1), event(2)])

    async def main() -> list[str]:
        try:
            await relay.relay(100)
            js = await relay.connection.js()
            await js.delete_stream(relay.settings.stream)
            append(store, [event(3)])
            taken = await _take_all(feed, 2)  # the feed makes the stream again
            for _ in range(3):  # the relay: first publish to a new stream, then all again
                try:
                    await relay.relay(100)
                except Exception:
                    continue
            return taken + await _take_all(feed)
        finally:
            await feed.close()
            await relay.close()

    try:
        assert sorted(set(asyncio.run(main()))) == ["evt_0001", "evt_0002", "evt_0003"]
    finally:
        asyncio.run(_drop_stream(bus))
        store.close()


def test_messages_a_closing_consumer_holds_untaken_are_given_back_at_once() -> None:
    """A lingering request's messages that arrived after the last fetch waited out the ack
    wait (30 s) when the hub stopped: a hub started right after sat idle with lag."""

    async def main() -> None:
        nc, js, stream = await _setup(ack_wait=30.0)
        try:
            consumer = PullConsumer(nc, stream, "d")
            loop = asyncio.get_running_loop()

            async def publish_later() -> None:
                await asyncio.sleep(0.1)
                await js.publish(f"{stream}.a", b"0")

            publisher = asyncio.create_task(publish_later())
            # A lingering fetch returns on the first message; its request stays open and
            # brings the next ones into the buffer, untaken.
            [first] = await consumer.fetch(10, 0.5)
            await publisher
            await first.ack()
            for i in (1, 2):
                await js.publish(f"{stream}.a", str(i).encode())
            while len(consumer._msgs) < 2:
                await asyncio.sleep(0.02)
            await consumer.release()
            again = PullConsumer(nc, stream, "d")
            started = loop.time()
            got: list[int] = []
            while len(got) < 2 and loop.time() - started < 5:
                got += [int(m.data) for m in await again.fetch(10, 1.0)]
            assert sorted(got) == [1, 2]
            assert loop.time() - started < 5  # not after the 30 s ack wait
        finally:
            await js.delete_stream(stream)
            await nc.close()

    asyncio.run(main())
