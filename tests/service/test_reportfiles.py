"""Operators' report files read into cells: CSV in their delimiters and encodings, XLSX through
openpyxl (service/reportfiles.py)."""

import csv
import io
from datetime import date, datetime

import openpyxl
import pytest

from clickback.service.reportfiles import SNIFF_CHARS, FileError, read_report


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
        # A byte order mark, then bytes its encoding does not decode: a 500 until 2026-12-06.
        (b"\xef\xbb\xbfplayer_id,month,ngr\nP1,2026-11,\xff\n", "", "starts as UTF-8-SIG but is not"),
        (b"\xff\xfeP\x00,", "", "starts as UTF-16 but is not"),
    ],
)
def test_what_is_not_a_report_is_refused_with_a_reason(data: bytes, name: str, message: str) -> None:
    with pytest.raises(FileError, match=message):
        read_report(data, name)


def test_an_xlsx_sheet_declaring_a_huge_size_is_read_for_the_cells_it_has() -> None:
    # 16,384 columns declared, rows far apart: every row was read 16,384 cells wide, and the
    # empty rows between them kept (1 GB for 8,000 rows).
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["Player ID", "NGR"])
    sheet.cell(row=3000, column=1, value="P-1")
    sheet.cell(row=3000, column=2, value=5)
    sheet.cell(row=3000, column=16384, value=None)
    buffer = io.BytesIO()
    book.save(buffer)
    declared = buffer.getvalue()
    table = read_report(declared, "report.xlsx")
    assert table.header == ["Player ID", "NGR"] and table.lines == [(3000, ["P-1", "5"])]


def test_an_xlsx_header_wider_than_a_report_may_be_is_refused() -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append([f"c{n}" for n in range(201)])
    buffer = io.BytesIO()
    book.save(buffer)
    with pytest.raises(FileError, match="at most 200 columns"):
        read_report(buffer.getvalue(), "report.xlsx")


def test_the_delimiter_is_sniffed_from_the_files_first_kilobytes(monkeypatch: pytest.MonkeyPatch) -> None:
    # csv.Sniffer's patterns are quadratic on some texts: 40 KB of ',"' held the worker 12 s.
    seen: list[int] = []
    sniff = csv.Sniffer.sniff

    def measured(self: csv.Sniffer, sample: str, delimiters: str | None = None) -> type[csv.Dialect]:
        seen.append(len(sample))
        return sniff(self, sample, delimiters)

    monkeypatch.setattr(csv.Sniffer, "sniff", measured)
    data = b"Player ID;NGR\nP-1;12,50\nP-2;1,00\n" + b',"' * 20_000 + b"\n"
    read_report(data)
    assert seen and max(seen) <= SNIFF_CHARS
