"""Compile a landscape into per-domain policies and per-system mappers, checking every name."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from difflib import get_close_matches
from typing import Any

from mastersync.domain.canonical import DOMAINS, DomainSpec
from mastersync.domain.landscape.model import DomainConfig, Landscape, SystemConfig
from mastersync.domain.mapping.mapper import Mapper
from mastersync.domain.mapping.spec import MappingSpec, ValueOp
from mastersync.domain.mapping.values import CASES
from mastersync.domain.matching.compiled import compile_config
from mastersync.domain.matching.config import MatchConfig
from mastersync.domain.matching.defaults import DEFAULTS, default_config
from mastersync.domain.problems import ConfigError, ConfigErrors
from mastersync.domain.quality import CompiledRule, QualityRule, compile_rule
from mastersync.domain.subscriptions import Subscription, compile_subscription
from mastersync.domain.survivorship import FieldPolicy, Rule
from mastersync.domain.words import a_or_an

# Connector settings whose names look like these must be secret references.
_SECRET_WORDS = ("password", "secret", "token", "api_key", "apikey", "private_key", "credential")
# ...unless they name where a secret goes rather than the secret (token_url, token_header).
_NOT_SECRET_ENDINGS = ("_url", "_header", "_param", "_prefix", "_field", "_path", "_kind")


def _secret_key(key: str) -> bool:
    lower = key.lower()
    return any(w in lower for w in _SECRET_WORDS) and not lower.endswith(_NOT_SECRET_ENDINGS)


@dataclass(frozen=True)
class NaturalKey:
    """Fields that together identify a record across systems; '?' marks optional parts."""

    name: str
    fields: tuple[str, ...]
    optional: frozenset[str]

    def value(self, values: Mapping[str, Any]) -> str | None:
        """The normalised key value, or None when a required part is missing."""
        if len(self.fields) == 1:  # the common case (gtin, tax_id): no joining
            v = values.get(self.fields[0])
            return None if v is None or v == "" else str(v).strip().upper()
        parts = []
        for f in self.fields:
            v = values.get(f)
            if v is None or v == "":
                if f not in self.optional:
                    return None
                v = ""
            parts.append(str(v).strip().upper())
        return "|".join(parts)


@dataclass(frozen=True)
class DomainPolicy:
    """Everything the core needs to merge records of one domain."""

    spec: DomainSpec
    fields: dict[str, FieldPolicy]
    natural_keys: tuple[NaturalKey, ...]
    record_rules: tuple[CompiledRule, ...]
    golden_rules: tuple[CompiledRule, ...]
    systems: tuple[str, ...] = field(default_factory=tuple)
    # Duplicate detection of new records; None where the domain does no matching.
    matching: MatchConfig | None = None

    def __post_init__(self) -> None:
        # Per system, the fields owned by others: checked on every record, so computed once.
        readonly = {
            s: frozenset(f for f, p in self.fields.items() if not p.may_write(s))
            for s in self.systems
        }
        object.__setattr__(self, "readonly", readonly)
        keys = frozenset(f for nk in self.natural_keys for f in nk.fields)
        object.__setattr__(self, "key_fields", keys)
        composite = any(len(nk.fields) > 1 for nk in self.natural_keys)
        object.__setattr__(self, "composite_keys", composite)

    readonly: dict[str, frozenset[str]] = field(init=False, default_factory=dict)
    # The fields of the natural keys.
    key_fields: frozenset[str] = field(init=False, default_factory=frozenset)
    # Whether a natural key has several parts (their values can mix across sources).
    composite_keys: bool = field(init=False, default=False)


@dataclass(frozen=True)
class CompiledLandscape:
    """A checked landscape ready to run."""

    config: Landscape
    policies: dict[str, DomainPolicy]
    mappers: dict[tuple[str, str], Mapper]
    # subscription id ("crm.customers") -> compiled subscription
    subscriptions: dict[str, Subscription] = field(default_factory=dict)
    # The folder relative paths (mapping files, a SQLite store) are resolved against.
    base_dir: str = "."

    def mapper(self, system: str, domain: str) -> Mapper:
        """The mapper for a system's domain, or a config error listing what exists."""
        try:
            return self.mappers[(system, domain)]
        except KeyError:
            if system not in self.config.systems:
                raise ConfigError(
                    f"unknown system {system!r}{_suggest(system, self.config.systems)}"
                ) from None
            have = sorted(d for s, d in self.mappers if s == system)
            raise ConfigError(
                f"system {system!r} has no inbound mapping for {domain!r} "
                f"(it has: {', '.join(have) or 'none'})"
            ) from None


def _suggest(name: str, options: Any) -> str:
    close = get_close_matches(name, list(options), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def _check_system_names(
    names: list[str], systems: Mapping[str, SystemConfig], loc: tuple[str | int, ...]
) -> None:
    for i, name in enumerate(names):
        if name not in systems:
            raise ConfigError(f"unknown system {name!r}{_suggest(name, systems)}", (*loc, i))


def _expand(
    name: str, cfg: DomainConfig, spec: DomainSpec, loc: tuple[str | int, ...]
) -> list[str]:
    if name in cfg.field_groups:
        return cfg.field_groups[name]
    if name in spec.fields:
        return [name]
    raise ConfigError(
        f"{name!r} is neither {a_or_an(spec.name)} field nor a field group"
        f"{_suggest(name, [*spec.fields, *cfg.field_groups])}",
        loc,
    )


def _domain_policy(domain: str, cfg: DomainConfig, landscape: Landscape) -> DomainPolicy:
    spec = DOMAINS[domain]
    base: tuple[str | int, ...] = ("domains", domain)
    systems = landscape.systems
    for group, members in cfg.field_groups.items():
        for i, member in enumerate(members):
            if member not in spec.fields:
                raise ConfigError(
                    f"{member!r} is not {a_or_an(domain)} field{_suggest(member, spec.fields)}",
                    (*base, "field_groups", group, i),
                )
    owners: dict[str, tuple[str, ...]] = {}
    for name, owner_list in cfg.ownership.items():
        loc = (*base, "ownership", name)
        _check_system_names(owner_list, systems, loc)
        if not owner_list:
            raise ConfigError("an ownership entry needs at least one system", loc)
        for f in _expand(name, cfg, spec, loc):
            if f in owners:
                raise ConfigError(f"field {f!r} is given owners twice", loc)
            owners[f] = tuple(owner_list)
    default_order = tuple(systems)
    rules: dict[str, tuple[Rule, tuple[str, ...]]] = {}
    default = cfg.survivorship.get("default")
    if default is not None and default.systems:
        _check_system_names(default.systems, systems, (*base, "survivorship", "default", "systems"))
    fallback = (
        default.rule if default else Rule.SOURCE_PRIORITY,
        tuple(default.systems) if default and default.systems else default_order,
    )
    for name, rule_cfg in cfg.survivorship.items():
        if name == "default":
            continue
        loc = (*base, "survivorship", name)
        if rule_cfg.systems:
            _check_system_names(rule_cfg.systems, systems, (*loc, "systems"))
        for f in _expand(name, cfg, spec, loc):
            if f in owners:
                raise ConfigError(
                    f"field {f!r} has owners; survivorship applies only to fields no system owns",
                    loc,
                )
            rules[f] = (rule_cfg.rule, tuple(rule_cfg.systems) if rule_cfg.systems else fallback[1])
    fields = {f: FieldPolicy(owners.get(f, ()), *rules.get(f, fallback)) for f in spec.fields}
    return DomainPolicy(
        spec,
        fields,
        _natural_keys(domain, cfg, spec),
        *_rules(cfg, spec, base),
        systems=default_order,
        matching=_matching(domain, cfg, base),
    )


def _matching(domain: str, cfg: DomainConfig, base: tuple[str | int, ...]) -> MatchConfig | None:
    if cfg.matching is False:
        return None
    if cfg.matching is None:
        return default_config(domain) if domain in DEFAULTS else None
    try:
        compile_config(cfg.matching)
    except ConfigError as exc:
        raise ConfigError(exc.message, (*base, "matching", *exc.loc)) from None
    return cfg.matching


def _natural_keys(domain: str, cfg: DomainConfig, spec: DomainSpec) -> tuple[NaturalKey, ...]:
    declared = (
        cfg.natural_keys if cfg.natural_keys is not None else [list(k) for k in spec.natural_keys]
    )
    keys = []
    for i, parts in enumerate(declared):
        names = tuple(p.rstrip("?") for p in parts)
        for j, name in enumerate(names):
            if name not in spec.fields:
                raise ConfigError(
                    f"{name!r} is not {a_or_an(domain)} field{_suggest(name, spec.fields)}",
                    ("domains", domain, "natural_keys", i, j),
                )
        optional = frozenset(p.rstrip("?") for p in parts if p.endswith("?"))
        keys.append(NaturalKey("+".join(names), names, optional))
    return tuple(keys)


def _rules(
    cfg: DomainConfig, spec: DomainSpec, base: tuple[str | int, ...]
) -> tuple[tuple[CompiledRule, ...], tuple[CompiledRule, ...]]:
    record: list[CompiledRule] = []
    golden: list[CompiledRule] = []
    for i, rule in enumerate(cfg.quality):
        _check_rule_field(rule, spec, (*base, "quality", i))
        try:
            compiled = compile_rule(rule)
        except ConfigError as exc:
            raise ConfigError(exc.message, (*base, "quality", i, *exc.loc)) from None
        (golden if compiled.on_golden else record).append(compiled)
    return tuple(record), tuple(golden)


def _check_rule_field(rule: QualityRule, spec: DomainSpec, loc: tuple[str | int, ...]) -> None:
    """The rule's field exists (every part of its path: a typo past the first dot made a
    rule that never ran) and can hold what the rule compares."""
    try:
        shape = spec.field_at(rule.field)
    except LookupError as exc:
        raise ConfigError(str(exc), (*loc, "field")) from None
    if rule.rule == "range" and shape.numeric is False:
        raise ConfigError(
            f"rule 'range' compares numbers and {rule.field!r} holds none "
            "(for the length of text: rule 'length')",
            (*loc, "rule"),
        )
    if rule.rule == "enum" and shape.choices is not None:
        outside = [v for v in rule.values or [] if str(v) not in shape.choices]
        if outside:
            raise ConfigError(
                f"{', '.join(map(repr, outside))} can never be a {rule.field} "
                f"(it is one of: {', '.join(shape.choices)})",
                (*loc, "values"),
            )
    if rule.rule == "tax_id":
        try:
            spec.field_at(rule.country_field)
        except LookupError as exc:
            raise ConfigError(str(exc), (*loc, "country_field")) from None


def _check_mapping(
    domain: str,
    spec: MappingSpec,
    loc: tuple[str | int, ...],
    systems: Mapping[str, SystemConfig],
    keys_of: Mapping[str, tuple[NaturalKey, ...]],
) -> None:
    dspec = DOMAINS[domain]
    for target, value in spec.fields.items():
        try:
            shape = dspec.field_at(target)
        except LookupError as exc:
            raise ConfigError(str(exc), (*loc, "fields", target)) from None
        if isinstance(value, ValueOp) and shape.choices:
            _check_choices(target, value, shape.choices, (*loc, "fields", target))
        if isinstance(value, ValueOp) and value.ref is not None:
            expected = dspec.references.get(target)
            if expected is None:
                raise ConfigError(
                    f"{target!r} holds no reference; 'ref' applies to "
                    f"{', '.join(dspec.references) or 'no field'} of {domain}",
                    (*loc, "fields", target, "ref"),
                )
            if value.ref.domain != expected:
                raise ConfigError(
                    f"{target!r} references {expected}, not {value.ref.domain}",
                    (*loc, "fields", target, "ref", "domain"),
                )
            if value.ref.system is not None and value.ref.system not in systems:
                raise ConfigError(
                    f"unknown system {value.ref.system!r}{_suggest(value.ref.system, systems)}",
                    (*loc, "fields", target, "ref", "system"),
                )
            # A domain whose own policy failed has its error already: nothing to check by.
            if value.ref.by is not None and expected in keys_of:
                names = [nk.name for nk in keys_of[expected]]
                if value.ref.by not in names:
                    raise ConfigError(
                        f"{expected} has no natural key {value.ref.by!r} "
                        f"(it has: {', '.join(names) or 'none'})",
                        (*loc, "fields", target, "ref", "by"),
                    )


def _check_choices(
    target: str, value: ValueOp, choices: tuple[str, ...], loc: tuple[str | int, ...]
) -> None:
    """Every text a value map, constant or default gives an enumerated field is one of its
    values: another (a typo, 'aproved') rejected every record that has the code, and the
    error named the data row, not the mapping."""
    case = CASES.get(value.case or "")
    given: list[tuple[tuple[str | int, ...], Any]] = [
        (("map", key), out) for key, out in (value.map or {}).items()
    ]
    if value.has_const:
        given.append((("const",), value.const))
    given.append((("default",), value.default))
    for where, out in given:
        if not isinstance(out, str):
            continue  # null (no value), or not text: the model says what it makes of it
        # The case conversion comes after the map (values.compile_value); not a default's.
        shown = case(out) if case is not None and where[0] != "default" else out
        if shown not in choices:
            raise ConfigError(
                f"{target!r} holds one of {', '.join(choices)}; {out!r} is none of them"
                f"{_suggest(shown, choices)}",
                (*loc, *where),
            )


def _secrets(
    name: str, settings: Mapping[str, Any], loc: tuple[str | int, ...]
) -> Iterator[ConfigError]:
    for key, value in settings.items():
        here = (*loc, key)
        if isinstance(value, Mapping):
            if set(value) in ({"env"}, {"file"}):
                continue
            yield from _secrets(name, value, here)
        elif isinstance(value, str) and _secret_key(key):
            yield ConfigError(
                "credentials must be references, not literals: write "
                "{env: VARIABLE} or {file: /path/to/secret}",
                here,
            )
        elif isinstance(value, str) and "://" in value and "@" in value.split("://", 1)[1]:
            userinfo = value.split("://", 1)[1].split("@", 1)[0]
            if ":" in userinfo:
                yield ConfigError(
                    "URL carries a password; put it in a secret reference "
                    "({env: VARIABLE} or {file: path})",
                    here,
                )


def compile_landscape(landscape: Landscape) -> CompiledLandscape:
    """Check every cross-reference of a landscape and build its policies and mappers.

    Each part (a domain's policy, a mapping, a subscription) is checked on its own and
    every error is raised at once (ConfigErrors): fixing a landscape one `check` per typo
    took as many runs as there were typos.
    """
    errors: list[ConfigError] = []
    for domain in landscape.domains:
        if domain not in DOMAINS:
            errors.append(
                ConfigError(
                    f"unknown domain {domain!r}{_suggest(domain, DOMAINS)}", ("domains", domain)
                )
            )
    policies: dict[str, DomainPolicy] = {}
    for d in DOMAINS:
        try:
            policies[d] = _domain_policy(d, landscape.domains.get(d, DomainConfig()), landscape)
        except ConfigError as exc:
            errors.append(exc)
    natural = {d: p.natural_keys for d, p in policies.items()}
    mappers: dict[tuple[str, str], Mapper] = {}
    for system, cfg in landscape.systems.items():
        errors.extend(_secrets(system, cfg.connector, ("systems", system, "connector")))
        for domain, spec in cfg.inbound.items():
            loc = ("systems", system, "inbound", domain)
            if domain not in DOMAINS:
                errors.append(
                    ConfigError(f"unknown domain {domain!r}{_suggest(domain, DOMAINS)}", loc)
                )
                continue
            try:
                _check_mapping(domain, spec, loc, landscape.systems, natural)
                mappers[(system, domain)] = Mapper(system, domain, spec)
            except ConfigError as exc:
                inside = exc.loc[: len(loc)] == loc
                errors.append(exc if inside else ConfigError(exc.message, (*loc, *exc.loc)))
    subscriptions: dict[str, Subscription] = {}
    for system, cfg in landscape.systems.items():
        taken: dict[str, str] = {}
        for name, sub in cfg.outbound.items():
            loc = ("systems", system, "outbound", name)
            if "." in name:
                # Its id is "<system>.<name>", read back by the last dot (a system's name
                # may hold dots).
                errors.append(ConfigError(f"{name!r}: a subscription's name holds no dot", loc))
                continue
            if sub.domain not in DOMAINS:
                errors.append(
                    ConfigError(
                        f"unknown domain {sub.domain!r}{_suggest(sub.domain, DOMAINS)}",
                        (*loc, "domain"),
                    )
                )
                continue
            first = taken.setdefault(sub.domain, name)
            if first != name:
                # The consumer's records of a domain are one set: one key per record, one
                # applied version, one idempotency key per version. Two subscriptions sent
                # the same keys, so the consumer took one's delete as a duplicate of the
                # other's upsert, and each overwrote the other's shape and filter.
                errors.append(
                    ConfigError(
                        f"{system} already takes {sub.domain} records through subscription "
                        f"{first!r}: a system subscribes to a domain once (the hub keeps one "
                        "consumer key per record, one listing to reconcile and one idempotency "
                        "key per version for it); join the filters in one subscription, or "
                        "declare the second resource as a system of its own",
                        (*loc, "domain"),
                    )
                )
                continue
            try:
                compiled = compile_subscription(
                    system,
                    name,
                    sub,
                    cfg.delivery,
                    DOMAINS[sub.domain].fields,
                    DOMAINS[sub.domain].references,
                    source_too=sub.domain in cfg.inbound,
                )
            except ConfigError as exc:
                errors.append(ConfigError(exc.message, (*loc, *exc.loc)))
                continue
            other = subscriptions.get(compiled.id)
            if other is not None:
                # ``<system>.<name>`` is the key of everything the hub keeps for a
                # subscription (cursor, queue, applied versions, bus consumer): a dot in a
                # name made two subscriptions one, and the later silently replaced the first.
                errors.append(
                    ConfigError(
                        f"subscription {name!r} of {system} has the id {compiled.id!r}, as "
                        f"subscription {other.name!r} of {other.system} does: rename one "
                        "(the hub keys a subscription's cursor, queue and delivered versions "
                        "by its id)",
                        loc,
                    )
                )
                continue
            subscriptions[compiled.id] = compiled
    if errors:
        raise errors[0] if len(errors) == 1 else ConfigErrors(errors)
    return CompiledLandscape(landscape, policies, mappers, subscriptions)
