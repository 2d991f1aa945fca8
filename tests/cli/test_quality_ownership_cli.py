"""What a steward sees of a quality rule broken by a value its system may not write."""

from __future__ import annotations

from pathlib import Path

from tests.cli.test_cli import cli

LANDSCAPE = """
name: dq
systems:
  erp:
    kind: erp
    inbound:
      item:
        key: sku
        version: {from: v, kind: counter}
        fields: {sku: sku, name: name, description: {from: desc, optional: true}}
  pim:
    kind: pim
    inbound:
      item:
        key: id
        version: {from: v, kind: counter}
        fields: {sku: sku, description: {from: desc, optional: true}}
domains:
  item:
    ownership: {name: [erp], description: [pim]}
    quality: [{field: description, rule: length, max: 10}]
"""


def ingest(landscape: Path, system: str, rows: str) -> str:
    data = landscape.parent / f"{system}.csv"
    data.write_text(rows)
    code, out = cli("ingest", "-s", system, "-d", "item", str(data), landscape=landscape)
    assert code == 0, out
    return out


def test_one_entry_names_the_record_the_field_and_the_rule_and_refuses_nothing(
    tmp_path: Path,
) -> None:
    landscape = tmp_path / "landscape.yaml"
    landscape.write_text(LANDSCAPE)
    out = ingest(landscape, "erp", "sku,v,name,desc\nA1,1,Pen,a description far too long\n")
    # Taken: the description was the PIM's, ignored anyway.
    assert "erp    item   erp.csv        1        1         0     0        0" in out
    code, out = cli("exceptions", "list", landscape=landscape)
    assert code == 0, out
    assert "1 inbox entries" in out
    [row] = [line.split("│")[1:7] for line in out.splitlines() if line.startswith("│ 1 ")]
    assert [cell.strip() for cell in row] == [
        "1",
        "open",
        "ownership_violation",
        "erp.item:A1",
        "description",
        "ownership",
    ]
    code, out = cli("exceptions", "show", "1", landscape=landscape)
    assert code == 0, out
    # The one entry about the value says the rule it breaks too (it said ownership only).
    said = " ".join(out.split())  # as wrapped at any width
    assert "it also fails rule length (length 26 is above the maximum 10)" in said
    # The ERP stops sending it: the entry is settled.
    ingest(landscape, "erp", "sku,v,name\nA1,2,Pen\n")
    code, out = cli("exceptions", "list", landscape=landscape)
    assert code == 0 and "0 inbox entries" in out, out
    # The owner's own description is refused for it, as ever.
    out = ingest(landscape, "pim", "id,v,sku,desc\nP1,1,A1,a description far too long\n")
    assert "description [length] length 26 is above the maximum 10" in out


def test_a_malformed_value_the_system_may_not_write_does_not_refuse_its_record(
    tmp_path: Path,
) -> None:
    """The PIM's country of origin (the ERP's field) is no country code: the PIM's whole
    record, its own description with it, was refused for it. Now the record is taken
    without it, and its ownership entry names the rule."""
    both = LANDSCAPE.replace(
        "description: {from", "country_of_origin: {from: origin}, description: {from"
    )
    landscape = tmp_path / "landscape.yaml"
    landscape.write_text(
        both.replace("description: [pim]}", "description: [pim], country_of_origin: [erp]}")
    )
    ingest(landscape, "erp", "sku,v,name,origin\nA1,1,Pen,DE\n")
    out = ingest(landscape, "pim", "id,v,sku,origin,desc\nP1,1,A1,Germany,Blue\n")
    assert "pim    item   pim.csv        1        1         0     0        0" in out, out
    code, out = cli("get", "item", "pim:P1", "--json", landscape=landscape)
    assert code == 0, out
    assert '"description": "Blue"' in out and "Germany" not in out
    code, out = cli("exceptions", "show", "1", landscape=landscape)
    assert code == 0, out
    said = " ".join(out.split())
    assert "ownership_violation" in said
    assert "pim may not write country_of_origin: owned by erp" in said
    assert "it also fails rule" in said and "so it is not kept" in said


def test_a_malformed_natural_key_the_system_may_not_write_still_refuses_its_record(
    tmp_path: Path,
) -> None:
    """A GTIN is the item's natural key: set aside, the record would identify no record
    (a second item holding only the PIM's description). Refused, naming field and rule."""
    gtins = LANDSCAPE.replace("description: {from", "gtin: {from: gtin}, description: {from")
    landscape = tmp_path / "landscape.yaml"
    landscape.write_text(gtins.replace("description: [pim]}", "description: [pim], gtin: [erp]}"))
    ingest(landscape, "erp", "sku,v,name,gtin\nA1,1,Pen,4006381333931\n")
    out = ingest(landscape, "pim", "id,v,sku,gtin,desc\nP1,1,A1,4006381333932,Blue\n")
    assert "pim    item   pim.csv        1        0         0     0        1" in out, out
    assert "gtin [gtin_check_digit]" in out
