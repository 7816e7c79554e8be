"""An operator's report file read into a header and lines of text cells (ADR 20): CSV in any
delimiter and encoding operators' platforms write, or XLSX through openpyxl. What the cells mean
is core/reconcile.py's business.

CSV: the encoding from its byte-order mark, else UTF-8, else Windows-1252 (what a spreadsheet
saved on Windows writes); the delimiter by the standard library's csv.Sniffer over the first
lines; Windows, Unix and old Mac line ends alike (the csv module's own). XLSX: the first sheet,
streamed in openpyxl's read-only mode; numbers and dates come as values, written here the way
core reads them (a decimal point, ISO dates).
"""

import codecs
import csv
import io
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from itertools import islice

from clickback.core.reconcile import (
    MAX_CELL_LEN,
    MAX_REPORT_COLUMNS,
    MAX_REPORT_ROWS,
    SNIFF_ROWS,
    Reading,
    sniff_decimal,
)

# A 100,000-line export with a dozen columns is about 10 MB as CSV.
MAX_REPORT_FILE_BYTES = 64 * 1024 * 1024
_DELIMITERS = ",;\t|"
SNIFF_CHARS = 4096
_XLSX_MAGIC = b"PK\x03\x04"


class FileError(ValueError):
    """A file that cannot be read at all (not CSV or XLSX, no header, too many lines)."""


@dataclass(frozen=True, slots=True)
class ReportTable:
    header: list[str]
    lines: list[tuple[int, list[str]]]  # (line number in the file, the header being 1; cells)
    kind: str  # "csv" or "xlsx"
    reading: Reading
    encoding: str = ""
    delimiter: str = ""


def read_report(data: bytes, name: str = "") -> ReportTable:
    """The file's header and lines; FileError for a file that is not a report."""
    if len(data) > MAX_REPORT_FILE_BYTES:
        raise FileError(f"the file is over {MAX_REPORT_FILE_BYTES // (1024 * 1024)} MB")
    if data.startswith(_XLSX_MAGIC) or name.lower().endswith((".xlsx", ".xlsm")):
        return _xlsx(data)
    return _csv(data)


def _decode(data: bytes) -> tuple[str, str]:
    for bom, encoding in (
        (codecs.BOM_UTF8, "utf-8-sig"),
        (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"),
    ):
        if data.startswith(bom):
            try:
                return data.decode(encoding), encoding
            except UnicodeDecodeError:
                raise FileError(f"the file starts as {encoding.upper()} but is not") from None
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        # Windows-1252 decodes every byte but five; a file that still fails is not text.
        try:
            return data.decode("cp1252"), "cp1252"
        except UnicodeDecodeError:
            raise FileError("the file is neither XLSX nor text in UTF-8, UTF-16 or Windows-1252") from None


def _csv(data: bytes) -> ReportTable:
    text, encoding = _decode(data)
    if "\x00" in text:
        raise FileError("the file is neither XLSX nor CSV text (it holds NUL bytes)")
    # A few KB: csv.Sniffer's patterns take time quadratic in the sample on some texts (40 KB of
    # ',"' held the worker, clicks and all, for 12 s), and a header with a few lines is enough.
    sample = "\n".join(text[:SNIFF_CHARS].splitlines()[:50])
    try:
        delimiter = csv.Sniffer().sniff(sample, delimiters=_DELIMITERS).delimiter
    except csv.Error:
        delimiter = ","  # one column, or too few lines to tell
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next(reader, None)
        if not header or not any(h.strip() for h in header):
            raise FileError("the file has no header line")
        lines = [(n, row) for n, row in enumerate(_bounded(reader), start=2)]
    except csv.Error as exc:
        raise FileError(f"not a CSV file: {exc}") from None
    return _table(header, lines, "csv", encoding, delimiter)


def _bounded(rows: Iterator[list[str]]) -> Iterator[list[str]]:
    for n, row in enumerate(rows):
        if n >= MAX_REPORT_ROWS:
            raise FileError(f"at most {MAX_REPORT_ROWS:,} lines a file")
        yield row


def _table(
    header: list[str], lines: list[tuple[int, list[str]]], kind: str, encoding: str = "", delimiter: str = ""
) -> ReportTable:
    if len(header) > MAX_REPORT_COLUMNS:
        raise FileError(f"at most {MAX_REPORT_COLUMNS} columns")
    header = [h.strip()[:MAX_CELL_LEN] for h in header]
    decimal = sniff_decimal(c for _, cells in islice(lines, SNIFF_ROWS) for c in cells)
    return ReportTable(header, lines, kind, Reading(decimal), encoding, delimiter)


def _xlsx(data: bytes) -> ReportTable:
    # Imported here: only an XLSX import pays for loading openpyxl.
    import openpyxl
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (InvalidFileException, zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise FileError(f"not an XLSX file: {type(exc).__name__}") from None
    try:
        sheet = book.worksheets[0] if book.worksheets else None
        if sheet is None:
            raise FileError("the workbook has no sheet")
        # Not the size the sheet declares, and one column past the most a report may have (the
        # header then says it has too many): a 1.5 KB file declaring A1:XFD1048576 had every row
        # read as 16,384 cells, and its empty rows kept (read_rows skips them), 1 GB for 8,000 rows.
        sheet.reset_dimensions()
        rows = sheet.iter_rows(values_only=True, max_col=MAX_REPORT_COLUMNS + 1)
        first = next(rows, None)
        if first is None or not any(_cell(v).strip() for v in first):
            raise FileError("the sheet has no header line")
        header = _cells(first)
        lines = [
            (n, _cells(row))
            for n, row in enumerate(_bounded_rows(rows), start=2)
            if any(v is not None for v in row)
        ]
    finally:
        book.close()
    # Numbers are values, written by _cell with a decimal point whatever the sheet showed: the
    # decimal mark sniffed is that of amounts typed as text, if any.
    return _table(header, lines, "xlsx")


def _cells(row: Sequence[object]) -> list[str]:
    """A row's cells as text, without the empty ones after its last (iter_rows pads to max_col)."""
    end = len(row)
    while end and row[end - 1] is None:
        end -= 1
    return [_cell(v) for v in row[:end]]


def _bounded_rows(rows: Iterator[Sequence[object]]) -> Iterator[Sequence[object]]:
    for n, row in enumerate(rows):
        if n >= MAX_REPORT_ROWS:
            raise FileError(f"at most {MAX_REPORT_ROWS:,} lines a file")
        yield row


def _cell(value: object) -> str:
    """A spreadsheet value as text core reads: dates in ISO form, numbers with a decimal point
    and without an exponent (a float's shortest form: 12.5, not 12.4999999)."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == time() else value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{Decimal(repr(value)):f}"
    return str(value)
