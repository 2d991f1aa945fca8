"""Reading the landscape from YAML files, with errors that name file, line and key."""

from __future__ import annotations

from dataclasses import replace
from difflib import get_close_matches
from pathlib import Path
from types import UnionType
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from mastersync.connectors.registry import check_settings, check_writes
from mastersync.domain.landscape.delivery import OutboundMappingSpec
from mastersync.domain.landscape.model import Landscape
from mastersync.domain.landscape.policy import CompiledLandscape, compile_landscape
from mastersync.domain.mapping.spec import MappingSpec
from mastersync.domain.problems import ConfigError, ConfigErrors
from mastersync.landscape.yamlfile import Loc, YamlDocument, YamlError, read_yaml

__all__ = ["LandscapeError", "load_landscape"]


class LandscapeError(Exception):
    """The landscape cannot be used; every problem names its file, line and key."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


def _dotted(loc: Loc) -> str:
    return ".".join(str(p) for p in loc) or "(top)"


def _allowed_keys(model: type[BaseModel], loc: Loc) -> list[str]:
    """The keys a model allows at ``loc`` (for 'did you mean' on a typo)."""
    annotation: Any = model
    for part in loc:
        annotation = _step(annotation, part)
        if annotation is None:
            return []
    target = _model_of(annotation)
    if target is None:
        return []
    return [f.alias or name for name, f in target.model_fields.items()]


def _step(annotation: Any, part: str | int) -> Any:
    """The annotation one key or index further down."""
    for option in _options(annotation):
        origin = get_origin(option)
        if origin is dict:
            return get_args(option)[1]
        if origin is list and isinstance(part, int):
            return get_args(option)[0]
        if isinstance(option, type) and issubclass(option, BaseModel):
            field = option.model_fields.get(str(part))
            if field is not None:
                return field.annotation
    return None


def _options(annotation: Any) -> list[Any]:
    if get_origin(annotation) in (Union, UnionType):
        return [a for a in get_args(annotation) if a is not type(None)]
    return [annotation]


def _model_of(annotation: Any) -> type[BaseModel] | None:
    for option in _options(annotation):
        if isinstance(option, type) and issubclass(option, BaseModel):
            return option
    return None


# Tags pydantic puts in the location of an error inside one branch of a union.
_UNION_TAGS = frozenset(
    {"str", "ValueOp", "int", "bool", "float", "dict[str,ValueSpec]", "DateSpec", "NumberSpec"}
)
# "This branch wanted another type": noise next to the error of the branch that fits.
_BRANCH_MISMATCH = frozenset(
    {"string_type", "list_type", "dict_type", "model_type", "bool_type", "bool_parsing"}
)


def _pydantic_problems(
    exc: ValidationError, doc: YamlDocument, model: type[BaseModel], prefix: Loc = ()
) -> list[str]:
    out = []
    seen = set()
    errors = [
        (
            tuple(
                p
                for p in err["loc"]
                if not (
                    isinstance(p, str)
                    and (p.startswith(("function-", "list[")) or p in _UNION_TAGS)
                )
            ),
            err,
        )
        for err in exc.errors(include_url=False)
    ]
    for loc, err in errors:
        if err["type"] in _BRANCH_MISMATCH and any(
            len(other) > len(loc) and other[: len(loc)] == loc for other, _ in errors
        ):
            # A value of a union type (a string, a value spec or a list) failed every
            # branch: the branch it was meant for says more than "not a string".
            continue
        full = (*prefix, *loc)
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            options = _allowed_keys(model, loc[:-1])
            close = get_close_matches(str(loc[-1]), options, n=1)
            hint = (
                f"; did you mean {close[0]!r}?"
                if close
                else (f"; allowed: {', '.join(options)}" if options else "")
            )
            message = f"unknown key {loc[-1]!r}{hint}"
        elif err["type"] == "missing":
            message = f"required key {loc[-1]!r} is missing"
        elif err["type"] == "string_type" and loc[-1] == "[key]" and type(err["input"]) is int:
            # YAML reads 010 as the octal number 8, and 1_000 as 1000: what was written is
            # gone by then, so say how to keep it.
            message = (
                f"keys here are text, and YAML read this one as the number {err['input']}: "
                "quote it ('010': ...)"
            )
        elif "input" in err and err["input"] is None and "'null'" in message:
            message = f"{message} (got YAML's null: write 'null' in quotes)"
        elif "input" in err and not isinstance(err["input"], dict | list):
            message = f"{message} (got {err['input']!r})"
        line = doc.line_of(full)
        text = f"{doc.path}:{line}: {_dotted(full)}: {message}"
        if text not in seen:
            seen.add(text)
            out.append(text)
    return out


def _load_file(
    doc: YamlDocument, loc: Loc, ref: str, base: Path, model: type[BaseModel], problems: list[str]
) -> tuple[BaseModel, YamlDocument] | None:
    try:
        mdoc = read_yaml((base / ref).resolve())
    except YamlError as exc:
        problems.append(f"{doc.path}:{doc.line_of(loc)}: {_dotted(loc)}: {exc}")
        return None
    except (OSError, ValueError) as exc:  # no path at all ("embedded null byte")
        where = f"{doc.path}:{doc.line_of(loc)}: {_dotted(loc)}"
        problems.append(f"{where}: cannot read mapping file {ref!r}: {exc}")
        return None
    try:
        return model.model_validate(mdoc.data), mdoc
    except ValidationError as exc:
        problems.extend(_pydantic_problems(exc, mdoc, model))
        return None


def _load_mappings(doc: YamlDocument, base: Path, problems: list[str]) -> dict[Loc, YamlDocument]:
    """Replace every mapping given as a file path with the file's checked content."""
    sources: dict[Loc, YamlDocument] = {}
    systems = doc.data.get("systems") if isinstance(doc.data, dict) else None
    if not isinstance(systems, dict):
        return sources
    for system, cfg in systems.items():
        if not isinstance(cfg, dict):
            continue
        inbound = cfg.get("inbound")
        if not isinstance(inbound, dict):
            inbound = {}
        for domain, ref in inbound.items():
            loc: Loc = ("systems", system, "inbound", domain)
            if isinstance(ref, str) and (
                loaded := _load_file(doc, loc, ref, base, MappingSpec, problems)
            ):
                inbound[domain], sources[loc] = loaded
        outbound = cfg.get("outbound")
        for name, sub in outbound.items() if isinstance(outbound, dict) else ():
            ref = sub.get("mapping") if isinstance(sub, dict) else None
            loc = ("systems", system, "outbound", name, "mapping")
            if isinstance(ref, str) and (
                loaded := _load_file(doc, loc, ref, base, OutboundMappingSpec, problems)
            ):
                sub["mapping"], sources[loc] = loaded
    return sources


def _config_problem(exc: ConfigError, doc: YamlDocument, sources: dict[Loc, YamlDocument]) -> str:
    for prefix, mdoc in sources.items():
        # A problem with the inbound entry that names the file (a misspelt domain) is the
        # landscape's line, not the file's top.
        itself = exc.loc == prefix and prefix[2] == "inbound"
        if exc.loc[: len(prefix)] == prefix and not itself:
            rest = exc.loc[len(prefix) :]
            return f"{mdoc.path}:{mdoc.line_of(rest)}: {_dotted(rest)}: {exc.message}"
    return f"{doc.path}:{doc.line_of(exc.loc)}: {_dotted(exc.loc)}: {exc.message}"


def load_landscape(path: str | Path) -> CompiledLandscape:
    """Read, check and compile a landscape file and the mapping files it names."""
    path = Path(path)
    try:
        doc = read_yaml(path)
    except YamlError as exc:
        raise LandscapeError([str(exc)]) from None
    if not isinstance(doc.data, dict):
        raise LandscapeError([f"{path}:1: a landscape is a mapping of keys (name, systems, ...)"])
    problems: list[str] = []
    sources = _load_mappings(doc, path.parent, problems)
    if problems:
        raise LandscapeError(problems)
    try:
        landscape = Landscape.model_validate(doc.data)
    except ValidationError as exc:
        raise LandscapeError(_pydantic_problems(exc, doc, Landscape)) from None
    try:
        compiled = compile_landscape(landscape)
    except ConfigError as exc:
        found = exc.errors if isinstance(exc, ConfigErrors) else [exc]
        raise LandscapeError([_config_problem(e, doc, sources) for e in found]) from None
    problems = []
    for system, cfg in landscape.systems.items():
        wrong = check_settings(cfg.connector)
        problems += [
            _config_problem(ConfigError(message, ("systems", system, "connector", *loc)), doc, {})
            for loc, message in wrong
        ]
        if wrong:
            continue  # what it writes by is said once its settings are right
        problems += [
            _config_problem(ConfigError(message, ("systems", system, "outbound", name)), doc, {})
            for name, message in check_writes(cfg.connector, cfg.outbound)
        ]
    if problems:
        raise LandscapeError(problems)
    return replace(compiled, base_dir=str(path.parent.resolve()))
