"""X12 832/846/888 sets become flat string records with stable, documented field names."""

from __future__ import annotations

from mastersync.connectors.edi import parse_x12
from tests.connectors.edi.builders import CATALOG_SET, interchange

GS = "GS*SC*SENDER*RECEIVER*20240501*1200*7*X*004010"
END = ["GE*1*7", "IEA*1*000000001"]


def test_832_items_and_prices() -> None:
    doc = parse_x12(interchange([GS, *CATALOG_SET, *END]))
    assert doc.all_errors == []
    widget, pen = doc.records("item")
    assert widget["record_type"] == "item"
    assert (widget["id_UP"], widget["gtin"], widget["id_VN"], widget["id_BP"]) == (
        "012345678905",
        "012345678905",
        "W-100",
        "B-9",
    )
    assert widget["description"] == "WIDGET, BLUE"
    assert widget["description_TRN"] == "WIDGETPRO"
    assert (widget["pack"], widget["pack_size"], widget["pack_size_uom"]) == ("12", "1", "EA")
    assert (widget["gross_weight"], widget["weight_uom"]) == ("4.5", "LB")
    assert (widget["length"], widget["width"], widget["height"], widget["dimension_uom"]) == (
        "10",
        "8",
        "6",
        "IN",
    )
    assert widget["inner_pack"] == "3"
    assert (widget["measure_WT"], widget["measure_WT_uom"]) == ("0.4", "LB")
    assert (widget["catalog_purpose"], widget["catalog_number"], widget["catalog_version"]) == (
        "PC",
        "CAT-7",
        "2",
    )
    assert widget["currency"] == "USD"
    assert widget["header_date_007"] == "20240501"
    assert (widget["party_MF_name"], widget["party_MF_id"]) == ("ACME TOOLS", "MF01")
    assert (widget["interchange_control"], widget["group_control"], widget["set_control"]) == (
        "000000001",
        "7",
        "0001",
    )
    assert (widget["set_id"], widget["position"], widget["file_position"]) == ("832", "6", "8")
    assert (widget["sender_id"], widget["receiver_id"], widget["version"]) == (
        "SENDER",
        "RECEIVER",
        "004010",
    )
    assert (pen["gtin"], pen["id_EN"], pen["description"]) == (
        "4006381333931",
        "4006381333931",
        "PEN",
    )

    cat, res, pen_price = doc.records("price")
    assert (cat["price"], cat["price_qualifier"], cat["price_quantity"], cat["price_uom"]) == (
        "12.50",
        "CAT",
        "1",
        "EA",
    )
    assert cat["date_007"] == "20240601"  # the price's own DTM
    assert (cat["gtin"], cat["id_VN"], cat["currency"], cat["position"]) == (
        "012345678905",
        "W-100",
        "USD",
        "11",
    )
    assert (res["price"], res["price_qualifier"]) == ("19.99", "RES")
    assert "date_007" not in res  # the widget's prices carry no item-level date
    assert (pen_price["price"], pen_price["price_quantity"], pen_price["gtin"]) == (
        "1.25",
        "10",
        "4006381333931",
    )
    assert all(v != "" for r in doc.records() for v in r.values())


def test_extraction_can_be_skipped() -> None:
    doc = parse_x12(interchange([GS, *CATALOG_SET, *END]), extract=False)
    assert doc.records() == []
    assert len(next(doc.sets).segments) == 18


def test_832_without_bct_is_rejected() -> None:
    body = [s for s in CATALOG_SET if not s.startswith("BCT")]
    body[-1] = "SE*17*0001"
    doc = parse_x12(interchange([GS, *body, *END]))
    [err] = doc.all_errors
    assert (err.rule, err.segment_id, err.set_control) == ("missing_segment", "BCT", "0001")
    assert doc.records() == []
    assert len(doc.records(include_rejected=True)) == 5


def test_832_bad_price_is_a_warning() -> None:
    body = [s.replace("CTP**RES*19.99", "CTP**RES*19,99") for s in CATALOG_SET]
    doc = parse_x12(interchange([GS, *body, *END]))
    [err] = doc.all_errors
    assert (err.rule, err.severity, err.segment_id, err.element_index, err.value) == (
        "invalid_number",
        "warning",
        "CTP",
        3,
        "19,99",
    )
    ts = next(doc.sets)
    assert ts.status == "E"
    assert len(doc.records("price")) == 3


INVENTORY_SET = [
    "GS*IB*SENDER*RECEIVER*20240501*1200*8*X*004010",
    "ST*846*0101",
    "BIA*00*DD*INV-1*20240501*0800",
    "CUR*SE*EUR",
    "N1*SE*ACME*92*S1",
    "N1*WH*CENTRAL DC*92*DC1",
    "LIN*1*UK*10012345678902*VN*W-100",
    "PID*F****WIDGET",
    "QTY*33*120*EA",
    "DTM*007*20240430",
    "QTY*QH*5",
    "UIT*CA",
    "LIN*2*VN*P-200",
    "N1*WH*STORE 9*92*ST9",
    "QTY*33*7*EA",
    "LIN*3*VN*Z-300",
    "QTY*33*30*EA",
    "SDQ*EA*92*DC1*10*DC2*20",
    "LDT*AE*5*DA",
    "SE*19*0101",
    "GE*1*8",
    "IEA*1*000000001",
]


def test_846_inventory_with_locations() -> None:
    doc = parse_x12(interchange(INVENTORY_SET))
    assert doc.all_errors == []
    recs = doc.records("inventory")
    got = [
        (
            r["line_number"],
            r["quantity_qualifier"],
            r["quantity"],
            r.get("uom"),
            r["location"],
            r["as_of"],
        )
        for r in recs
    ]
    assert got == [
        ("1", "33", "120", "EA", "DC1", "20240430"),  # QTY-level DTM
        ("1", "QH", "5", "CA", "DC1", "20240501"),  # uom from UIT; BIA04 date
        ("2", "33", "7", "EA", "ST9", "20240501"),  # LIN-level N1 location
        ("3", "33", "10", "EA", "DC1", "20240501"),  # SDQ breakdown replaces the total
        ("3", "33", "20", "EA", "DC2", "20240501"),
    ]
    first = recs[0]
    assert (first["gtin"], first["id_UK"], first["id_VN"], first["description"]) == (
        "10012345678902",
        "10012345678902",
        "W-100",
        "WIDGET",
    )
    assert (first["location_name"], first["location_qualifier"], first["currency"]) == (
        "CENTRAL DC",
        "WH",
        "EUR",
    )
    assert (first["report_number"], first["report_type"], first["report_time"]) == (
        "INV-1",
        "DD",
        "0800",
    )
    assert (first["position"], first["set_control"], first["group_control"]) == ("8", "0101", "8")
    assert recs[2]["location_name"] == "STORE 9"
    assert (recs[3]["lead_time"], recs[3]["lead_time_unit"]) == ("5", "DA")
    # An SDQ location is its own: no name or qualifier from the header's N1*WH (DC1's
    # name "CENTRAL DC" beside DC2's id, before).
    for rec in recs[3:]:
        assert "location_name" not in rec and "location_qualifier" not in rec
        assert rec["location_id_qualifier"] == "92"


def test_846_qty_without_qualifier_is_noted() -> None:
    body = [s.replace("QTY*33*7*EA", "QTY**7*EA") for s in INVENTORY_SET]
    doc = parse_x12(interchange(body))
    [err] = doc.all_errors
    assert (err.rule, err.segment_id, err.segment_position, err.severity) == (
        "missing_element",
        "QTY",
        14,
        "warning",
    )


MAINTENANCE_SET = [
    "GS*QG*SENDER*RECEIVER*20240501*1200*9*X*005010",
    "ST*888*0001",
    "BGN*00*IM-1*20240501",
    "N1*BY*BIG STORE*92*B1",
    "G62*04*20240501",
    "G53*003",
    "G62*07*20240601",
    "LX*1",
    "G39*012345678905*VN*W-100**4.5*G*L*10*IN*8*IN*6*IN",
    "G69*WIDGET CASE",
    "QTY*39*24",
    "LIN*1*UK*10012345678902",
    "N1*MF*ACME",
    "G55*UP*012345678912",
    "G69*WIDGET EACH",
    "G39*098765432109",
    "PID*F****GADGET",
    "G53*002",
    "G39*011111111116",
    "SE*19*0001",
    "GE*1*9",
    "IEA*1*000000001",
]


def test_888_items_with_maintenance_type() -> None:
    doc = parse_x12(interchange(MAINTENANCE_SET, repetition="^", version="00501"))
    assert doc.all_errors == []
    case, gadget, removed = doc.records("item")
    assert (case["maintenance_type"], case["maintenance_date_07"], case["line_number"]) == (
        "003",
        "20240601",
        "1",
    )
    assert (case["upc_case_code"], case["gtin"], case["id_VN"], case["id_UK"]) == (
        "012345678905",
        "012345678905",
        "W-100",
        "10012345678902",
    )
    assert (case["weight"], case["weight_qualifier"], case["weight_uom"]) == ("4.5", "G", "L")
    assert (case["height"], case["height_uom"], case["width"], case["length"]) == (
        "10",
        "IN",
        "8",
        "6",
    )
    assert (case["description"], case["quantity_39"]) == ("WIDGET CASE", "24")
    assert (case["consumer_id_UP"], case["consumer_description"]) == ("012345678912", "WIDGET EACH")
    assert (case["party_MF_name"], case["party_BY_name"], case["reference_number"]) == (
        "ACME",
        "BIG STORE",
        "IM-1",
    )
    assert case["header_date_04"] == "20240501"
    assert (gadget["upc_case_code"], gadget["description"], gadget["maintenance_type"]) == (
        "098765432109",
        "GADGET",
        "003",
    )
    assert (removed["maintenance_type"], removed["gtin"]) == ("002", "011111111116")
    assert "maintenance_date_07" not in removed


def test_850_keeps_segments_without_records() -> None:
    body = [
        "GS*PO*S*R*20240501*1200*1*X*004010",
        "ST*850*0001",
        "BEG*00*NE*PO1**20240501",
        "PO1*1*5*EA*2.50**UP*012345678905",
        "CTT*1",
        "SE*5*0001",
        "GE*1*1",
        "IEA*1*000000001",
    ]
    doc = parse_x12(interchange(body))
    ts = next(doc.sets)
    assert ts.records == []
    assert [s.id for s in ts.segments] == ["ST", "BEG", "PO1", "CTT", "SE"]
    assert ts.segments[2].get(7) == "012345678905"
