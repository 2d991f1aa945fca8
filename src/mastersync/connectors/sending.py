"""Sending one delivery through a blocking client, with its failures classified."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from mastersync.ports.connector import ConnectorError
from mastersync.ports.outbound import (
    DeliveryAck,
    DeliveryRequest,
    TerminalFailure,
    TransientFailure,
)


async def send_in_thread(
    send: Callable[[DeliveryRequest], DeliveryAck], request: DeliveryRequest
) -> DeliveryAck:
    """Run a blocking ``send`` off the event loop; a connector error becomes a delivery
    failure of the same kind, keeping its status and Retry-After."""
    try:
        return await asyncio.to_thread(send, request)
    except ConnectorError as exc:
        failure = TransientFailure if exc.transient else TerminalFailure
        raise failure(exc.message, status=exc.status, retry_after=exc.retry_after) from None
