"""Every installed runtime dependency has a licence that allows an Apache-2.0 project."""

from __future__ import annotations

import re
from importlib import metadata

from packaging.requirements import Requirement

# Permissive licences, plus weak copyleft used as an unmodified library (LGPL, MPL).
ALLOWED = re.compile(
    r"MIT|BSD|Apache|ISC|PSF|Python Software Foundation|LGPL|Lesser General Public|MPL|"
    r"Mozilla Public|Unlicense|CC0|Public Domain|HPND|Zope",
    re.IGNORECASE,
)


def _licence(dist: metadata.Distribution) -> str:
    meta = dist.metadata
    expression = meta.get("License-Expression") or ""
    classifiers = " ".join(c for c in meta.get_all("Classifier") or [] if c.startswith("License"))
    text = meta.get("License") or ""
    return " ".join((expression, classifiers, text[:200]))


def _runtime_closure() -> dict[str, metadata.Distribution]:
    seen: dict[str, metadata.Distribution] = {}
    todo = ["mastersync"]
    while todo:
        name = todo.pop()
        key = name.lower().replace("_", "-")
        if key in seen:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue  # an optional extra that is not installed
        seen[key] = dist
        for spec in dist.requires or []:
            req = Requirement(spec)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
    return seen


def test_runtime_dependencies_have_compatible_licences() -> None:
    deps = _runtime_closure()
    assert "sqlalchemy" in deps
    assert "pydantic" in deps
    bad = {
        name: _licence(d)
        for name, d in deps.items()
        if name != "mastersync" and not ALLOWED.search(_licence(d))
    }
    assert bad == {}
