"""Loading a landscape: every mistake is reported with its file, line and key."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mastersync.landscape import LandscapeError, load_landscape
from mastersync.sandbox.demo import write_landscape

MAPPING = """\
key: ITEM_NO
version: {from: CHANGE_NO, kind: counter}
fields:
  sku: ITEM_NO
  name: DESCRIPTION
"""

LANDSCAPE = """\
name: test
systems:
  erp:
    kind: erp
    inbound:
      item: item.yaml
domains:
  item:
    ownership:
      name: [erp]
"""


def write(folder: Path, landscape: str = LANDSCAPE, mapping: str = MAPPING) -> Path:
    (folder / "item.yaml").write_text(mapping, encoding="utf-8")
    path = folder / "landscape.yaml"
    path.write_text(landscape, encoding="utf-8")
    return path


def problems(path: Path) -> list[str]:
    with pytest.raises(LandscapeError) as exc:
        load_landscape(path)
    return exc.value.problems


def test_a_valid_landscape_loads_with_its_mappings(tmp_path: Path) -> None:
    compiled = load_landscape(write(tmp_path))
    assert compiled.mapper("erp", "item").targets == ("sku", "name")
    assert compiled.policies["item"].fields["name"].owners == ("erp",)
    assert compiled.base_dir == str(tmp_path.resolve())


def test_the_starter_landscape_loads(tmp_path: Path) -> None:
    compiled = load_landscape(write_landscape(tmp_path))
    assert len(compiled.mappers) == 12


def test_a_typo_in_a_key_names_line_and_suggests(tmp_path: Path) -> None:
    path = write(tmp_path, LANDSCAPE.replace("    ownership:", "    ownersip:"))
    [problem] = problems(path)
    assert problem == (
        f"{path}:9: domains.item.ownersip: unknown key 'ownersip'; did you mean 'ownership'?"
    )


def test_an_unknown_system_in_ownership(tmp_path: Path) -> None:
    path = write(tmp_path, LANDSCAPE.replace("name: [erp]", "name: [epr]"))
    [problem] = problems(path)
    assert problem.startswith(f"{path}:10: domains.item.ownership.name.0: unknown system 'epr'")
    assert "did you mean 'erp'" in problem


def test_a_bad_enum_value_shows_what_was_given(tmp_path: Path) -> None:
    path = write(tmp_path, LANDSCAPE.replace("kind: erp", "kind: ERP"))
    [problem] = problems(path)
    assert problem.startswith(f"{path}:4: systems.erp.kind: Input should be")
    assert "(got 'ERP')" in problem


def test_mapping_errors_point_into_the_mapping_file(tmp_path: Path) -> None:
    path = write(tmp_path, mapping=MAPPING.replace("  name: DESCRIPTION", "  nmae: DESCRIPTION"))
    [problem] = problems(path)
    assert problem.startswith(
        f"{tmp_path.resolve() / 'item.yaml'}:5: fields.nmae: 'nmae' is "
        "not an item field; did you mean 'name'?"
    )


def test_a_misspelt_inbound_domain_is_said_at_the_landscapes_line(tmp_path: Path) -> None:
    """Review: it was said at the top of the mapping file the entry names, which is not
    where the typo is."""
    path = write(tmp_path, LANDSCAPE.replace("      item: item.yaml", "      itme: item.yaml"))
    [problem] = problems(path)
    assert problem == (
        f"{path}:6: systems.erp.inbound.itme: unknown domain 'itme'; did you mean 'item'?"
    )


def test_a_subscription_name_with_a_dot_is_refused(tmp_path: Path) -> None:
    """A subscription's id is "<system>.<name>", read back by its last dot: a system's
    name may hold dots, a subscription's not."""
    landscape = LANDSCAPE.replace(
        "      item: item.yaml\n",
        "      item: item.yaml\n    outbound:\n      items.eu: {domain: item}\n",
    )
    [problem] = problems(write(tmp_path, landscape))
    assert "systems.erp.outbound.items.eu: 'items.eu': a subscription's name holds no dot" in (
        problem
    )


def test_a_typo_past_the_first_dot_is_refused_in_mappings_and_rules(tmp_path: Path) -> None:
    """Only the part before the first dot was checked: a rule on dimensions.lenght_cm
    loaded and never ran, and a mapping to dimensions.weight rejected every record."""
    mapping = MAPPING + "  dimensions.weight: WEIGHT\n"
    landscape = LANDSCAPE + (
        "    quality:\n      - {field: dimensions.lenght_cm, rule: range, max: 5}\n"
    )
    path = write(tmp_path, landscape, mapping)
    item = tmp_path.resolve() / "item.yaml"
    assert sorted(problems(path)) == sorted(
        [
            f"{item}:6: fields.dimensions.weight: 'dimensions.weight' is not a field of "
            "dimensions; did you mean 'dimensions.height_cm'?",
            f"{path}:12: domains.item.quality.0.field: 'dimensions.lenght_cm' is not a field "
            "of dimensions; did you mean 'dimensions.length_cm'?",
        ]
    )


def test_nested_fields_through_lists_load(tmp_path: Path) -> None:
    landscape = LANDSCAPE + (
        "    quality:\n"
        "      - {field: pack_levels.dimensions.height_cm, rule: range, max: 300}\n"
        "      - {field: dimensions.length_cm, rule: range, min: 0}\n"
    )
    compiled = load_landscape(write(tmp_path, landscape))
    assert [r.path for r in compiled.policies["item"].record_rules] == [
        ("pack_levels", "dimensions", "height_cm"),
        ("dimensions", "length_cm"),
    ]


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        (
            "{field: name, rule: range, min: 1}",
            "quality.0.rule: rule 'range' compares numbers and 'name' holds none "
            "(for the length of text: rule 'length')",
        ),
        (
            "{field: lifecycle_state, rule: enum, values: [active, drafted]}",
            "quality.0.values: 'drafted' can never be a lifecycle_state (it is one of: "
            "draft, enriched, approved, active, discontinued)",
        ),
        (
            "{field: list_price, rule: range, min: 10, max: 1}",
            "quality.0: min 10 is above max 1: no value could pass",
        ),
        ("{field: name.first, rule: required}", "quality.0.field: 'name' holds no fields"),
        (
            "{field: gtin, rule: tax_id, country_field: contry}",
            "quality.0.country_field: 'contry' is not an item field",
        ),
    ],
)
def test_a_rule_no_value_could_pass_is_refused(tmp_path: Path, rule: str, expected: str) -> None:
    """These loaded, and then every record was rejected (or none could ever pass)."""
    path = write(tmp_path, LANDSCAPE + f"    quality:\n      - {rule}\n")
    [problem] = problems(path)
    assert f"{path}:12: domains.item.{expected}" in problem


def test_a_bad_time_format_or_zone_is_refused_naming_its_line_and_key(tmp_path: Path) -> None:
    """`check` said ok to a format strptime refuses (every record was then rejected), and
    put a misspelt zone at line 1, "(top)"."""
    bad = MAPPING.replace(
        "version: {from: CHANGE_NO, kind: counter}",
        "version:\n  from: CHANGE_NO\n  kind: timestamp\n  format: '%d.%m.%Y %H:%Q'\n"
        "  timezone: Europe/Berlinn",
    )
    path = write(tmp_path, mapping=bad)
    item = tmp_path.resolve() / "item.yaml"
    assert sorted(problems(path)) == [
        f"{item}:5: version.format: not a strptime format: 'Q' is a bad directive "
        "(got '%d.%m.%Y %H:%Q')",
        f"{item}:6: version.timezone: unknown time zone: give an IANA name such as "
        "Europe/Berlin (got 'Europe/Berlinn')",
    ]


SHOP = """\
  shop:
    kind: ecommerce
    outbound:
      items:
        domain: item
        filter: "lifecycle_stat == 'active'"
        mapping:
          fields: {handle: sku, title: name}
"""


@pytest.mark.parametrize(
    ("edit", "line", "key", "message"),
    [
        (
            {},
            12,
            "filter",
            "\"lifecycle_stat == 'active'\" reads 'lifecycle_stat', which is not an item "
            "field; did you mean 'lifecycle_state'?",
        ),
        (
            {"lifecycle_stat == 'active'": "lifecycle_state == true"},
            12,
            "filter",
            "reads 'true', which is not an item field; JMESPath needs the literal in "
            "backticks: `true`",
        ),
        (
            {
                "lifecycle_stat == 'active'": "lifecycle_state == 'active'",
                "title: name": "title: nmae",
            },
            14,
            "mapping.fields.title",
            "'nmae' reads 'nmae', which is not an item field; did you mean 'name'?",
        ),
        (
            # Below the record's own fields too: a misspelt part of a nested one.
            {"lifecycle_stat == 'active'": "dimensions.lenght_cm > `1`"},
            12,
            "filter",
            "'dimensions.lenght_cm > `1`' reads 'dimensions.lenght_cm': "
            "'dimensions.lenght_cm' is not a field of dimensions; did you mean "
            "'dimensions.length_cm'?",
        ),
        (
            {
                "lifecycle_stat == 'active'": "lifecycle_state == 'active'",
                "title: name": "title: dimensions.widht_cm",
            },
            14,
            "mapping.fields.title",
            "reads 'dimensions.widht_cm': 'dimensions.widht_cm' is not a field of "
            "dimensions; did you mean 'dimensions.width_cm'?",
        ),
    ],
)
def test_a_subscription_reading_a_field_the_record_has_not_names_it(
    tmp_path: Path, edit: dict[str, str], line: int, key: str, message: str
) -> None:
    """A misspelt field reads as null: the filter matched nothing, the mapping sent
    nothing for it, every delivery 'skipped: filtered out', and `check` said ok."""
    shop = SHOP
    for old, new in edit.items():
        shop = shop.replace(old, new)
    path = write(tmp_path, LANDSCAPE.replace("domains:", shop + "domains:"))
    [problem] = problems(path)
    assert problem.startswith(f"{path}:{line}: systems.shop.outbound.items.{key}: "), problem
    assert message in problem, problem


def test_a_second_subscription_of_a_system_to_one_domain_is_refused(tmp_path: Path) -> None:
    """Two subscriptions of the shop to items sent the same idempotency keys: the shop took
    one's deactivation as a duplicate of the other's upsert, and each overwrote the other's
    records with its own shape and filter."""
    shop = SHOP.replace("lifecycle_stat ==", "lifecycle_state ==") + (
        '      premium:\n        domain: item\n        filter: "list_price > `50`"\n'
    )
    path = write(tmp_path, LANDSCAPE.replace("domains:", shop + "domains:"))
    [problem] = problems(path)
    assert problem == (
        f"{path}:16: systems.shop.outbound.premium.domain: shop already takes item records "
        "through subscription 'items': a system subscribes to a domain once (the hub keeps "
        "one consumer key per record, one listing to reconcile and one idempotency key per "
        "version for it); join the filters in one subscription, or declare the second "
        "resource as a system of its own"
    )


def test_every_cross_reference_error_is_reported_in_one_check(tmp_path: Path) -> None:
    """One problem per `check` took as many runs as there were typos."""
    path = write(
        tmp_path,
        LANDSCAPE.replace("name: [erp]", "name: [epr]"),
        MAPPING.replace("  name: DESCRIPTION", "  nmae: DESCRIPTION"),
    )
    found = problems(path)
    assert len(found) == 2
    assert "unknown system 'epr'" in found[0] and "'nmae' is not an item field" in found[1]


def test_a_yaml_null_where_the_text_null_is_meant_is_said_once(tmp_path: Path) -> None:
    """map_other: null gave three errors, two of them about union branches."""
    mapping = MAPPING.replace(
        "  name: DESCRIPTION", "  name: {from: DESCRIPTION, map: {A: a}, map_other: null}"
    )
    [problem] = problems(write(tmp_path, mapping=mapping))
    assert problem.endswith(
        "fields.name.map_other: Input should be 'error', 'keep' or 'null' "
        "(got YAML's null: write 'null' in quotes)"
    )


def test_a_mapping_file_that_fails_its_schema(tmp_path: Path) -> None:
    path = write(tmp_path, mapping=MAPPING.replace("kind: counter", "kind: countr"))
    [problem] = problems(path)
    assert ":2: version.kind:" in problem


def test_a_missing_mapping_file(tmp_path: Path) -> None:
    path = write(tmp_path, LANDSCAPE.replace("item.yaml", "nope.yaml"))
    [problem] = problems(path)
    assert problem.startswith(f"{path}:6: systems.erp.inbound.item:")
    assert "cannot read" in problem


def test_yaml_syntax_errors_name_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, LANDSCAPE.replace("      name: [erp]", "      name: [erp"))
    [problem] = problems(path)
    assert problem.startswith(f"{path}:11:")


def test_duplicate_keys_are_reported(tmp_path: Path) -> None:
    path = write(tmp_path, LANDSCAPE + "  item:\n    ownership: {}\n")
    [problem] = problems(path)
    assert "duplicate key 'item' (first at line 8)" in problem


def test_credentials_must_be_references(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        LANDSCAPE.replace(
            "    kind: erp\n",
            "    kind: erp\n    connector:\n      type: rest\n      password: hunter2\n",
        ),
    )
    [problem] = problems(path)
    assert problem.startswith(
        f"{path}:7: systems.erp.connector.password: credentials must be references"
    )
    assert "hunter2" not in problem
    ok = write(
        tmp_path,
        LANDSCAPE.replace(
            "    kind: erp\n",
            "    kind: erp\n    connector:\n      password: {env: ERP_PASSWORD}\n",
        ),
    )
    load_landscape(ok)


def test_yes_no_and_y_n_stay_text_in_value_maps(tmp_path: Path) -> None:
    mapping = MAPPING + "  lot_controlled: {from: LOT, map: {Y: true, N: false, NO: false}}\n"
    compiled = load_landscape(write(tmp_path, mapping=mapping))
    mapped = compiled.mapper("erp", "item").map(
        {"ITEM_NO": "1", "CHANGE_NO": "1", "DESCRIPTION": "d", "LOT": "NO"}
    )
    assert mapped.values["lot_controlled"] is False


def test_a_reference_to_an_unknown_natural_key(tmp_path: Path) -> None:
    mapping = "key: id\nfields:\n  item: {from: sku, ref: {domain: item, by: ean}}\n"
    path = write(tmp_path, LANDSCAPE.replace("item: item.yaml", "price: item.yaml"), mapping)
    [problem] = problems(path)
    assert "fields.item.ref.by: item has no natural key 'ean' (it has: gtin)" in problem


def _starter(tmp: Path) -> tuple[Path, list[Path], dict[Path, Any]]:
    write_landscape(tmp)
    files = sorted(tmp.rglob("*.yaml"))
    return tmp, files, {f: yaml.safe_load(f.read_text()) for f in files}


def _paths(node: Any, here: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [here] if here else []
    if isinstance(node, dict):
        for key, value in node.items():
            out += _paths(value, (*here, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out += _paths(value, (*here, i))
    return out


_DELETE, _ADD = object(), object()
_EDITS = [None, 0, -1, 1.5, "x", "", [], {}, [1], {"a": 1}, True, "1e30", "[?", "\x00"]


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.data())
def test_any_one_edit_of_the_starter_landscape_loads_or_names_where_it_is_wrong(
    tmp_path_factory: pytest.TempPathFactory, data: st.DataObject
) -> None:
    """A typo anywhere, in the landscape or a mapping file it names (a value of the wrong
    type, a key gone or unknown), is a LandscapeError naming file and line; never another
    exception from deeper down (found so: an unknown encoding, a NUL in a file name)."""
    base, files, docs = _starter(tmp_path_factory.mktemp("starter"))
    target = data.draw(st.sampled_from(files))
    doc = copy.deepcopy(docs[target])
    path = data.draw(st.sampled_from(_paths(doc)))
    edit = data.draw(st.sampled_from([*_EDITS, _DELETE, _ADD]))
    node = doc
    for key in path[:-1]:
        node = node[key]
    if edit is _DELETE:
        del node[path[-1]]
    elif edit is _ADD:
        node[path[-1]] = {"bogus": 1}
    else:
        node[path[-1]] = edit
    target.write_text(yaml.safe_dump(doc, allow_unicode=True))
    problems: list[str] = []
    try:
        load_landscape(base / "landscape.yaml")
    except LandscapeError as exc:
        problems = exc.problems
    assert all(re.match(r"\S+\.yaml:\d+: ", p) for p in problems), problems


@pytest.mark.parametrize(
    ("path", "value", "said"),
    [
        (("systems", "erp", "connector", "encoding"), "latin-9x", "unknown encoding 'latin-9x'"),
        (("systems", "erp", "inbound", "location"), "maps/\x00.yaml", "cannot read mapping file"),
    ],
)
def test_an_unknown_encoding_or_an_unreadable_file_name_is_a_landscape_error(
    tmp_path: Path, path: tuple[str, ...], value: str, said: str
) -> None:
    base, _, docs = _starter(tmp_path)
    doc = docs[base / "landscape.yaml"]
    node = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    (base / "landscape.yaml").write_text(yaml.safe_dump(doc, allow_unicode=True))
    with pytest.raises(LandscapeError) as raised:
        load_landscape(base / "landscape.yaml")
    (problem,) = raised.value.problems
    assert said in problem and re.match(r"\S+landscape\.yaml:\d+: systems\.erp\.", problem)


def test_unquoted_numeric_map_keys_bad_date_specs_and_indentation_are_said_plainly(
    tmp_path: Path,
) -> None:
    """`map: {010: PK}` said 'Input should be a valid string (got 8)'; a bad date format
    came with the class name DateSpec and 'Input should be a valid boolean'; a mis-indented
    key got the parser's words alone."""
    mapping = MAPPING + (
        "  base_uom: {from: UOM, map: {010: EA}}\n"
        "  shelf_life_days: {from: D, date: {format: '%Q'}}\n"
    )
    path = write(tmp_path, mapping=mapping)
    item = tmp_path.resolve() / "item.yaml"
    assert sorted(problems(path)) == [
        f"{item}:6: fields.base_uom.map.8.[key]: keys here are text, and YAML read this one "
        "as the number 8: quote it ('010': ...)",
        f"{item}:7: fields.shelf_life_days.date.format: not a strptime format: 'Q' is a bad "
        "directive (got '%Q')",
    ]
    bad = write(tmp_path, mapping=MAPPING.replace("  name: DESCRIPTION", "   name: DESCRIPTION"))
    [problem] = problems(bad)
    assert problem.endswith("(check this line's indentation against the lines above it)")


def test_a_subscriptions_delivery_settings_override_only_what_they_name(tmp_path: Path) -> None:
    path = tmp_path / "landscape.yaml"
    path.write_text(
        """
name: override
systems:
  shop:
    kind: ecommerce
    delivery: {max_attempts: 8, timeout: 30s, batch_size: 7, concurrency: 2,
               backoff: {initial: 5s, max: 60s}}
    outbound:
      items: {domain: item, delivery: {max_attempts: 20, backoff: {max: 10m}}}
      prices: {domain: price}
"""
    )
    compiled = load_landscape(path)
    items = compiled.subscriptions["shop.items"].delivery
    # The subscription's own keys; the system's settings for the rest, not the built-in
    # defaults (10 s, 100, 16, a 1 s first backoff).
    assert items.max_attempts == 20
    assert (items.timeout, items.batch_size, items.concurrency) == (30.0, 7, 2)
    assert (items.backoff.initial, items.backoff.max) == (5.0, 600.0)
    assert compiled.subscriptions["shop.prices"].delivery.max_attempts == 8


def test_two_subscriptions_with_one_id_are_refused(tmp_path: Path) -> None:
    """``shop.eu`` + ``items`` and ``shop`` + ``eu.items`` are both ``shop.eu.items``: the
    hub keys a subscription's cursor, queue and bus consumer by it, and the later one
    silently replaced the first. A subscription's name holds no dot, so they cannot clash."""
    path = tmp_path / "landscape.yaml"
    path.write_text(
        """
name: same-id
systems:
  shop.eu:
    kind: ecommerce
    outbound:
      items: {domain: item}
  shop:
    kind: ecommerce
    outbound:
      eu.items: {domain: item}
"""
    )
    [problem] = problems(path)
    assert "systems.shop.outbound.eu.items: 'eu.items': a subscription's name holds no dot" in (
        problem
    )


def test_a_landscape_not_in_utf8_names_the_file_line_and_byte(tmp_path: Path) -> None:
    """A cp1252 "ü" (as a Windows editor saves it) is a problem, not a UnicodeDecodeError."""
    path = write(tmp_path)
    path.write_bytes(LANDSCAPE.replace("name: test", "name: test  # Müller").encode("cp1252"))
    [problem] = problems(path)
    assert problem.startswith(f"{path}:1: not UTF-8 (byte 0xfc at offset 15)")
    write(tmp_path)
    (tmp_path / "item.yaml").write_bytes((MAPPING + "# Müller\n").encode("latin-1"))
    [problem] = problems(path)
    assert f"{tmp_path / 'item.yaml'}:6: not UTF-8 (byte 0xfc" in problem


# A consumer whose connector writes each subscription by settings of its own.
CONSUMER = """\
name: writes
systems:
  partner:
    kind: other
    connector:
{connector}
    outbound:
      catalog: {{domain: item, filter: "lifecycle_state != 'draft'"}}
"""


@pytest.mark.parametrize(
    ("connector", "key", "entry"),
    [
        (
            "      type: files\n      exports:\n        catalogue: {folder: out, format: jsonl}",
            "exports",
            "catalogue",
        ),
        (
            "      type: rest\n      base_url: http://127.0.0.1:1\n      write:\n"
            "        catalgo: {upsert: {method: PUT, path: '/items/{payload.sku}'}}",
            "write",
            "catalgo",
        ),
        (
            "      type: edi\n      domains: [item]\n      exports:\n"
            "        catalogs: {folder: out, message: '832', sender_id: HUB, receiver_id: P}",
            "exports",
            "catalogs",
        ),
        (
            "      type: sql\n      url: sqlite:///x.db\n      write:\n"
            "        katalog: {table: items, key: sku}",
            "write",
            "katalog",
        ),
    ],
)
def test_a_subscription_its_connector_has_no_write_settings_for_is_refused(
    tmp_path: Path, connector: str, key: str, entry: str
) -> None:
    """`exports: {catalogue: ...}` for subscription `catalog` (or `write: {itemz: ...}` for
    `items`) passed `check`, then every delivery dead-lettered ("no export for catalog")."""
    path = tmp_path / "landscape.yaml"
    path.write_text(CONSUMER.format(connector=connector))
    [problem] = problems(path)
    line = CONSUMER.format(connector=connector).splitlines().index("    outbound:") + 2
    assert problem == (
        f"{path}:{line}: systems.partner.outbound.catalog: connector.{key} has no entry "
        f"'catalog' for this subscription, so the {connector.split()[1]} connector would "
        f"dead-letter every delivery; did you mean {entry!r}?"
    )
    # Named as the subscription is, it loads.
    path.write_text(CONSUMER.format(connector=connector.replace(entry, "catalog")))
    assert load_landscape(path).subscriptions["partner.catalog"].name == "catalog"


def test_a_write_entry_far_from_every_name_lists_what_there_is(tmp_path: Path) -> None:
    """Without a likely meant entry, the check says which there are."""
    path = tmp_path / "landscape.yaml"
    path.write_text(
        CONSUMER.format(
            connector="      type: files\n      exports:\n        zzz: {folder: out, format: csv}"
        )
    )
    [problem] = problems(path)
    assert problem.endswith("would dead-letter every delivery (it has: zzz)"), problem


@pytest.mark.parametrize(
    ("condition", "value", "near"),
    [
        ("lifecycle_state == 'actve'", "actve", "; did you mean 'active'?"),
        ("'Active' != lifecycle_state && list_price != null", "Active", "; did you mean 'active'?"),
        (
            "contains(['active', 'aproved'], lifecycle_state)",
            "aproved",
            "; did you mean 'approved'?",
        ),
        ('!(lifecycle_state == `"gone"`)', "gone", ""),
    ],
)
def test_a_filter_comparing_an_enumerated_field_with_no_value_of_it_is_refused(
    tmp_path: Path, condition: str, value: str, near: str
) -> None:
    """`lifecycle_state == 'actve'` passed `check` and silently filtered out every record."""
    shop = SHOP.replace("lifecycle_stat == 'active'", condition.replace('"', '\\"'))
    path = write(tmp_path, LANDSCAPE.replace("domains:", shop + "domains:"))
    [problem] = problems(path)
    assert problem.startswith(f"{path}:12: systems.shop.outbound.items.filter: "), problem
    assert problem.endswith(
        f"compares lifecycle_state with {value!r}, a value lifecycle_state never holds "
        f"(it is one of: draft, enriched, approved, active, discontinued){near}"
    ), problem


@pytest.mark.parametrize(
    "condition",
    [
        "lifecycle_state == 'active' || lifecycle_state != 'draft'",
        "contains(['active', 'approved'], lifecycle_state)",
        # Not an enumerated field, or not compared with text: as written.
        "name == 'actve'",
        "lifecycle_state == null",
        "contains(lifecycle_state, 'act')",
        "pack_levels[?level == 'pallt'] != `[]`",
    ],
)
def test_a_filter_comparing_an_enumerated_field_with_its_values_loads(
    tmp_path: Path, condition: str
) -> None:
    """Only text an enumerated field can never hold is refused."""
    shop = SHOP.replace("lifecycle_stat == 'active'", condition)
    path = write(tmp_path, LANDSCAPE.replace("domains:", shop + "domains:"))
    assert load_landscape(path).subscriptions["shop.items"].name == "items"


@pytest.mark.parametrize(
    ("spec", "line", "where", "given", "near"),
    [
        ("{from: ST, map: {A: aproved, N: draft}}", 6, "map.A", "aproved", "approved"),
        ("{const: actve}", 6, "const", "actve", "active"),
        ("{from: ST, map: {A: active}, default: gone}", 6, "default", "gone", None),
        # The case conversion comes after the map: this one gives 'Active'.
        ("{from: ST, map: {A: active}, case: title}", 6, "map.A", "active", "active"),
    ],
    ids=["map", "const", "default", "case"],
)
def test_a_value_map_giving_an_enumerated_field_no_value_of_it_is_refused_at_its_line(
    tmp_path: Path, spec: str, line: int, where: str, given: str, near: str | None
) -> None:
    """Review: a value map of `A: aproved` passed `check`, and every record with that code
    was rejected at ingest, the error naming the data row instead of the mapping's line."""
    mapping = MAPPING + f"  lifecycle_state: {spec}\n"
    path = write(tmp_path, mapping=mapping)
    [problem] = problems(path)
    assert problem.startswith(f"{tmp_path / 'item.yaml'}:{line}: "), problem
    assert f"fields.lifecycle_state.{where}: 'lifecycle_state' holds one of draft, " in problem
    assert f"; {given!r} is none of them" in problem
    assert problem.endswith(f"; did you mean {near!r}?" if near else "none of them"), problem


def test_a_value_map_giving_an_enumerated_field_its_values_loads(tmp_path: Path) -> None:
    mapping = MAPPING + "  lifecycle_state: {from: ST, map: {A: ACTIVE, X: null}, case: lower}\n"
    assert load_landscape(write(tmp_path, mapping=mapping)).mapper("erp", "item")


def test_a_template_with_an_empty_condition_loads(tmp_path: Path) -> None:
    """Found by the edit property above: `when: ""` in a list template (no condition, as
    the mapping reads it) ended loading with JMESPath's EmptyExpressionError."""
    template = '{when: "", level: {const: each}, quantity: {const: 1}}'
    mapping = MAPPING + f"  pack_levels:\n    - {template}\n"
    assert load_landscape(write(tmp_path, mapping=mapping)).mapper("erp", "item")
