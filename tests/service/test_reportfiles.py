"""Operators' report files read into cells: CSV in their delimiters and encodings, XLSX through
openpyxl (service/reportfiles.py)."""

import io
from datetime import date, datetime

import openpyxl
import pytest

from clickback.service.reportfiles import FileError, read_report


def test_a_semicolon_csv_with_a_bom_windows_line_ends_and_a_decimal_comma() -> None:
    text = '\ufeffPlayer ID;BTAG;Deposits\r\nP-1;a1;1.234,50\r\nP-2;a2;"7,25"\r\n'
    table = read_report(text.encode("utf-8"))
    assert (table.kind, table.encoding, table.delimiter, table.reading.decimal) == (
        "csv",
        "utf-8-sig",
        ";",
        ",",
    )
    assert table.header == ["Player ID", "BTAG", "Deposits"]
    assert table.lines == [(2, ["P-1", "a1", "1.234,50"]), (3, ["P-2", "a2", "7,25"])]


def test_a_windows_1252_tab_separated_file() -> None:
    data = "Customer ID\tMarketing Tag\tNGR\nJosé\tb\t12.50\n".encode("cp1252")
    table = read_report(data)
    assert (table.encoding, table.delimiter, table.reading.decimal) == ("cp1252", "\t", ".")
    assert table.lines == [(2, ["José", "b", "12.50"])]


def test_an_xlsx_sheet_with_numbers_and_dates_as_values() -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["Player ID", "Stag", "First Deposit At", "Deposits Sum", "NGR"])
    sheet.append(["P-1", "s-1", datetime(2026, 11, 3), 120.5, -30])
    sheet.append(["P-2", None, date(2026, 11, 4), 0.1 + 0.2, 7])
    buffer = io.BytesIO()
    book.save(buffer)
    table = read_report(buffer.getvalue(), "report.xlsx")
    assert (table.kind, table.reading.decimal) == ("xlsx", ".")
    assert table.lines == [
        (2, ["P-1", "s-1", "2026-11-03", "120.5", "-30"]),
        (3, ["P-2", "", "2026-11-04", "0.3", "7"]),  # a sheet keeps 15 digits
    ]


@pytest.mark.parametrize(
    ("data", "name", "message"),
    [
        (b"", "", "no header"),
        (b"PK\x03\x04 not really a zip", "", "not an XLSX file"),
        (b"a,b\x00,c\n", "", "NUL"),
        (b"\n\n", "", "no header"),
    ],
)
def test_what_is_not_a_report_is_refused_with_a_reason(data: bytes, name: str, message: str) -> None:
    with pytest.raises(FileError, match=message):
        read_report(data, name)
