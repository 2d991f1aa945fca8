"""Delivery for connectors that write a round's records as files: blocking writes in a
thread, one record alone through the same path."""

from __future__ import annotations

import asyncio

from mastersync.ports.outbound import DeliveryAck, DeliveryFailed, DeliveryRequest


class FileRounds:
    """send_batch / send / close over a blocking ``_write(requests)``."""

    def _write(self, requests: list[DeliveryRequest]) -> list[DeliveryAck | DeliveryFailed]:
        raise NotImplementedError

    async def send_batch(
        self, requests: list[DeliveryRequest]
    ) -> list[DeliveryAck | DeliveryFailed]:
        """Write a round's records (one file per subscription)."""
        return await asyncio.to_thread(self._write, requests)

    async def send(self, request: DeliveryRequest) -> DeliveryAck:
        """Write one record (a file of its own)."""
        [outcome] = await self.send_batch([request])
        if isinstance(outcome, DeliveryFailed):
            raise outcome
        return outcome

    async def close(self) -> None:
        """Nothing to release."""
