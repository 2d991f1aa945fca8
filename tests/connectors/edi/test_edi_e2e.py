"""With a landscape and no Python code: a supplier's 832 catalog read from its EDI folder
(one bad set rejected, the good one kept, a 997 saying which), a 3PL's stock drop, and an
846 inventory advice sent back to the supplier. Then the same through EDIFACT."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from typer.testing import CliRunner

from mastersync.cli import app
from mastersync.connectors.edi import parse_edifact, parse_x12, write_pricat
from mastersync.connectors.edi.edifact.envelope import EdifactEnvelope

runner = CliRunner()

LANDSCAPE = """
name: edi-partner
systems:
  acme:
    kind: edi
    connector:
      type: edi
      folder: edi/acme
      settle: 0
      domains: [item, price]
      exports:
        stock:
          folder: edi/acme/out
          message: "846"
          sender_id: DISTRIB
          receiver_id: ACME
    inbound:
      item:
        key: gtin
        fields:
          gtin: gtin
          name: description
          supplier_item_number: {from: id_VN, optional: true}
      price:
        key: {concat: [gtin, price_qualifier], sep: "@"}
        fields:
          item: {from: gtin, ref: {domain: item}}
          price_list: price_qualifier
          currency: currency
          uom: {from: price_uom, optional: true}
          amount: {from: price, number: true}
    outbound:
      stock:
        domain: inventory
        mapping:
          fields:
            gtin: _keys.item.key
            quantity: available
            as_of: as_of
  tpl:
    kind: wms
    connector: {type: files, folder: drop, settle: 0, watch: {inventory: "stock*.csv"}}
    inbound:
      inventory:
        key: gtin
        fields:
          item: {from: gtin, ref: {domain: item, by: gtin}}
          available: {from: qty, number: true}
          as_of: {from: counted, date: true}
"""

ISA = "ISA*00*{a:10}*00*{a:10}*ZZ*{s:15}*ZZ*{r:15}*261127*1200*U*00401*{n:09d}*0*P*>~\n"

CATALOG_SETS = """GS*SC*ACME*DISTRIB*20261127*1200*101*X*004010~
ST*832*0001~
BCT*PC*CAT-2026~
CUR*SE*EUR~
LIN*1*EN*4006381333931*VN*ACME-100~
PID*F****Ballpoint pen blue~
CTP**CAT*1.25*1*EA~
LIN*2*EN*4012345000009*VN*ACME-200~
PID*F****Ink cartridge~
CTP**CAT*3.10*1*EA~
CTT*2~
SE*11*0001~
ST*832*0002~
BCT*PC*CAT-2026B~
LIN*1*EN*8712345678906~
PID*F****Stapler~
CTT*1~
SE*9*0002~
GE*2*101~
IEA*1*000000101~
"""


def cli(*args: str) -> str:
    result = runner.invoke(app, list(args), env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    return result.output


def _setup(tmp_path: Path, landscape: str = LANDSCAPE) -> Path:
    path = tmp_path / "landscape.yaml"
    path.write_text(landscape)
    (tmp_path / "edi" / "acme").mkdir(parents=True)
    (tmp_path / "drop").mkdir()
    return path


def test_832_catalog_in_846_stock_out(tmp_path: Path) -> None:
    landscape = _setup(tmp_path)
    isa = ISA.format(a="", s="ACME", r="DISTRIB", n=101)
    (tmp_path / "edi" / "acme" / "catalog.x12").write_text("\ufeff" + isa + CATALOG_SETS)
    cli("-l", str(landscape), "run", "--until-idle", "--timeout", "60")

    # The good set's items and prices are golden records; the bad set brought nothing.
    item = json.loads(cli("-l", str(landscape), "get", "item", "acme:4006381333931", "--json"))
    assert item["attributes"]["name"] == "Ballpoint pen blue"
    assert item["attributes"]["supplier_item_number"] == "ACME-100"
    price = json.loads(
        cli("-l", str(landscape), "get", "price", "acme:4012345000009@CAT", "--json")
    )
    ink = json.loads(cli("-l", str(landscape), "get", "item", "acme:4012345000009", "--json"))
    assert price["attributes"] == {
        "item": ink["master_id"],
        "price_list": "CAT",
        "currency": "EUR",
        "uom": "EA",
        "amount": "3.1",
    }
    missing = runner.invoke(app, ["-l", str(landscape), "get", "item", "acme:8712345678906"])
    assert missing.exit_code != 0

    # The 997 accepts set 0001 and rejects set 0002 for its segment count.
    [ack_file] = (tmp_path / "edi" / "acme" / "acks").glob("997-*.x12")
    ack = ack_file.read_text()
    assert "AK2*832*0001~" in ack and "AK5*A~" in ack
    assert "AK2*832*0002~" in ack and "AK5*R*4~" in ack
    assert "AK9*P*2*2*1~" in ack
    assert parse_x12(ack).all_errors == []
    # The file is archived, with a reject line naming the set, the segment and the rule.
    archived = next((tmp_path / "edi" / "acme" / "archive").rglob("catalog.x12"))
    rejects = list(
        csv.reader(archived.with_name("catalog.x12.rejects.csv").read_text().splitlines())
    )
    assert rejects[0] == ["where", "field", "rule", "message"]
    assert any("832 0002" in r[0] and r[2].startswith("edi.") for r in rejects[1:])

    # Later the 3PL counts the stock; an 846 goes back to the supplier.
    (tmp_path / "drop" / "stock_1.csv").write_text(
        "gtin,qty,counted\n4006381333931,120,2026-11-26\n4012345000009,7,2026-11-26\n"
    )
    out = cli("-l", str(landscape), "run", "--until-idle", "--timeout", "60")
    assert "delivered 2" in out
    assert not list((tmp_path / "edi" / "acme").rglob(".*.acked"))

    # The 846 sent back names the supplier's own item ids and the counted quantities.
    [advice] = (tmp_path / "edi" / "acme" / "out").glob("stock-*.x12")
    document = parse_x12(advice.read_text())
    assert document.all_errors == []
    assert document.interchanges[0].receiver_id == "ACME"
    rows = {r["gtin"]: r for r in document.records("inventory")}
    assert {g: r["quantity"] for g, r in rows.items()} == {
        "4006381333931": "120",
        "4012345000009": "7",
    }
    assert rows["4006381333931"]["as_of"].startswith("20261126")

    # The same file again is set aside: ingested no second time, and not acknowledged again
    # (a second 997 would take a control number for content the hub did not read).
    (tmp_path / "edi" / "acme" / "catalog-again.x12").write_text("\ufeff" + isa + CATALOG_SETS)
    out = cli("-l", str(landscape), "run", "--until-idle", "--timeout", "60")
    assert "ingested 0, delivered 0" in out
    assert (tmp_path / "edi" / "acme" / "duplicates" / "catalog-again.x12").exists()
    assert list((tmp_path / "edi" / "acme" / "acks").glob("997-*.x12")) == [ack_file]


def test_pricat_in_with_contrl(tmp_path: Path) -> None:
    landscape = _setup(tmp_path)
    items = [
        {
            "gtin": "5901234123457",
            "description": "Etikett 'Größe' A+B",
            "price": "9.90",
            "currency": "EUR",
            "vendor_item": "P-1",
        },
        {
            "gtin": "4006381333931",
            "description": "Kugelschreiber",
            "price": "1.10",
            "currency": "EUR",
            "vendor_item": "P-2",
        },
    ]
    envelope = EdifactEnvelope(sender_id="ACME", recipient_id="DISTRIB", control_reference="77")
    (tmp_path / "edi" / "acme" / "pricat.edi").write_text(write_pricat(items, envelope))
    # A file in neither standard is rejected whole, with a reason.
    (tmp_path / "edi" / "acme" / "notes.txt").write_text("hello partner\n")

    cli("-l", str(landscape), "run", "--until-idle", "--timeout", "60")

    item = json.loads(cli("-l", str(landscape), "get", "item", "acme:5901234123457", "--json"))
    assert item["attributes"]["name"] == "Etikett 'Größe' A+B"
    [contrl] = (tmp_path / "edi" / "acme" / "acks").glob("CONTRL-*.edi")
    text = contrl.read_text()
    assert "UCI+77+DISTRIB" in text or "UCI+77" in text
    assert parse_edifact(text).all_errors == []
    archived = next((tmp_path / "edi" / "acme" / "archive").rglob("notes.txt"))
    rejects = archived.with_name("notes.txt.rejects.csv").read_text()
    assert "edi.format" in rejects
