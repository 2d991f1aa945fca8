"""The Akeneo connector: products listed in full (reconciliation, and the fallback when no
events arrive), read one by one through the same listing when an event names them, and
written with PATCH upserts."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from mastersync.connectors.akeneo.client import PRODUCT, AkeneoClient
from mastersync.connectors.akeneo.listing import Cursor, due
from mastersync.connectors.akeneo.spec import AkeneoRead, AkeneoSettings
from mastersync.connectors.akeneo.values import (
    ValueProblem,
    flatten,
    for_create,
    for_update,
    product_body,
)
from mastersync.connectors.registry import ConnectorContext
from mastersync.connectors.sending import send_in_thread
from mastersync.domain.subscriptions import Operation
from mastersync.ports.connector import (
    CheckResult,
    ConnectorError,
    Page,
    ReadFailure,
    SourceRecord,
    TerminalError,
)
from mastersync.ports.outbound import (
    DeliveryAck,
    DeliveryRequest,
    TerminalFailure,
    TransientFailure,
)

if TYPE_CHECKING:
    from mastersync.connectors.akeneo.receiver import AkeneoReceiver

log = logging.getLogger("mastersync.akeneo")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class AkeneoConnector:
    """Reads products from, and writes them to, one Akeneo PIM."""

    def __init__(self, settings: AkeneoSettings, context: ConnectorContext) -> None:
        self.settings = settings
        self.system = context.system
        self.context = context
        self.client = AkeneoClient(settings)
        self.clock: Callable[[], dt.datetime] = _now
        # Domains whose listing this process began, and finished: a pass left over from an
        # earlier run starts again, and the first pass of a run happens whatever the cursor.
        self._began: set[str] = set()
        self._listed: set[str] = set()

    @property
    def lists_inactive(self) -> bool:
        """Whether a listing may hold products the hub disabled (its deactivation)."""
        # A deactivation sets `enabled: false` and keeps the product, and Akeneo lists
        # disabled products unless the search asks for enabled ones. Asked once per run, not
        # per domain: one listing that holds them is enough (false for it would report each
        # disabled product as active again, and every repair disable it again).
        reads = self.settings.read.values()
        return not reads or any(not spec.enabled_only() for spec in reads)

    def listed_active(
        self, domain: str, subscription: str, native: Mapping[str, Any]
    ) -> bool | None:
        """Whether a listed product is active, by the `enabled` the subscription's write
        clears to disable it; None when the listing does not show it."""
        if subscription not in self.settings.write or domain not in self.settings.read:
            return None
        flag = native.get("enabled")
        # A product listed without the property (akeneo-mock-server stores none for one
        # written without it): nothing says which it is.
        return flag if isinstance(flag, bool) else None

    def _read(self, domain: str) -> AkeneoRead:
        spec = self.settings.read.get(domain)
        if spec is None:
            raise TerminalError(f"{self.system}: no 'read' settings for {domain}")
        return spec

    def record(self, product: dict[str, Any]) -> SourceRecord:
        """A product as the record the inbound mapping reads."""
        flat = flatten(product, self.settings.locale, self.settings.scope)
        return SourceRecord(flat, f"akeneo product {flat.get('identifier')}")

    # --- reading --------------------------------------------------------------------------
    def subscribe(self) -> bool:
        """Register the events subscription (when configured); False if the Event Platform
        could not be reached or refused: listings go on, the next one tries again."""
        events = self.settings.events
        if events is None:
            return False
        try:
            self.client.subscribe(events)
        except ConnectorError as exc:
            log.warning("%s: events not registered (%s); listings go on", self.system, exc)
            return False
        return True

    def read(self, domain: str, cursor: str | None, limit: int) -> Page:
        """The next page of a full listing, when one is due (else nothing)."""
        spec = self._read(domain)
        cur = Cursor.parse(cursor)
        now = self.clock()
        if cur.in_pass and domain not in self._began:
            cur = Cursor(listed=cur.listed)  # left by an earlier run: list from the start
        if not cur.in_pass:
            if not due(
                cur,
                events=self.settings.events is not None,
                listed_here=domain in self._listed,
                reconcile_every=self.settings.reconcile_every,
                now=now,
            ):
                return Page([], cursor, False)
            # Subscribed before listing: a change after the listing read its product comes
            # as an event, so none falls between the two.
            self.subscribe()
            self._began.add(domain)
            cur.started = now.isoformat()
        rows, nxt = self.client.page(spec, min(limit, self.settings.page_size), cur.next)
        records: list[SourceRecord | ReadFailure] = [self.record(r) for r in rows]
        if nxt is not None:
            cur.next = nxt
            return Page(records, cur.dump(), True)
        self._listed.add(domain)
        return Page(records, Cursor(listed=cur.started or now.isoformat()).dump(), False)

    def read_state(self, domain: str) -> Iterator[tuple[str, dict[str, Any]]]:
        """Every product the domain lists, by identifier: a deleted one is simply absent."""
        spec = self._read(domain)
        nxt: str | None = None
        while True:
            rows, nxt = self.client.page(spec, self.settings.page_size, nxt)
            for row in rows:
                record = self.record(row)
                yield str(record.payload.get("identifier")), record.payload
            if nxt is None:
                return

    def fetch(
        self, domain: str, *, uuid: str | None, identifier: str | None
    ) -> SourceRecord | None:
        """The product an event names, as the domain's listing reads it (None: it is gone,
        or not in the domain)."""
        # Through the listing, not GET /products-uuid/{uuid}: the domain's search keeps out
        # products of other families, and its attributes give the record the listing gives.
        product = self.client.listed(self._read(domain), uuid=uuid, identifier=identifier)
        return None if product is None else self.record(product)

    def push_receiver(self) -> AkeneoReceiver:
        """The receiver of this PIM's events (for `mastersync run --listen`)."""
        from mastersync.connectors.akeneo.receiver import AkeneoReceiver

        # The hub never closes its receivers: read products without keeping connections.
        self.client.close()
        self.client = AkeneoClient(self.settings, keep_alive=False)
        return AkeneoReceiver(self)

    def check(self) -> CheckResult:
        """Fetch a token, read the first product of each domain, show the subscription."""
        s = self.settings
        details = [f"Akeneo at {s.url}, locale {s.locale}, scope {s.scope or '(none)'}"]
        ok = True
        for domain, spec in s.read.items():
            try:
                rows, nxt = self.client.page(spec, 1)
            except ConnectorError as exc:
                ok = False
                details.append(f"read {domain}: {exc.message}")
                continue
            more = ", more pages" if nxt else ""
            details.append(f"read {domain}: {len(rows)} product(s) on a first page of 1{more}")
        for name, w in s.write.items():
            family = f" (family {w.family})" if w.family else ""
            details.append(f"write {name}: PATCH {PRODUCT}{family}")
        if s.events is not None:
            try:
                state = self.client.subscription_state(s.events)
            except ConnectorError as exc:
                return CheckResult(False, [*details, f"events: {exc.message}"])
            if state is None:
                details.append("events: not subscribed yet (done before the next full listing)")
            else:
                url = (state.get("config") or {}).get("url")
                where = "" if url == s.events.url else f", posting to {url} (not {s.events.url})"
                details.append(
                    f"events: subscription {s.events.subscription} "
                    f"{state.get('status', 'active')}{where}"
                )
        return CheckResult(ok, details)

    # --- writing --------------------------------------------------------------------------
    def _send(self, request: DeliveryRequest) -> DeliveryAck:
        name = request.subscription.split(".", 1)[1]
        spec = self.settings.write.get(name)
        if spec is None:
            raise TerminalFailure(f"{self.system}: no 'write' settings for {request.subscription}")
        if request.operation is Operation.DEACTIVATE:
            key = request.target_key
            # A PATCH would create a product that is gone: disable only what is there.
            if key is not None and self.client.product(uuid=None, identifier=key) is not None:
                self.client.upsert(key, {"identifier": key, "enabled": False})
            return DeliveryAck(key)
        try:
            body = product_body(
                request.payload,
                self.client.attribute,
                self.settings.locale,
                self.settings.scope,
                spec.family,
            )
        except ValueProblem as exc:
            raise TerminalFailure(f"{request.subscription}: {exc}") from None
        identifier = str(body["identifier"])
        # Whether the PATCH creates the product: a first write does, unless the PIM has the
        # product already. Asked of the PIM once, and only when it matters.
        creates: bool | None = False if request.target_key is not None else None

        def creating() -> bool:
            nonlocal creates
            if creates is None:
                creates = self.client.product(uuid=None, identifier=identifier) is None
            return creates

        if body.get("enabled") is None:
            # A null from the mapping (the golden record lacks it) is no value. Enabled on
            # the hub's first write (a PATCH creates) and for a product the hub disabled and
            # now selects again; one a person disabled stays so. Akeneo leaves an enabled
            # product as it is.
            body.pop("enabled", None)
            if request.reactivate or creating():
                body["enabled"] = True
        # A field cleared at the hub comes as null: cleared in a product the PIM has, left
        # out of one the PATCH creates (never a null there).
        body = for_create(body) if _has_null(body) and creating() else for_update(body)
        held = request.target_key
        if held is not None and held != identifier and self._rename(held, identifier, body):
            return DeliveryAck(identifier)
        status = self.client.upsert(identifier, body)
        if status == 404:
            raise TerminalFailure(f"PATCH {PRODUCT} for {identifier!r} answered 404")
        return DeliveryAck(identifier)

    def _rename(self, held: str, identifier: str, body: dict[str, Any]) -> bool:
        """Write the product the PIM holds under ``held`` (the key it acknowledged) with its
        new identifier, by uuid: a PATCH by the new identifier would make a second product.
        False when there is none under ``held`` (deleted, or renamed by an attempt whose
        answer was lost): the PATCH by the new identifier then updates or makes it."""
        product = self.client.product(uuid=None, identifier=held)
        if product is None:
            return False
        uuid = product.get("uuid")
        if not uuid:
            raise TerminalFailure(
                f"Akeneo product {held!r}: its identifier changed to {identifier!r} in the "
                "hub, but the PIM gives the product no uuid (Akeneo before 7), so it cannot "
                "be renamed over the API; rename it in Akeneo and the delivery goes through"
            )
        try:
            self.client.upsert_by_uuid(str(uuid), body)
        except ConnectorError as exc:
            failed = TransientFailure if exc.transient else TerminalFailure
            raise failed(
                f"renaming Akeneo product {held!r} to {identifier!r} (uuid {uuid}): {exc.message}",
                status=exc.status,
                retry_after=exc.retry_after,
            ) from None
        return True

    async def send(self, request: DeliveryRequest) -> DeliveryAck:
        """Create or update one product, enabled (PATCH by identifier; a renamed one by
        uuid), or disable it."""
        return await send_in_thread(self._send, request)

    async def close(self) -> None:
        """Release connections."""
        self.client.close()


def _has_null(body: dict[str, Any]) -> bool:
    """Whether a PATCH body carries a null (a property, or a value's data)."""
    if any(v is None for v in body.values()):
        return True
    values = body.get("values")
    return isinstance(values, dict) and any(
        isinstance(e, dict) and e.get("data") is None
        for entries in values.values()
        for e in entries
    )
