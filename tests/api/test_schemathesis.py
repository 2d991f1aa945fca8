"""Schemathesis against the live OpenAPI document: positive and negative data, every check
(ignored auth included), a bounded number of examples per operation."""

from __future__ import annotations

from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.config import SchemathesisConfig

from mastersync.bootstrap import Hub
from mastersync.domain.governance.access import known_scopes
from mastersync.sandbox.apis.serve import LoopbackServer
from tests.api.conftest import Consumers, erp_ingest

MAX_EXAMPLES = 10
# Writes check more than JSON Schema can say (GTIN and IBAN check digits, ISO codes, tax
# ids): schema-valid data that breaks such a rule is answered 422, naming field and rule.
CONFIG = SchemathesisConfig.from_dict(
    {
        "operations": [
            {
                "include-method": "POST",
                "include-path-regex": "^/v1/(items|customers|suppliers|locations|prices|"
                "inventory|processes/[a-z-]+)$",
                "checks": {
                    "positive_data_acceptance": {
                        "expected-statuses": ["2xx", "401", "403", "404", "409", "422", "429"]
                    }
                },
            }
        ]
    }
)


def _run(operation: Any, mode: GenerationMode, headers: dict[str, str]) -> None:
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def check(case: Any) -> None:
        case.call_and_validate(headers=headers)

    check()


def test_api_conforms_to_its_openapi_document(
    server: LoopbackServer, consumer: Consumers, hub: Hub
) -> None:
    headers = consumer("fuzzer", list(known_scopes()), system="portal", person="fay")
    erp_ingest(hub, "customer", {"no": "C1", "v": 1, "name": "Acme", "country": "DE"})
    erp_ingest(hub, "item", {"sku": "A1", "name": "Gloves", "v": 1})
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json", config=CONFIG)
    failures: dict[str, str] = {}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 30
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                _run(operation, mode, headers)
            except Unsatisfiable:
                # No input breaks this operation's schema (say, one free-text path part):
                # there is no negative case to send.
                assert mode is GenerationMode.NEGATIVE, operation.label
            # Every operation is tried; all failures are reported (hypothesis raises groups).
            except (Exception, BaseExceptionGroup) as exc:
                failures[f"{operation.label} [{mode.value}]"] = str(exc)[:2000]
    assert failures == {}, "\n\n".join(f"{k}: {v}" for k, v in failures.items())
