"""Amounts as pages and forms write them: one formatting of minor units."""

from hub.web.amounts import money_filter, units


def test_minor_units_are_written_with_two_decimals():
    assert [units(n) for n in (0, 5, 100, 1234, -5, -1234)] == [
        "0.00", "0.05", "1.00", "12.34", "-0.05", "-12.34"]
    money = money_filter("EUR")
    assert (money(1234), money(None), money(-1)) == ("12.34 EUR", "0.00 EUR", "-0.01 EUR")
