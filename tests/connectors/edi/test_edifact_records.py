"""PRICAT and INVRPT messages become flat string records with dot-decimal numbers."""

from __future__ import annotations

from mastersync.connectors.edi import parse_edifact

PRICAT = """UNA:+,? '
UNB+UNOC:3+5412345000013:14+5498765000019:14+240501:1200+PC1'
UNH+1+PRICAT:D:96A:UN:EAN008'
BGM+9+CAT-2024+9'
DTM+137:20240501:102'
RFF+ZZZ:CONTRACT 7'
NAD+SU+5412345000013::9++ACME SUPPLIES'
NAD+BY+5498765000019::9'
CUX+2:EUR:8'
PGI+2+TOOLS'
LIN+1+1+4006381333931:EN'
PIA+5+W-100:SA+B-9:IN'
PIA+1+CX-1:MF'
IMD+F++:::WIDGET BLUE, 10?+ PACK:EXTRA LONG NAME'
IMD+F+35+:::BLUE'
QTY+52:10:PCE'
MEA+PD+AAB+KGM:1,25'
DTM+157:20240601:102'
PRI+AAA:12,5:CT::1:PCE'
DTM+194:20240701:102'
PRI+AAE:15:::1:PCE'
CUX+2:USD:8'
LIN+2++5012345678900:SRV'
IMD+C++ABC::9'
PRI+AAA:0,99'
UNS+S'
UNT+25+1'
UNZ+1+PC1'
"""


def test_pricat_items() -> None:
    doc = parse_edifact(PRICAT)
    assert doc.all_errors == []
    widget, other = doc.records("item")
    assert (widget["line_number"], widget["action"], widget["item_number_type"]) == ("1", "1", "EN")
    assert (widget["gtin"], widget["id_EN"], widget["id_SA"], widget["id_IN"], widget["id_MF"]) == (
        "4006381333931",
        "4006381333931",
        "W-100",
        "B-9",
        "CX-1",
    )
    assert widget["description"] == "WIDGET BLUE, 10+ PACKEXTRA LONG NAME"
    assert widget["description_35"] == "BLUE"
    assert (widget["quantity_52"], widget["quantity_52_unit"]) == ("10", "PCE")
    assert (widget["measure_AAB"], widget["measure_AAB_unit"]) == ("1.25", "KGM")
    assert (widget["date_157"], widget["date_157_format"]) == ("20240601", "102")
    assert (widget["product_group_type"], widget["product_group"]) == ("2", "TOOLS")
    assert (widget["document_type"], widget["document_number"], widget["header_ref_ZZZ"]) == (
        "9",
        "CAT-2024",
        "CONTRACT 7",
    )
    assert (widget["party_SU_id"], widget["party_SU_name"], widget["party_BY_id"]) == (
        "5412345000013",
        "ACME SUPPLIES",
        "5498765000019",
    )
    assert (widget["currency"], widget["header_date_137"]) == ("EUR", "20240501")
    assert (widget["interchange_control"], widget["set_control"], widget["set_id"]) == (
        "PC1",
        "1",
        "PRICAT",
    )
    assert (widget["version"], widget["syntax"], widget["position"], widget["file_position"]) == (
        "D:96A:UN:EAN008",
        "UNOC:3",
        "9",
        "10",
    )
    assert (other["gtin"], other["item_number_type"], other["description_code"]) == (
        "5012345678900",
        "SRV",
        "ABC",
    )


def test_pricat_prices() -> None:
    net, info, other = parse_edifact(PRICAT).records("price")
    assert (net["price"], net["price_qualifier"], net["price_type"], net["price_basis"]) == (
        "12.5",
        "AAA",
        "CT",
        "1",
    )
    assert (net["price_unit"], net["currency"], net["date_157"], net["date_194"]) == (
        "PCE",
        "EUR",
        "20240601",
        "20240701",
    )
    assert (net["gtin"], net["id_SA"], net["line_number"]) == ("4006381333931", "W-100", "1")
    assert (info["price"], info["price_qualifier"], info["currency"]) == ("15", "AAE", "USD")
    assert "date_194" not in info
    assert (other["price"], other["currency"], other["gtin"]) == ("0.99", "EUR", "5012345678900")


def test_pricat_bad_number_is_a_warning_and_bgm_is_required() -> None:
    doc = parse_edifact(PRICAT.replace("PRI+AAA:0,99'", "PRI+AAA:0,9X'"))
    [err] = doc.all_errors
    assert (err.rule, err.severity, err.segment_id, err.element_index, err.component_index) == (
        "invalid_number",
        "warning",
        "PRI",
        1,
        2,
    )
    assert err.segment_position == 23
    no_bgm = PRICAT.replace("BGM+9+CAT-2024+9'\n", "").replace("UNT+25+1", "UNT+24+1")
    doc = parse_edifact(no_bgm)
    [err] = doc.all_errors
    assert (err.rule, err.segment_id) == ("missing_segment", "BGM")
    assert doc.records() == []


INVRPT = """UNA:+,? '
UNB+UNOC:3+5412345000013:14+5498765000019:14+240501:1200+IR1'
UNH+77+INVRPT:D:96A:UN:EAN004'
BGM+35+INV-9+9'
DTM+137:20240501:102'
DTM+366:20240430:102'
NAD+GY+5410738100050::9'
LIN+1++4006381333931:EN'
PIA+5+W-100:SA'
IMD+F++:::WIDGET'
QTY+145:300,5:PCE'
LOC+18+DC1:::CENTRAL'
DTM+366:20240429:102'
QTY+145:150'
INV+2'
LOC+18+DC2'
LIN+2++5012345678900:EN'
QTY+145:7'
UNT+17+77'
UNZ+1+IR1'
"""


def test_invrpt_inventory() -> None:
    doc = parse_edifact(INVRPT)
    assert doc.all_errors == []
    dc1, dc2, default = doc.records("inventory")
    assert (dc1["quantity"], dc1["quantity_qualifier"], dc1["uom"], dc1["location"]) == (
        "300.5",
        "145",
        "PCE",
        "DC1",
    )
    assert (dc1["location_qualifier"], dc1["location_name"], dc1["as_of"]) == (
        "18",
        "CENTRAL",
        "20240429",
    )
    assert (dc1["gtin"], dc1["id_SA"], dc1["description"], dc1["document_number"]) == (
        "4006381333931",
        "W-100",
        "WIDGET",
        "INV-9",
    )
    assert (dc1["set_control"], dc1["position"], dc1["version"]) == ("77", "9", "D:96A:UN:EAN004")
    assert (dc2["quantity"], dc2["location"], dc2["as_of"], dc2["movement_direction"]) == (
        "150",
        "DC2",
        "20240430",
        "2",
    )
    assert "uom" not in dc2
    # DC2 names no more than its id: nothing of the heading's party beside it.
    assert (dc2["location_qualifier"], dc2.get("location_name")) == ("18", None)
    # No LOC: the reporting party of the heading is the location.
    assert (default["gtin"], default["quantity"], default["location"]) == (
        "5012345678900",
        "7",
        "5410738100050",
    )
    assert (default["location_qualifier"], default["as_of"]) == ("GY", "20240430")


def test_invrpt_location_fields_come_from_one_place() -> None:
    # Review: LOC+18+DC2 after a quantity took the warehouse name of the heading's NAD+WH.
    text = INVRPT.replace("NAD+GY+5410738100050::9'", "NAD+WH+5410738100050::9++MAIN STORE'")
    dc1, dc2, default = parse_edifact(text).records("inventory")
    assert (dc2["location"], dc2.get("location_name")) == ("DC2", None)
    assert (dc1["location"], dc1["location_name"]) == ("DC1", "CENTRAL")
    assert (default["location"], default["location_name"]) == ("5410738100050", "MAIN STORE")
