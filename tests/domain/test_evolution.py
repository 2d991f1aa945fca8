"""Schema evolution: each rule, $ref and overlays resolved, verdicts, and properties of both."""

from __future__ import annotations

import copy
from typing import Any

import jsonschema_rs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mastersync.domain.canonical import DOMAINS, DomainSpec
from mastersync.domain.canonical.common import CanonicalModel
from mastersync.domain.canonical.evolution import (
    Bump,
    Change,
    Rule,
    SchemaError,
    compare,
    declared_bump,
    evolve,
    needed_bump,
    parse_version,
    verdict,
)
from mastersync.domain.canonical.types import Amount, Text

NULL = {"type": "null"}


def opt(schema: dict[str, Any]) -> dict[str, Any]:
    """An optional field as pydantic exports it."""
    return {"anyOf": [schema, NULL], "default": None}


def obj(properties: dict[str, Any], required: tuple[str, ...] = (), **extra: Any) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": list(required), **extra}


def versioned(schema: dict[str, Any], version: str) -> dict[str, Any]:
    return {**schema, "x-schema-version": version}


def rules(changes: list[Change]) -> list[tuple[str, Rule, bool, bool]]:
    return [(c.path, c.rule, c.breaks_backward, c.breaks_forward) for c in changes]


def closed(schema: Any) -> Any:
    """The schema with every object closed, as the exports were before 1.1's open model."""
    if isinstance(schema, list):
        return [closed(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: closed(v) for k, v in schema.items()}
    if out.get("type") == "object":
        out["additionalProperties"] = False
    return out


# --- properties ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(DOMAINS))
def test_a_domains_schema_compared_with_itself_has_no_change(name: str) -> None:
    schema = DOMAINS[name].json_schema()
    assert compare(schema, copy.deepcopy(schema)) == []
    assert evolve(schema, schema).verdict.needed is Bump.NONE


def test_an_added_optional_property_is_minor_and_forward_compatible_under_an_open_model() -> None:
    old = obj({"sku": opt({"type": "string"})})
    new = obj({"sku": opt({"type": "string"}), "colour": opt({"type": "string"})})
    assert rules(compare(old, new)) == [("colour", Rule.OPTIONAL_PROPERTY_ADDED, False, False)]
    assert needed_bump(compare(old, new)) is Bump.MINOR


def test_an_added_optional_property_breaks_a_consumer_holding_a_closed_schema() -> None:
    old = obj({"sku": opt({"type": "string"})}, additionalProperties=False)
    new = obj(
        {"sku": opt({"type": "string"}), "colour": opt({"type": "string"})},
        additionalProperties=False,
    )
    assert rules(compare(old, new)) == [("colour", Rule.OPTIONAL_PROPERTY_ADDED, False, True)]
    assert needed_bump(compare(old, new)) is Bump.MAJOR


def test_an_added_property_an_old_map_takes_is_forward_compatible_one_it_refuses_is_not() -> None:
    old = obj({}, additionalProperties={"type": "string"})
    taken = obj(
        {"note": {"type": "string", "maxLength": 5}}, additionalProperties={"type": "string"}
    )
    refused = obj({"note": {"type": "integer"}}, additionalProperties={"type": "string"})
    assert rules(compare(old, taken)) == [("note", Rule.OPTIONAL_PROPERTY_ADDED, False, False)]
    assert rules(compare(old, refused)) == [("note", Rule.OPTIONAL_PROPERTY_ADDED, False, True)]


def test_a_removed_property_breaks_backward_and_forward_too_if_it_was_required() -> None:
    old = obj({"sku": {"type": "string"}, "name": opt({"type": "string"})}, required=("sku",))
    assert rules(compare(old, obj({"sku": {"type": "string"}}, required=("sku",)))) == [
        ("name", Rule.PROPERTY_REMOVED, True, False)
    ]
    assert rules(compare(old, obj({"name": opt({"type": "string"})}))) == [
        ("sku", Rule.PROPERTY_REMOVED, True, True)
    ]


def test_required_ness_changes() -> None:
    optional = obj({"sku": {"type": "string"}})
    required = obj({"sku": {"type": "string"}}, required=("sku",))
    assert rules(compare(optional, required)) == [("sku", Rule.BECAME_REQUIRED, True, False)]
    assert rules(compare(required, optional)) == [("sku", Rule.BECAME_OPTIONAL, False, True)]
    grown = obj({"sku": {"type": "string"}, "gln": {"type": "string"}}, required=("gln",))
    assert rules(compare(optional, grown)) == [("gln", Rule.REQUIRED_PROPERTY_ADDED, True, False)]


def test_type_changes_and_nullability() -> None:
    text, number = {"type": "string"}, {"type": "integer"}
    assert rules(compare(obj({"x": text}), obj({"x": number}))) == [
        ("x", Rule.TYPE_CHANGED, True, True)
    ]
    assert rules(compare(obj({"x": opt(text)}), obj({"x": text}))) == [
        ("x", Rule.TYPE_NARROWED, True, False)
    ]
    [widened] = compare(obj({"x": text}), obj({"x": opt(text)}))
    assert (widened.rule, widened.detail, widened.breaks_forward) == (
        Rule.TYPE_WIDENED,
        "now takes null too",
        True,
    )
    # Every integer is a number: integer -> number widens, number -> integer narrows.
    assert rules(compare(obj({"x": number}), obj({"x": {"type": "number"}}))) == [
        ("x", Rule.TYPE_WIDENED, False, True)
    ]
    assert rules(compare(obj({"x": {"type": ["number", "null"]}}), obj({"x": opt(number)}))) == [
        ("x", Rule.TYPE_NARROWED, True, False)
    ]


def test_enum_values_removed_added_introduced_and_dropped() -> None:
    def state(*values: str) -> dict[str, Any]:
        return obj({"state": {"type": "string", "enum": list(values)}})

    assert rules(compare(state("a", "b"), state("a", "c"))) == [
        ("state", Rule.ENUM_VALUE_REMOVED, True, False),
        ("state", Rule.ENUM_VALUE_ADDED, False, True),
    ]
    plain = obj({"state": {"type": "string"}})
    assert rules(compare(plain, state("a"))) == [("state", Rule.ENUM_INTRODUCED, True, False)]
    assert rules(compare(state("a"), plain)) == [("state", Rule.ENUM_DROPPED, False, True)]
    # const is a one-value enum; the order of values is no change.
    assert compare(obj({"k": {"const": "a"}}), obj({"k": {"enum": ["a"]}})) == []
    assert compare(state("a", "b"), state("b", "a")) == []


def test_patterns_tightened_loosened_and_changed() -> None:
    bare = obj({"code": {"type": "string"}})
    upper = obj({"code": {"type": "string", "pattern": "^[A-Z]+$"}})
    digits = obj({"code": {"type": "string", "pattern": "^[0-9]+$"}})
    assert rules(compare(bare, upper)) == [("code", Rule.PATTERN_TIGHTENED, True, False)]
    assert rules(compare(upper, bare)) == [("code", Rule.PATTERN_LOOSENED, False, True)]
    # Which of two regular expressions admits more is not decided: both ways.
    assert rules(compare(upper, digits)) == [("code", Rule.PATTERN_CHANGED, True, True)]


@pytest.mark.parametrize(
    ("old", "new", "rule"),
    [
        ({"type": "string", "maxLength": 200}, {"type": "string", "maxLength": 100}, "tight"),
        ({"type": "string", "maxLength": 100}, {"type": "string", "maxLength": 200}, "loose"),
        ({"type": "string"}, {"type": "string", "minLength": 1}, "tight"),
        ({"type": "number", "minimum": 0}, {"type": "number", "exclusiveMinimum": 0}, "tight"),
        ({"type": "integer", "maximum": 10}, {"type": "integer"}, "loose"),
        ({"type": "array", "maxItems": 4}, {"type": "array", "maxItems": 5}, "loose"),
        ({"type": "array"}, {"type": "array", "uniqueItems": True}, "tight"),
        ({"type": "integer", "multipleOf": 2}, {"type": "integer", "multipleOf": 4}, "tight"),
        ({"type": "integer", "multipleOf": 4}, {"type": "integer", "multipleOf": 2}, "loose"),
        ({"type": "integer", "multipleOf": 2}, {"type": "integer", "multipleOf": 3}, "both"),
        ({"type": "string", "x-gt": 0}, {"type": "string", "x-ge": 0}, "loose"),
    ],
)
def test_bounds_tightened_loosened_or_changed(
    old: dict[str, Any], new: dict[str, Any], rule: str
) -> None:
    expected = {
        "tight": (Rule.BOUND_TIGHTENED, True, False),
        "loose": (Rule.BOUND_LOOSENED, False, True),
        "both": (Rule.BOUND_CHANGED, True, True),
    }[rule]
    assert rules(compare(obj({"f": old}), obj({"f": new}))) == [("f", *expected)]


def test_an_integers_bound_written_two_ways_is_one_bound() -> None:
    a = obj({"days": {"type": "integer", "minimum": 0}})
    b = obj({"days": {"type": "integer", "exclusiveMinimum": -1}})
    assert compare(a, b) == []


def test_formats_added_and_removed() -> None:
    bare = obj({"on": {"type": "string"}})
    date = obj({"on": {"type": "string", "format": "date"}})
    assert rules(compare(bare, date)) == [("on", Rule.FORMAT_ADDED, True, False)]
    assert rules(compare(date, bare)) == [("on", Rule.FORMAT_REMOVED, False, True)]


def test_opening_or_closing_the_content_model_breaks_nothing_written() -> None:
    schema = obj({"sku": opt({"type": "string"})})
    assert rules(compare(closed(schema), schema)) == [("", Rule.CONTENT_MODEL_OPENED, False, False)]
    assert rules(compare(schema, closed(schema))) == [("", Rule.CONTENT_MODEL_CLOSED, False, False)]


# --- $ref, overlays, arrays and recursion --------------------------------------------------


def _with_dimensions(length: dict[str, Any], def_name: str = "Dimensions") -> dict[str, Any]:
    ref = {"$ref": f"#/$defs/{def_name}"}
    return {
        "$defs": {
            def_name: obj({"length_cm": length}),
            "Pack": obj({"dimensions": opt(ref)}),
        },
        **obj(
            {
                "dimensions": opt(ref),
                "packs": opt({"type": "array", "items": {"$ref": "#/$defs/Pack"}}),
            }
        ),
    }


def test_a_change_in_a_shared_definition_is_reported_where_each_field_uses_it() -> None:
    old = _with_dimensions({"type": "string", "maxLength": 10})
    new = _with_dimensions({"type": "string", "maxLength": 5})
    assert rules(compare(old, new)) == [
        ("dimensions.length_cm", Rule.BOUND_TIGHTENED, True, False),
        ("packs[*].dimensions.length_cm", Rule.BOUND_TIGHTENED, True, False),
    ]


def test_renaming_a_definition_or_inlining_it_is_no_change() -> None:
    old = _with_dimensions({"type": "string"})
    assert compare(old, _with_dimensions({"type": "string"}, def_name="Size")) == []
    dimensions = obj({"length_cm": {"type": "string"}})
    by_ref = {"$defs": {"D": dimensions}, **obj({"dimensions": opt({"$ref": "#/$defs/D"})})}
    assert compare(by_ref, obj({"dimensions": opt(dimensions)})) == []


def test_an_overlay_bound_dropped_from_the_credit_limit_loosens_its_amount() -> None:
    """The export puts a field validator's bound on credit_limit as an allOf overlay."""
    current = DOMAINS["customer"].json_schema()
    without = copy.deepcopy(current)
    del without["properties"]["credit_limit"]["allOf"]
    assert rules(compare(current, without)) == [
        ("credit_limit.amount", Rule.PATTERN_LOOSENED, False, True)
    ]
    assert rules(compare(without, current)) == [
        ("credit_limit.amount", Rule.PATTERN_TIGHTENED, True, False)
    ]


def test_a_recursive_model_is_compared_without_end() -> None:
    def tree(max_len: int) -> dict[str, Any]:
        node = obj(
            {
                "name": {"type": "string", "maxLength": max_len},
                "children": {"type": "array", "items": {"$ref": "#/$defs/Node"}},
            }
        )
        return {"$defs": {"Node": node}, **obj({"root": {"$ref": "#/$defs/Node"}})}

    assert compare(tree(5), tree(5)) == []
    assert rules(compare(tree(5), tree(4))) == [
        ("root.name", Rule.BOUND_TIGHTENED, True, False),
        ("root.children[*].name", Rule.BOUND_TIGHTENED, True, False),
    ]


def test_a_change_in_an_enum_definition_names_the_field() -> None:
    old = DOMAINS["item"].json_schema()
    new = copy.deepcopy(old)
    new["$defs"]["ItemLifecycle"]["enum"].remove("draft")
    [change] = compare(old, new)
    assert (change.path, change.rule, change.detail) == (
        "lifecycle_state",
        Rule.ENUM_VALUE_REMOVED,
        '"draft"',
    )


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        (
            obj({"x": {"$ref": "#/$defs/Nope"}}),
            "/properties/x/$ref: '#/$defs/Nope' does not resolve",
        ),
        (obj({"x": {"$ref": "other.json#/A"}}), "/properties/x/$ref: 'other.json#/A' is outside"),
        (obj({"x": {"type": "text"}}), "/properties/x/type: unknown type 'text'"),
        (obj({"x": {"type": "string", "maxLength": "5"}}), "/properties/x/maxLength: a bound"),
        ({"$defs": {"A": {"$ref": "#/$defs/A"}}, "$ref": "#/$defs/A"}, "refers to itself"),
    ],
)
def test_a_schema_that_cannot_be_compared_names_where(schema: dict[str, Any], message: str) -> None:
    with pytest.raises(SchemaError, match=message.replace("$", r"\$").replace("[", r"\[")):
        compare(schema, obj({}))


# --- verdicts --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("needed", "old", "new", "respected"),
    [
        (Bump.NONE, "1.0", "1.0", True),
        (Bump.NONE, "1.0", "1.1", True),  # a bump nothing needs is allowed
        (Bump.MINOR, "1.0", "1.0", False),
        (Bump.MINOR, "1.0", "1.1", True),
        (Bump.MINOR, "1.9", "1.10", True),  # numbers, not text: 1.10 is after 1.9
        (Bump.MINOR, "1.3", "2.0", True),
        (Bump.MAJOR, "1.0", "1.1", False),
        (Bump.MAJOR, "1.4", "2.0", True),
        (Bump.NONE, "1.1", "1.0", False),  # the version went down
    ],
)
def test_the_declared_bump_must_be_at_least_the_needed_one(
    needed: Bump, old: str, new: str, respected: bool
) -> None:
    changes = {
        Bump.NONE: [],
        Bump.MINOR: [Change("c", Rule.OPTIONAL_PROPERTY_ADDED, "", False, False)],
        Bump.MAJOR: [Change("c", Rule.PROPERTY_REMOVED, "", True, False)],
    }[needed]
    judged = verdict(changes, old, new)
    assert (judged.needed, judged.respected) == (needed, respected)


def test_the_declared_bump_is_read_from_the_versions() -> None:
    assert declared_bump("1.0", "1.0") is Bump.NONE
    assert declared_bump("1.9", "1.10") is Bump.MINOR
    assert declared_bump("1.9", "2.0") is Bump.MAJOR
    assert declared_bump("2.0", "1.9") is None


def test_a_verdict_says_which_bump_is_needed_and_suggests_the_version() -> None:
    removed = Change("name", Rule.PROPERTY_REMOVED, "was optional", True, False)
    added = Change("colour", Rule.OPTIONAL_PROPERTY_ADDED, "old readers take it", False, False)
    major = verdict([added, removed], "1.3", "1.4")
    assert (major.needed, major.declared, major.respected, major.suggested) == (
        Bump.MAJOR,
        Bump.MINOR,
        False,
        "2.0",
    )
    assert major.describe() == "needs a major bump to 2.0, but the version is 1.4 (declared minor)"
    minor = verdict([added], "1.3", "1.4")
    assert (minor.needed, minor.respected) == (Bump.MINOR, True)
    assert minor.describe() == "needs a minor bump: 1.3 -> 1.4 makes it"
    down = verdict([], "1.3", "1.2")
    assert (down.declared, down.respected) == (None, False)
    assert down.describe() == "the version went down (1.3 -> 1.2); needs 1.3 or later"


@pytest.mark.parametrize("bad", ["1", "1.0.0", "v1.0", "1.x", "", 1.0])
def test_a_version_that_is_not_major_minor_is_an_error_naming_the_field(bad: object) -> None:
    with pytest.raises(SchemaError, match=r"x-schema-version: .* is not a MAJOR\.MINOR version"):
        parse_version(bad)
    with pytest.raises(SchemaError, match="x-schema-version"):
        evolve({"x-schema-version": bad}, {"x-schema-version": "1.0"})


def test_a_schema_without_a_version_is_an_error_naming_the_field() -> None:
    with pytest.raises(SchemaError, match="x-schema-version: missing"):
        evolve(obj({}), versioned(obj({}), "1.0"))


# --- the real export path: two versions of one model --------------------------------------


class _ThingV1(CanonicalModel):
    code: Text | None = None
    name: Text | None = None
    price: Amount | None = None


class _ThingV2(_ThingV1):
    colour: Text | None = None


class _ThingV3(CanonicalModel):
    code: Text | None = None
    name: Text | None = None


def _spec(model: type[CanonicalModel], version: str) -> DomainSpec:
    return DomainSpec("thing", model, version, "thg", (("code",),), title_field="code")


def test_models_exported_as_the_cli_does_are_judged_minor_and_major() -> None:
    v1 = _spec(_ThingV1, "1.0").json_schema()
    v1_1 = _spec(_ThingV2, "1.1").json_schema()
    minor = evolve(v1, v1_1)
    assert rules(list(minor.changes)) == [("colour", Rule.OPTIONAL_PROPERTY_ADDED, False, False)]
    assert (minor.verdict.needed, minor.verdict.respected) == (Bump.MINOR, True)
    unbumped = evolve(v1, _spec(_ThingV2, "1.0").json_schema())
    assert (unbumped.verdict.respected, unbumped.verdict.suggested) == (False, "1.1")
    dropped = evolve(v1, _spec(_ThingV3, "1.1").json_schema())
    assert rules(list(dropped.changes)) == [("price", Rule.PROPERTY_REMOVED, True, False)]
    assert (dropped.verdict.needed, dropped.verdict.respected) == (Bump.MAJOR, False)


# --- forward compatibility, proven with a validator ------------------------------------------


def test_a_1_1_style_item_with_an_added_field_validates_against_the_exported_schema() -> None:
    """A consumer holding today's item schema validates a record of a later minor version
    that only adds an optional field: the open content model lets it through."""
    schema = DOMAINS["item"].json_schema()
    record = (
        DOMAINS["item"]
        .model.model_validate(
            {"gtin": "4006381333931", "name": "Nitrile gloves", "list_price": "12.5"}
        )
        .model_dump(mode="json", exclude_none=True)
    )
    later = {
        **record,
        "colour": "blue",
        "pack_levels": [
            {"level": "case", "uom": "CS", "quantity": "12", "stacking_limit": 4},
        ],
    }
    assert jsonschema_rs.Draft202012Validator(schema).is_valid(later)
    # The fields it knows are still checked, and a closed copy refuses the addition.
    assert not jsonschema_rs.Draft202012Validator(schema).is_valid({**later, "list_price": "-1"})
    assert not jsonschema_rs.Draft202012Validator(closed(schema)).is_valid(later)


def test_item_1_0_as_published_now_takes_an_item_1_1_record() -> None:
    """item 1.1 added supplier_item_name and supplier_lead_time_days: the 1.0 schema as the
    open export writes it takes a 1.1 record, and compare() agrees it is forward compatible."""
    current = DOMAINS["item"].json_schema()
    item_1_0 = copy.deepcopy(current)
    for added in ("supplier_item_name", "supplier_lead_time_days"):
        del item_1_0["properties"][added]
    item_1_0["x-schema-version"] = "1.0"
    record = {"sku": "A1", "supplier_item_name": "Gloves M", "supplier_lead_time_days": 14}
    assert jsonschema_rs.Draft202012Validator(item_1_0).is_valid(record)
    evolution = evolve(item_1_0, current)
    assert not evolution.breaks_forward and not evolution.breaks_backward
    assert (evolution.verdict.needed, evolution.verdict.respected) == (Bump.MINOR, True)


def test_the_exported_schemas_close_no_object() -> None:
    for name, spec in DOMAINS.items():
        text = repr(spec.json_schema())
        assert "additionalProperties" not in text, name


# --- hypothesis ------------------------------------------------------------------------------

# Property names never start with "z": the tests add "zz..." names of their own.
_NAMES = st.text(alphabet="abcdefgh_", min_size=1, max_size=6)

_LEAVES = st.one_of(
    st.integers(1, 50).map(lambda n: {"type": "string", "maxLength": n}),
    st.just({"type": "string"}),
    st.just({"type": "string", "format": "date"}),
    st.just({"type": "string", "pattern": "^[A-Z]+$"}),
    st.integers(-5, 5).map(lambda n: {"type": "integer", "minimum": n}),
    st.just({"type": "boolean"}),
    st.lists(st.sampled_from("abcd"), min_size=1, max_size=4, unique=True).map(
        lambda values: {"type": "string", "enum": values}
    ),
)


@st.composite
def _objects(draw: st.DrawFn, children: st.SearchStrategy[dict[str, Any]]) -> dict[str, Any]:
    properties = draw(st.dictionaries(_NAMES, children, max_size=4))
    required = draw(st.sets(st.sampled_from(sorted(properties)))) if properties else set()
    return obj(properties, tuple(sorted(required)))


_FIELDS = st.recursive(
    _LEAVES,
    lambda children: st.one_of(
        children.map(opt),
        children.map(lambda c: {"type": "array", "items": c}),
        _objects(children),
    ),
    max_leaves=8,
)


@st.composite
def _schemas(draw: st.DrawFn, *, all_optional: bool = False) -> dict[str, Any]:
    """A record schema as the export writes them: $defs, $refs, optionals, arrays."""
    defs = draw(st.dictionaries(st.sampled_from(["A", "B"]), _objects(_FIELDS), max_size=2))
    refs = [{"$ref": f"#/$defs/{name}"} for name in defs]
    fields = st.one_of(_FIELDS, *(st.just(r) for r in refs)) if refs else _FIELDS
    properties = draw(st.dictionaries(_NAMES, fields.map(opt), max_size=5))
    required: set[str] = set()
    if properties and not all_optional:
        required = draw(st.sets(st.sampled_from(sorted(properties))))
    return {"$defs": defs, **obj(properties, tuple(sorted(required))), "x-schema-version": "1.0"}


def _inline(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, list):
        return [_inline(n, defs) for n in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        return _inline(defs[node["$ref"].rsplit("/", 1)[1]], defs)
    return {k: _inline(v, defs) for k, v in node.items() if k != "$defs"}


@given(_schemas())
def test_a_schema_compared_with_itself_or_its_inlined_self_has_no_change(
    schema: dict[str, Any],
) -> None:
    assert compare(schema, copy.deepcopy(schema)) == []
    assert compare(schema, _inline(schema, schema["$defs"])) == []


@given(_schemas(), _FIELDS)
def test_adding_an_optional_property_is_minor_and_forward_compatible(
    schema: dict[str, Any], added: dict[str, Any]
) -> None:
    new = copy.deepcopy(schema)
    new["properties"]["zz_added"] = opt(added)
    new["x-schema-version"] = "1.1"
    evolution = evolve(schema, new)
    assert rules(list(evolution.changes)) == [
        ("zz_added", Rule.OPTIONAL_PROPERTY_ADDED, False, False)
    ]
    assert (evolution.verdict.needed, evolution.verdict.respected) == (Bump.MINOR, True)


@given(_schemas(), st.data())
def test_removing_a_property_is_major(schema: dict[str, Any], data: st.DataObject) -> None:
    if not schema["properties"]:
        schema["properties"]["zz_only"] = opt({"type": "string"})
    name = data.draw(st.sampled_from(sorted(schema["properties"])))
    new = copy.deepcopy(schema)
    del new["properties"][name]
    new["required"] = [r for r in new["required"] if r != name]
    changes = compare(schema, new)
    assert rules(changes) == [(name, Rule.PROPERTY_REMOVED, True, name in schema["required"])]
    assert needed_bump(changes) is Bump.MAJOR


@given(_schemas(), st.integers(2, 50), st.integers(1, 49))
def test_a_tightening_one_way_is_a_loosening_the_other(
    schema: dict[str, Any], longer: int, shorter: int
) -> None:
    shorter = min(shorter, longer - 1)
    wide, narrow = copy.deepcopy(schema), copy.deepcopy(schema)
    wide["properties"]["zz_code"] = {"type": "string", "maxLength": longer}
    narrow["properties"]["zz_code"] = {"type": "string", "maxLength": shorter}
    assert rules(compare(wide, narrow)) == [("zz_code", Rule.BOUND_TIGHTENED, True, False)]
    assert rules(compare(narrow, wide)) == [("zz_code", Rule.BOUND_LOOSENED, False, True)]


@given(_schemas(all_optional=True), st.booleans(), st.text(max_size=5))
def test_compare_says_forward_compatible_exactly_when_an_old_validator_takes_the_new_field(
    schema: dict[str, Any], old_closed: bool, value: str
) -> None:
    """What compare() says of an added field agrees with a real validator holding the old
    schema and given a record that carries only the new field."""
    old = closed(schema) if old_closed else schema
    new = copy.deepcopy(old)
    new["properties"]["zz_note"] = opt({"type": "string"})
    [change] = [c for c in compare(old, new) if c.path == "zz_note"]
    taken = jsonschema_rs.Draft202012Validator(old).is_valid({"zz_note": value})
    assert change.breaks_forward == (not taken) == old_closed
