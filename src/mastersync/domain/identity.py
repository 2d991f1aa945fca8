"""A golden record's natural keys: what identifies it to the next source record."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from typing import Any

from mastersync.domain.golden import Contribution
from mastersync.domain.landscape.policy import DomainPolicy, NaturalKey

# Key name -> the values that identify a record by it.
Keys = dict[str, tuple[str, ...]]


def natural_keys_of(
    policy: DomainPolicy, attributes: Mapping[str, Any], members: Iterable[Contribution]
) -> Keys:
    """Key name -> values: the golden record's own value of each key (first), else every
    value its source records send (sorted).

    A key only a non-owner sent (a CRM record with the ERP's customer number, before the
    ERP's record came) is not the golden record's value, but it identifies the record: the
    owner's record of that key joins it, as it would have had it come first. Each of them
    does: two CRM records of one customer with two numbers (joined by the VAT number) are
    found by either, where only the first by system and key was, and the other number's
    ERP record became a second customer.

    With a golden value, so does each value the other source records of a system sending
    it (and that may write the key) send: two ERP items of one GTIN, joined by it, are found
    by either SKU. The SKU survivorship passed over identified nothing, and the PIM's record
    of it became an item of its own, refused for the name the ERP owns (it had joined had it
    come before the second ERP item). A value of a system that may not write the key (the
    CRM's old copy of the customer number) identifies nothing once there is a golden value.
    """
    found: Keys = {}
    listed: list[Contribution] | None = None
    for nk in policy.natural_keys:
        value = nk.value(attributes)
        if listed is None:
            listed = list(members)
        if value is not None:
            found[nk.name] = _with_same_system(policy, nk, value, listed)
            continue
        sent = sorted({v for c in listed if (v := nk.value(c.values)) is not None})
        if sent:
            found[nk.name] = tuple(sent)
    return found


def _with_same_system(
    policy: DomainPolicy, nk: NaturalKey, value: str, members: list[Contribution]
) -> tuple[str, ...]:
    """The golden ``value`` of a key, then the other values source records of a system
    that sends it and may write the key send (sorted)."""
    if len(members) < 2:
        return (value,)  # (the common case: one source record)
    sent = [(c.system, v) for c in members if (v := nk.value(c.values)) is not None]
    systems = {
        s for s, v in sent if v == value and all(policy.fields[f].may_write(s) for f in nk.fields)
    }
    others = sorted({v for s, v in sent if s in systems and v != value})
    return (value, *others)


def key_pairs(keys: Keys) -> set[tuple[str, str]]:
    """(name, value) of every key in ``keys``."""
    return {(name, value) for name, values in keys.items() for value in values}


# Beyond this many combinations of one record's part values, a composite key's reachable
# values are not listed (a record with that many sources disagreeing is rare; its keys are
# then checked at the write, as before).
_MAX_COMBINATIONS = 256


def mixed_keys(policy: DomainPolicy, sources: Iterable[Mapping[str, Any]]) -> set[tuple[str, str]]:
    """Composite natural key values a golden record could come to hold by taking each part
    from another of ``sources`` (its golden values, its source records', an incoming
    record's): survivorship may pick the SKU of one and the brand of another, a value no
    source sends whole."""
    values = list(sources)
    found: set[tuple[str, str]] = set()
    for nk in policy.natural_keys:
        if len(nk.fields) < 2:
            continue
        choices = [
            sorted({str(v[f]) for v in values if v.get(f) not in (None, "")}) for f in nk.fields
        ]
        # A part no source gives stays empty (an optional part) or makes no key (required).
        choices = [c or [""] for c in choices]
        total = 1
        for c in choices:
            total *= len(c)
        if total > _MAX_COMBINATIONS or total <= 1:
            continue
        for combo in itertools.product(*choices):
            key = nk.value(dict(zip(nk.fields, combo, strict=True)))
            if key is not None:
                found.add((nk.name, key))
    return found
