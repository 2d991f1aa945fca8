"""`mastersync match explain`, `dedupe`, `review`, `merge`, `unmerge` and `remerge` end to end."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from mastersync.bootstrap import open_store
from mastersync.cli import app
from mastersync.pipeline.ingest import Ingestor
from tests.pipeline.matching.support import (
    ACME,
    backlog,
    customer,
    feed,
    landscape,
    landscape_doc,
)

runner = CliRunner()


def cli(estate: Path, *args: str) -> tuple[int, str]:
    result = runner.invoke(
        app,
        ["-l", str(estate / "landscape.yaml"), "--store", f"sqlite:///{estate}/hub.db", *args],
        env={"COLUMNS": "200"},
    )
    return result.exit_code, result.output


def estate(tmp_path: Path) -> Path:
    (tmp_path / "landscape.yaml").write_text(yaml.safe_dump(landscape_doc()), encoding="utf-8")
    return tmp_path


def test_dedupe_then_review_then_merge_and_unmerge(tmp_path: Path) -> None:
    where = estate(tmp_path)
    store = open_store(f"sqlite:///{where}/hub.db")
    records, _ = backlog(40, 5)
    Ingestor(store, landscape(matching=False)).ingest("erp", "customer", feed(*records))
    other = {**ACME, "email": "sales@acme-berlin.de", "phone": "+49 30 7654321"}
    ingestor = Ingestor(store, landscape())
    (a,) = ingestor.ingest("erp", "customer", feed(customer("A1", "Acme GmbH", **ACME))).master_ids
    (b,) = ingestor.ingest("crm", "customer", feed(customer("C1", "Acme", **other))).master_ids
    store.close()

    code, out = cli(where, "match", "explain", a, "crm:C1")
    assert code == 0, out
    assert re.search(rf"{a} vs crm:C1: REVIEW\s+probability 0\.9", out)
    assert re.search(r"email\s+different\s+-4\.00\s+info@acme\.de\s+sales@acme-berlin\.de", out)
    assert "model: starting" in out

    code, out = cli(where, "review", "list")
    assert code == 0, out
    (entry,) = re.findall(r"^│ (\d+) +│ customer", out, re.MULTILINE)

    code, out = cli(where, "review", "show", entry, "--json")
    assert code == 0, out
    shown = json.loads(out)
    assert shown["status"] == "open"
    assert {c["name"] for c in shown["explanation"]["comparisons"]} >= {"name", "email"}

    code, out = cli(where, "dedupe", "--domain", "customer")
    assert code == 0, out
    assert "47 records" in out
    assert "weights: starting; not refitted: only" in out
    assert "5 clusters" in out
    assert "run again with --merge" in out

    code, out = cli(where, "review", "reject", entry, "--note", "branches")
    assert code == 0, out
    code, out = cli(where, "review", "accept", entry)
    assert code == 1
    assert f"review entry {entry} is rejected already" in out

    code, out = cli(where, "dedupe", "--domain", "customer", "--merge")
    assert code == 0, out
    assert "5 merges done" in out

    code, out = cli(where, "merge", a, b, "--reason", "same company after all")
    assert code == 0, out
    merge_id = re.search(r"\(merge (\d+)\)", out)
    assert merge_id is not None
    code, out = cli(where, "unmerge", merge_id.group(1))
    assert code == 0, out
    assert f"unmerged {b} from {a}" in out
    code, out = cli(where, "unmerge", merge_id.group(1))
    assert code == 1
    assert "was undone already" in out


def test_dedupe_of_a_domain_without_matching(tmp_path: Path) -> None:
    where = estate(tmp_path)
    code, out = cli(where, "dedupe", "--domain", "price")
    assert code == 1
    assert "domain 'price' does no matching" in out


VAT = "DE136695976"


def test_remerge_applies_a_changed_ownership_to_stored_records(tmp_path: Path) -> None:
    """The landscape gives the CRM the name; `remerge` makes it so for records stored
    before (dry run first), and a second run has nothing left to do."""
    where = estate(tmp_path)
    store = open_store(f"sqlite:///{where}/hub.db")
    ingestor = Ingestor(store, landscape(matching=False))
    ingestor.ingest("erp", "customer", feed(customer("A1", "ACME GMBH", vat=VAT, **ACME)))
    ingestor.ingest("crm", "customer", feed(customer("C1", "Acme GmbH", vat=VAT, **ACME)))
    store.close()
    doc = landscape_doc(matching=False)
    doc["domains"]["customer"]["ownership"]["name"] = ["crm", "erp"]
    (where / "landscape.yaml").write_text(yaml.safe_dump(doc), encoding="utf-8")
    code, out = cli(where, "remerge", "customer", "--dry-run")
    assert code == 0, out
    assert "dry run, nothing written: of 1 customer record(s), 1 would get a new version" in out
    assert re.search(r"name\s+│\s+1", out)
    code, out = cli(where, "get", "customer", "erp:A1")
    assert "ACME GMBH" in out
    code, out = cli(where, "remerge", "customer")
    assert code == 0 and "1 customer record(s) examined; 1 got a new version" in out, out
    code, out = cli(where, "get", "customer", "erp:A1")
    assert "Acme GmbH" in out and "ACME GMBH" not in out
    code, out = cli(where, "remerge", "customer")
    assert code == 0 and "0 got a new version" in out
    code, out = cli(where, "remerge", "custmer")
    assert code == 1 and "no domain 'custmer' in the landscape" in out


def test_remerge_stopped_by_ctrl_c_says_how_far_it_got(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os
    import signal

    from mastersync.cli import matching
    from mastersync.pipeline import remerge

    where = estate(tmp_path)
    store = open_store(f"sqlite:///{where}/hub.db")
    ingestor = Ingestor(store, landscape(matching=False))
    for i in range(3):
        ingestor.ingest("erp", "customer", feed(customer(f"A{i}", f"Acme {i}", **ACME)))
    store.close()

    def by_one(*args: Any, progress: Any, **kwargs: Any) -> Any:
        def then_ctrl_c(n: int) -> None:
            os.kill(os.getpid(), signal.SIGINT)
            progress(n)

        return remerge.remerge(*args, progress=then_ctrl_c, page=1, **kwargs)

    monkeypatch.setattr(matching, "run_remerge", by_one)
    code, out = cli(where, "remerge", "customer")
    assert code == 130, out
    assert "stopped: 1 of 3 customer record(s) recomputed and committed; run it again" in out


def test_the_remerge_summary_names_keys_moved_and_removed_and_fields_kept(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Its warning marks printed as '[yellow]![/]': the console renders no markup unasked."""
    from mastersync.cli.matching import _remerge_summary
    from mastersync.pipeline.remerge import RemergeReport

    report = RemergeReport(
        "customer",
        examined=3,
        changed=1,
        keys_removed=1,
        keys_moved=["customer_number X1: cus_a -> cus_b (its golden value)"],
        key_conflicts=["customer_number [7] is held by cus_c, cus_d"],
        unwritable=["cus_e: credit_limit"],
        refused=1,
        refusals=["cus_f: name [required] missing"],
    )
    _remerge_summary(report, dry_run=False)
    out = capsys.readouterr().out
    assert "[yellow]" not in out and "[/]" not in out
    assert "1 natural key(s) no record holds any more taken out of the index" in out
    assert "! customer_number X1: cus_a -> cus_b" in out
    assert "! customer_number [7] is held by cus_c, cus_d" in out
    assert "guarded field(s) kept as they are" in out and "! cus_e: credit_limit" in out
    assert "cus_f: name [required] missing" in out


def test_dedupe_json_prints_the_json_document_alone(tmp_path: Path) -> None:
    """With --json no progress bar is drawn: stdout is the document (for `| jq`)."""
    where = estate(tmp_path)
    store = open_store(f"sqlite:///{where}/hub.db")
    records, _ = backlog(40, 5)
    Ingestor(store, landscape(matching=False)).ingest("erp", "customer", feed(*records))
    store.close()
    code, out = cli(where, "dedupe", "--domain", "customer", "--json")
    assert code == 0, out
    report = json.loads(out)
    assert len(report["clusters"]) == 5
