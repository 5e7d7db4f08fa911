"""A statement as CSV, one row per flattr given, pledge waiting and share received: what
`flattr-hub statement --csv` prints and the web hub's `/statements/<month>.csv` sends. The
`estimate` column holds, for a month not settled yet, each pending flattr's estimated share.
Cells that a spreadsheet would run as formulas are made inert (`ledger.csv_cells`)."""

from __future__ import annotations

import io
from typing import Any, TextIO

from ledger.csv_cells import csv_writer

HEADER = ("section", "flattr_id", "month", "occurred_at", "platform", "content_id", "status",
          "counterpart", "share", "fee", "net", "estimate")


def write_statement_csv(report: dict[str, Any], stream: TextIO) -> None:
    """Write `report` (from `ledger.statement.statement`) to `stream` as CSV."""
    out = csv_writer(stream)
    out.writerow(HEADER)
    for g in report["given"]:
        out.writerow(["given", g["flattr_id"], g["month"], g["occurred_at"], g["platform"],
                      g["content_id"], g["status"], "", g["share"], g["fee"], g["net"],
                      g.get("estimate", "")])
    for p in report["pledges_waiting"]:
        out.writerow(["pledge", p["flattr_id"], p["month"], "", p["platform"], p["content_id"],
                      "waiting", p["owner"], 0, 0, 0, ""])
    for r in report["received"]:
        out.writerow(["received", r["flattr_id"], report["month"], "", r["platform"],
                      r["content_id"], "counted", r["giver"], r["share"], r["fee"], r["net"], ""])


def statement_csv(report: dict[str, Any]) -> str:
    """`report` as CSV text."""
    buffer = io.StringIO()
    write_statement_csv(report, buffer)
    return buffer.getvalue()
