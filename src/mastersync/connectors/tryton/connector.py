"""The Tryton connector: incremental and full reads per domain, upserts and deactivation
out, over a Tryton server's JSON-RPC (or REST) API."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from typing import Any

from mastersync.connectors.registry import ConnectorContext
from mastersync.connectors.sending import send_in_thread
from mastersync.connectors.tryton.reader import ModelReader
from mastersync.connectors.tryton.rpc import JsonRpc, Rest, Transport, with_retries
from mastersync.connectors.tryton.spec import TrytonRead, TrytonSettings, TrytonStock
from mastersync.connectors.tryton.stock import StockReader
from mastersync.connectors.tryton.writer import RecordWriter
from mastersync.domain.subscriptions import Operation
from mastersync.ports.connector import (
    CheckResult,
    ConnectorError,
    Page,
    TerminalError,
    TransientError,
)
from mastersync.ports.outbound import (
    DeliveryAck,
    DeliveryRequest,
    TerminalFailure,
)

# `mastersync check` counts records up to this many.
_CHECK_LIMIT = 1000


class TrytonConnector:
    """Reads from and writes to one Tryton database."""

    def __init__(self, settings: TrytonSettings, context: ConnectorContext) -> None:
        self.settings = settings
        self.system = context.system
        transport: Transport
        if settings.application_key is not None:
            transport = Rest(
                settings.url, settings.database, settings.application_key, settings.timeout
            )
        else:
            assert settings.user is not None
            assert settings.password is not None
            transport = JsonRpc(
                settings.url,
                settings.database,
                settings.user,
                settings.password,
                settings.timeout,
            )
        self.transport = transport
        self._context: dict[str, Any] | None = None
        self._writer: RecordWriter | None = None
        self._lock = threading.Lock()
        # Deliveries (subscription and master id) being written by a thread: one the hub
        # stopped waiting for goes on, and a retry beside it would not find its record yet.
        self._running: set[str] = set()
        self._running_lock = threading.Lock()

    @property
    def lists_inactive(self) -> bool:
        """Whether a listing may hold records deactivated in Tryton (archived ones)."""
        reads = [s for s in self.settings.read.values() if isinstance(s, TrytonRead)]
        # Stock positions are no records the hub deactivates: a system that reads nothing
        # else says nothing (the port's default). Asked once per run, not per domain, so
        # one listing that holds them is enough: false for it would report each archived
        # record as active again, and every repair archive it again.
        if not reads or any(s.inactive for s in reads):
            return True
        # Without `inactive`, Tryton's search leaves out records whose field `active` is
        # false (active_test), unless the settings' context turns that test off; and a
        # deactivation that clears another field leaves its records listed. A `filter` on
        # `active` changes nothing: the records found are read again under that test.
        if self.settings.context.get("active_test", True) is False:
            return True
        return any(w.active_field != "active" for w in self.settings.write.values())

    def listed_active(
        self, domain: str, subscription: str, native: Mapping[str, Any]
    ) -> bool | None:
        """Whether a listed record is active, by the `active_field` the subscription's write
        clears to deactivate; None when the listing does not show that field."""
        write = self.settings.write.get(subscription)
        read = self.settings.read.get(domain)
        # The flag of another model's record (a variant listed, its template written) is
        # not the one the hub cleared; stock positions carry none.
        if write is None or not isinstance(read, TrytonRead) or read.model != write.model:
            return None
        flag = native.get(write.active_field)
        # A Boolean as Tryton sends it: true/false, or 0/1 on SQLite. Missing (not among
        # the fields read) or null: nothing says which it is.
        if isinstance(flag, bool):
            return flag
        if isinstance(flag, int) and flag in (0, 1):
            return bool(flag)
        return None

    def context(self) -> dict[str, Any]:
        """The user's preferences (company, language) with the settings' context over them."""
        with self._lock:
            if self._context is None:
                prefs = with_retries(self.settings.retries, self.transport.preferences)
                self._context = {**prefs, **self.settings.context}
            return self._context

    def _reader(self, domain: str) -> ModelReader | StockReader:
        spec = self.settings.read.get(domain)
        if spec is None:
            raise TerminalError(f"{self.system}: no 'read' settings for {domain}")
        if isinstance(spec, TrytonStock):
            return StockReader(self.transport, spec, self.context())
        return ModelReader(self.transport, spec, self.context())

    # --- reading --------------------------------------------------------------------------
    def read(self, domain: str, cursor: str | None, limit: int) -> Page:
        """The next page of records changed since the saved cursor."""
        reader = self._reader(domain)
        result: Page = with_retries(self.settings.retries, reader.page, cursor, limit)
        return result

    def read_state(self, domain: str) -> Iterator[tuple[str, dict[str, Any]]]:
        """Every record of the domain, by Tryton id: a deleted record is simply absent."""
        yield from self._reader(domain).state(self.settings.page_size)

    def check(self) -> CheckResult:
        """Log in, and read one record of each domain."""
        details = [f"Tryton at {self.settings.url}, database {self.settings.database}"]
        try:
            context = self.context()
        except ConnectorError as exc:
            return CheckResult(False, [*details, f"cannot log in: {exc.message}"])
        if "company" in context:
            details.append(f"company {context['company']}")
        ok = True
        for domain, spec in self.settings.read.items():
            if isinstance(spec, TrytonStock):  # counted: the locations whose stock is read
                model, where, what = "stock.location", spec.locations, "location(s) of stock"
            else:
                model, where, what = spec.model, spec.filter, "record(s)"
            try:
                rows = self.transport.search_read(
                    model, list(where), ["id"], context, limit=_CHECK_LIMIT
                )
            except ConnectorError as exc:
                ok = False
                details.append(f"read {domain}: {exc.message}")
                continue
            count = f"{len(rows)}+" if len(rows) == _CHECK_LIMIT else str(len(rows))
            details.append(f"read {domain}: {model}, {count} {what}")
        for name, w in self.settings.write.items():
            details.append(f"write {name}: {w.model}")
        return CheckResult(ok, details)

    # --- writing --------------------------------------------------------------------------
    def _writer_(self) -> RecordWriter:
        context = self.context()
        with self._lock:
            if self._writer is None:
                self._writer = RecordWriter(self.transport, context)
            return self._writer

    def _send(self, request: DeliveryRequest) -> DeliveryAck:
        name = request.subscription.split(".", 1)[1]
        spec = self.settings.write.get(name)
        if spec is None:
            raise TerminalFailure(f"{self.system}: no 'write' settings for {request.subscription}")
        if request.operation is Operation.DEACTIVATE:
            if request.target_key is not None:
                self._writer_().deactivate(spec, request.target_key)
            return DeliveryAck(request.target_key)
        delivery = _delivery(request)
        # Claimed before anything is asked of Tryton (even the login), so that attempts
        # take their turns in the order they came.
        with self._running_lock:
            if delivery in self._running:
                raise TransientError(
                    f"{spec.model} for {request.master_id}: an earlier attempt is still being "
                    "written (the hub stopped waiting for it); tried again once it has ended"
                )
            self._running.add(delivery)
        try:
            writer = self._writer_()
            if request.target_key is not None:
                writer.settle(delivery)  # the hub has Tryton's id: nothing to recall
            record_id = writer.upsert(
                spec, request.payload, request.target_key, delivery, request.reactivate
            )
        finally:
            with self._running_lock:
                self._running.discard(delivery)
        return DeliveryAck(str(record_id))

    async def send(self, request: DeliveryRequest) -> DeliveryAck:
        """Create, update or deactivate one record."""
        ack = await send_in_thread(self._send, request)
        # Returned to the hub (not abandoned by its timeout): the create is settled.
        if self._writer is not None and request.operation is not Operation.DEACTIVATE:
            self._writer.settle(_delivery(request))
        return ack

    async def close(self) -> None:
        """Release connections."""
        self.transport.close()


def _delivery(request: DeliveryRequest) -> str:
    """What names a record's deliveries across attempts (and versions)."""
    return f"{request.subscription}:{request.master_id}"
