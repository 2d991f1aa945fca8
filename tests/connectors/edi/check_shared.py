"""Read every shared EDI sample and print what was read (not a test; run it by hand).

    .venv/bin/python tests/connectors/edi/check_shared.py [folder] [--markdown]

The folder defaults to ../shared/data/edi next to the checkout. The samples belong to
others and are not part of the project, so when the folder is missing this says so and
exits cleanly.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

from mastersync.connectors.edi import (
    EdiError,
    EdifactDocument,
    X12Document,
    parse_edifact_bytes,
    parse_x12_bytes,
)

DEFAULT = Path(__file__).resolve().parents[4] / "shared" / "data" / "edi"


def _read(path: Path) -> X12Document | EdifactDocument:
    data = path.read_bytes()
    head = data[:20].lstrip(b"\xef\xbb\xbf \t\r\n")
    return parse_x12_bytes(data) if head.startswith(b"ISA") else parse_edifact_bytes(data)


def _error(e: EdiError) -> str:
    where = f"{e.segment_id}{e.element_index:02d}" if e.element_index else e.segment_id
    pos = f" set pos {e.segment_position}" if e.segment_position else ""
    return f"{e.severity} {e.rule} at {where}{pos} (file seg {e.file_position}): {e.message}"


def summarise(path: Path) -> dict[str, str]:
    """One row: what the readers made of a file."""
    doc = _read(path)
    if isinstance(doc, X12Document):
        kind = "X12 " + ",".join(sorted({ic.version for ic in doc.interchanges}))
        groups = sum(len(ic.groups) for ic in doc.interchanges)
        units = [
            f"{ts.id}/{ts.control_number} {len(ts.segments)} seg {ts.status}" for ts in doc.sets
        ]
        delims = [
            f"el {d.element!r} comp {d.component!r} rep {d.repetition!r} term {d.segment!r}"
            for d in (ic.delimiters for ic in doc.interchanges)
        ]
    else:
        kind = "EDIFACT " + ",".join(
            sorted({f"{ic.syntax_id}:{ic.syntax_version}" for ic in doc.interchanges})
        )
        groups = sum(len(ic.groups) for ic in doc.interchanges)
        units = [f"{m.type}/{m.reference} {len(m.segments)} seg {m.status}" for m in doc.messages]
        delims = [
            f"UNA {'yes' if ic.una else 'no'} {ic.delimiters.una[3:]!r}" for ic in doc.interchanges
        ]
    accepted = Counter(r["record_type"] for r in doc.records())
    everything = Counter(r["record_type"] for r in doc.records(include_rejected=True))
    records = ", ".join(
        f"{n} {t}"
        + (f" ({everything[t] - accepted[t]} more in rejected sets)" if everything[t] != n else "")
        for t, n in sorted(everything.items(), key=lambda kv: kv[0])
        for n in [accepted[t]]
    )
    return {
        "file": f"{path.parent.name}/{path.name}",
        "format": kind,
        "delimiters": "; ".join(delims),
        "interchanges": str(len(doc.interchanges)),
        "groups": str(groups),
        "sets": "; ".join(units),
        "records": records or "-",
        "errors": "; ".join(_error(e) for e in doc.all_errors) or "none",
    }


def main(argv: list[str]) -> int:
    """Print one block (or markdown table row) per sample file."""
    markdown = "--markdown" in argv
    args = [a for a in argv if a != "--markdown"]
    folder = Path(args[0]) if args else DEFAULT
    if not folder.is_dir():
        print(f"{folder} is not there; nothing to check (the samples are not part of the project).")
        return 0
    rows = [summarise(p) for p in sorted(folder.rglob("*")) if p.is_file()]
    if markdown:
        keys = list(rows[0]) if rows else []
        print("| " + " | ".join(keys) + " |")
        print("|" + "---|" * len(keys))
        for row in rows:
            print("| " + " | ".join(v.replace("|", "\\|") for v in row.values()) + " |")
        return 0
    for row in rows:
        print(row["file"])
        for key, value in row.items():
            if key != "file":
                print(f"  {key:13} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
