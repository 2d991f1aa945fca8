"""A golden record's natural keys: what identifies it to the next source record."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from mastersync.domain.golden import Contribution
from mastersync.domain.landscape.policy import DomainPolicy


def natural_keys_of(
    policy: DomainPolicy, attributes: Mapping[str, Any], members: Iterable[Contribution]
) -> dict[str, str]:
    """Key name -> value: the golden record's own value of each key, else the one its
    source records send (the first by system and key).

    A key only a non-owner sent (a CRM record with the ERP's customer number, before the
    ERP's record came) is not the golden record's value, but it identifies the record: the
    owner's record of that key joins it, as it would have had it come first.
    """
    found: dict[str, str] = {}
    ordered: list[Contribution] | None = None
    for nk in policy.natural_keys:
        value = nk.value(attributes)
        if value is None:
            if ordered is None:
                ordered = sorted(members, key=lambda c: c.ref)
            value = next((v for c in ordered if (v := nk.value(c.values)) is not None), None)
        if value is not None:
            found[nk.name] = value
    return found
