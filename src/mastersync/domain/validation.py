"""Schema validation of mapped values against the canonical model, with named failures."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import orjson
from pydantic import ValidationError

from mastersync.domain.canonical import DomainSpec
from mastersync.domain.problems import Problem, ProblemKind, shown
from mastersync.domain.words import a_or_an

# pydantic error types -> our rule names where ours say more to a data steward.
_RULES = {"extra_forbidden": "unknown_field", "missing": "required"}


def _field(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(p) for p in loc)


def validate(spec: DomainSpec, values: dict[str, Any]) -> tuple[dict[str, Any], list[Problem]]:
    """Canonical values in JSON shape (nulls left out), or the schema problems found."""
    try:
        model = spec.model.model_validate(values)
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_url=False):
            field = _field(err["loc"])
            rule = _RULES.get(err["type"], err["type"])
            if rule == "value_error" and field.rsplit(".", 1)[-1] == "email":
                rule = "email"  # email-validator's failures arrive as generic value errors
            given = err.get("input")
            message = err["msg"]
            ctx = err.get("ctx") or {}
            length = err["type"] in ("too_long", "too_short") and isinstance(given, str)
            if length:
                # Text is normalised before its length is checked, so pydantic counts it
                # as a sequence and says "items"; the text itself would only repeat it.
                bound = "most" if err["type"] == "too_long" else "least"
                limit = ctx.get("max_length", ctx.get("min_length"))
                message = f"text should have at {bound} {limit} characters, not {len(given)}"
            if rule == "unknown_field":
                message = f"{field!r} is not {a_or_an(spec.name)} field"
            elif (
                given is not None
                and not length
                and not isinstance(given, dict | list)
                and str(given) not in message
            ):
                message = f"{message} (got {shown(given)})"
            problems.append(Problem(ProblemKind.VALIDATION_ERROR, field, rule, message))
        return {}, problems
    return model.model_dump(mode="json", exclude_none=True), []


# The integers JSON columns, events and digests hold (orjson's range: signed and unsigned 64 bits).
_INT_MIN, _INT_MAX = -(2**63), 2**64 - 1


def storable(value: Any) -> Any:
    """``value`` with what no JSON column can hold made storable: integers beyond 64 bits as
    their exact digits in text, and lone surrogates (a JSON source may escape one) and NUL
    characters (which PostgreSQL's text and JSON refuse) as U+FFFD. Sources that parse JSON
    with the standard library hand over all three."""
    if isinstance(value, dict):
        return {storable(k): storable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [storable(v) for v in value]
    if isinstance(value, str):
        text = value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
        return text.replace("\x00", "\ufffd")
    if type(value) is int and not _INT_MIN <= value <= _INT_MAX:
        return str(value)
    return value


def digest(values: Mapping[str, Any]) -> str:
    """A short hash of a record (a native payload or canonical values), whatever its key order."""
    return digest_of(serialised(values))


def serialised(values: Any) -> bytes:
    """The JSON ``digest`` hashes (sorted keys); TypeError for what orjson cannot write."""
    return orjson.dumps(values, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS, default=str)


def digest_of(blob: bytes) -> str:
    """``digest`` of an already serialised record."""
    return hashlib.blake2b(blob, digest_size=12).hexdigest()


def is_storable(blob: bytes) -> bool:
    """Whether a serialised record holds no NUL character (a false alarm on the text
    backslash-u0000 costs only a needless ``storable``)."""
    return b"\\u0000" not in blob
