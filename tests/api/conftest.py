"""API tests: a small landscape on a real store, the app over it, and consumers to call it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from fastapi import FastAPI

from mastersync.api.app import create_app
from mastersync.api.settings import ApiSettings
from mastersync.bootstrap import Hub, build_hub
from mastersync.cli.common import console, errors
from mastersync.pipeline.governance.consumers import add_consumer
from mastersync.ports.connector import SourceRecord
from mastersync.sandbox.apis.serve import LoopbackServer

LANDSCAPE: dict[str, Any] = {
    "name": "api-test",
    "systems": {
        "erp": {
            "kind": "erp",
            "inbound": {
                "customer": {
                    "key": "no",
                    "version": {"from": "v", "kind": "counter"},
                    "fields": {
                        "customer_number": "no",
                        "name": "name",
                        "country": {"from": "country", "optional": True},
                        "tax_id": {"from": "vat", "optional": True},
                        "sales_rep": {"from": "rep", "optional": True},
                        "credit_terms": {"from": "terms", "optional": True},
                        "credit_limit": {
                            "fields": {"amount": "limit", "currency": "cur"},
                            "when": "limit",
                        },
                    },
                },
                "supplier": {
                    "key": "no",
                    "version": {"from": "v", "kind": "counter"},
                    "fields": {
                        "supplier_number": "no",
                        "name": "name",
                        "country": {"from": "country", "optional": True},
                        "tax_id": {"from": "vat", "optional": True},
                        "bank_account.iban": {"from": "iban", "optional": True},
                    },
                },
                "item": {
                    "key": "sku",
                    "version": {"from": "v", "kind": "counter"},
                    "fields": {
                        "sku": "sku",
                        "name": "name",
                        "brand": {"from": "brand", "optional": True},
                    },
                },
            },
        },
        "portal": {"kind": "other", "description": "the customer portal (API)"},
        "partner_a": {"kind": "ecommerce"},
        "partner_b": {"kind": "ecommerce"},
    },
    "domains": {"item": {"ownership": {"brand": ["erp"]}}},
}

ALL_READ = [f"{d}:read" for d in ("item", "customer", "supplier", "location", "price", "inventory")]


@pytest.fixture(autouse=True)
def wide_console() -> Iterator[None]:
    widths = console.width, errors.width
    console.width = errors.width = 250
    yield
    console.width, errors.width = widths


@pytest.fixture
def landscape_file(tmp_path: Path) -> Path:
    path = tmp_path / "landscape.yaml"
    path.write_text(yaml.safe_dump(LANDSCAPE, sort_keys=False))
    return path


@pytest.fixture
def hub(landscape_file: Path, sqlite_url: str) -> Iterator[Hub]:
    h = build_hub(landscape_file, sqlite_url)
    yield h
    h.close()


@pytest.fixture
def settings() -> ApiSettings:
    return ApiSettings()


@pytest.fixture
def app(hub: Hub, settings: ApiSettings) -> FastAPI:
    return create_app(hub, settings)


@pytest.fixture
def server(app: FastAPI) -> Iterator[LoopbackServer]:
    """The API on a loopback port: real HTTP, as consumers call it."""
    with LoopbackServer(app) as s:
        yield s


@pytest.fixture
def client(server: LoopbackServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as c:
        yield c


Consumers = Callable[..., dict[str, str]]


@pytest.fixture
def consumer(hub: Hub) -> Consumers:
    """Register a consumer; returns the headers that authenticate as it."""

    def make(name: str, scopes: list[str], **kwargs: Any) -> dict[str, str]:
        _, key = add_consumer(hub.governance, hub.landscape, name, scopes=scopes, **kwargs)
        return {"X-API-Key": key}

    return make


def erp_ingest(hub: Hub, domain: str, *records: dict[str, Any]) -> None:
    """Load records from the ERP as a file would."""
    hub.ingestor.ingest("erp", domain, [SourceRecord(r) for r in records], source="erp.csv")
