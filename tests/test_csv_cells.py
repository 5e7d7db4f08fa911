"""The one CSV writer of every export: formula-like text cells are made inert (OWASP)."""

from __future__ import annotations

import csv
import io

import pytest

from ledger.csv_cells import csv_writer, safe_cell


@pytest.mark.parametrize("cell", ["=1+1", "+1", "-1", "@A1", "\tx", "\rx", "=", "-"])
def test_formula_like_text_gets_a_leading_quote(cell):
    assert safe_cell(cell) == "'" + cell


@pytest.mark.parametrize("cell", ["r1", "a=b", " =1", "", "'=1", 5, -5, 0, None])
def test_other_cells_are_unchanged(cell):
    assert safe_cell(cell) == cell


def test_the_writer_neutralises_every_text_cell_and_round_trips():
    buffer = io.StringIO()
    writer = csv_writer(buffer)
    writer.writerow(["=cmd|' /C calc'!A0", "\r@x", -3, "ok"])
    assert next(csv.reader(io.StringIO(buffer.getvalue(), newline=""))) == [
        "'=cmd|' /C calc'!A0", "'\r@x", "-3", "ok"]
