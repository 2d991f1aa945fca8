"""The BottleCRM connector: reads by full-list diffing and full listings per domain, account
upserts and archiving out, over BottleCRM's REST API with a personal access token."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from mastersync.connectors.bottlecrm.client import Api
from mastersync.connectors.bottlecrm.reader import ListingReader
from mastersync.connectors.bottlecrm.spec import BottleCrmRead, BottleCrmSettings
from mastersync.connectors.bottlecrm.writer import AccountWriter
from mastersync.connectors.registry import ConnectorContext
from mastersync.connectors.sending import send_in_thread
from mastersync.domain.subscriptions import Operation
from mastersync.ports.connector import CheckResult, ConnectorError, Page, TerminalError
from mastersync.ports.outbound import (
    DeliveryAck,
    DeliveryRequest,
    TerminalFailure,
)


class BottleCrmConnector:
    """Reads from and writes to one BottleCRM organisation (the token's)."""

    def __init__(self, settings: BottleCrmSettings, context: ConnectorContext) -> None:
        self.settings = settings
        self.system = context.system
        self.api = Api(settings.url, settings.token, settings.timeout, settings.retries)
        self.reader = ListingReader(self.api, settings.page_size)
        self.writer = AccountWriter(self.api, settings.page_size)

    @property
    def lists_inactive(self) -> bool:
        """Whether a listing may hold accounts the hub archived (its deactivation)."""
        # Only accounts are written, so only an account listing can hold one; `inactive`
        # lists the archived half of BottleCRM's account list too. Asked once per run, not
        # per domain: one listing that holds them is enough (false for it would report each
        # archived account as active again, and every repair archive it again). No account
        # listing: nothing is known, the port's default.
        accounts = [s for s in self.settings.read.values() if s.resource == "accounts"]
        return not accounts or any(s.inactive for s in accounts)

    def listed_active(
        self, domain: str, subscription: str, native: Mapping[str, Any]
    ) -> bool | None:
        """Whether a listed account is active, by the `is_active` the subscription's write
        clears to archive it; None when the listing does not show it."""
        read = self.settings.read.get(domain)
        # Accounts are what the hub writes and archives: a contact's flag is a person's.
        if subscription not in self.settings.write or read is None or read.resource != "accounts":
            return None
        flag = native.get("is_active")
        # Left out of the fields read (or by the API, listed as null): it cannot tell.
        return flag if isinstance(flag, bool) else None

    def _spec(self, domain: str) -> BottleCrmRead:
        spec = self.settings.read.get(domain)
        if spec is None:
            raise TerminalError(f"{self.system}: no 'read' settings for {domain}")
        return spec

    # --- reading --------------------------------------------------------------------------
    def read(self, domain: str, cursor: str | None, limit: int) -> Page:
        """The next page of records new or changed since the saved cursor."""
        return self.reader.page(domain, self._spec(domain), cursor, limit)

    def read_state(self, domain: str) -> Iterator[tuple[str, dict[str, Any]]]:
        """Every record of the domain, by BottleCRM id: a deleted record is simply absent."""
        yield from self.reader.state(self._spec(domain))

    def check(self) -> CheckResult:
        """Read each domain's first page, and say what would be written."""
        details = [f"BottleCRM at {self.settings.url}"]
        ok = True
        s = self.settings
        # A client of its own, closed here: `mastersync check` makes a connector for this
        # one call and does not close it.
        api = Api(s.url, s.token, s.timeout, s.retries)
        try:
            for domain, spec in s.read.items():
                try:
                    document = api.get(f"/{spec.resource}/", {**spec.filter, "limit": 1})
                except ConnectorError as exc:
                    ok = False
                    details.append(f"read {domain}: {exc.message}")
                    continue
                count = _total(spec.resource, document)
                embedded = " with their contacts" if spec.contacts is not None else ""
                details.append(f"read {domain}: {spec.resource}{embedded}, {count} record(s)")
        finally:
            api.close()
        for name, w in self.settings.write.items():
            match = f" (matched by {', '.join(w.match)})" if w.match else ""
            details.append(f"write {name}: {w.resource}{match}")
        return CheckResult(ok, details)

    # --- writing --------------------------------------------------------------------------
    def _send(self, request: DeliveryRequest) -> DeliveryAck:
        name = request.subscription.split(".", 1)[1]
        spec = self.settings.write.get(name)
        if spec is None:
            raise TerminalFailure(f"{self.system}: no 'write' settings for {request.subscription}")
        if request.operation is Operation.DEACTIVATE:
            if request.target_key is not None:
                self.writer.deactivate(request.target_key)
            return DeliveryAck(request.target_key)
        return DeliveryAck(
            self.writer.upsert(spec, request.payload, request.target_key, request.reactivate)
        )

    async def send(self, request: DeliveryRequest) -> DeliveryAck:
        """Create, update or archive one account."""
        return await send_in_thread(self._send, request)

    async def close(self) -> None:
        """Release connections."""
        self.api.close()


def _total(resource: str, document: Any) -> int:
    """How many records a list answer says there are (an account list counts two halves)."""
    if not isinstance(document, dict):
        return 0
    if resource == "accounts":
        active = (document.get("active_accounts") or {}).get("open_accounts_count") or 0
        closed = (document.get("closed_accounts") or {}).get("close_accounts_count") or 0
        return int(active) + int(closed)
    return int(document.get("count") or 0)
