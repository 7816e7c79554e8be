"""An operator's report, once read into cells: which column holds what (the mapping), and each
line checked into a typed row or refused with its line number and reason (issue 15, ADR 20).

Operators export from their affiliate software (Income Access, MyAffiliates, NetRefer,
Cellxpert, Affilka...): one line a player (and a month, or a day), their tracking code, dates,
amounts. The header names differ from platform to platform, so a first import proposes a mapping
from them (HEADERS); the user corrects it, and it is kept per advertiser and used again.

A line is checked as a postback's fields are (core/money.py: the same amount limits and
currencies; dates as core/eventtime.py reads them, and the day-month forms spreadsheets write).
A bad line is a BadRow naming its line and why; the others go on.
"""

import functools
import hashlib
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

from clickback.core.commission import period_of
from clickback.core.eventtime import parse_event_time
from clickback.core.limits import MAX_SUB_ID_LEN, MAX_TXN_ID_LEN
from clickback.core.money import parse_amount, parse_currency, parse_period

# A report is read whole into memory by the importer: these bound what one file may cost.
MAX_REPORT_ROWS = 200_000
MAX_REPORT_COLUMNS = 200
MAX_CELL_LEN = 512
MAX_HEADER_LEN = 100
# Lines shown by the preview, and read to guess the decimal mark.
PREVIEW_ROWS = 10
SNIFF_ROWS = 200


class Field(StrEnum):
    """What a column can hold. PLAYER_ID is needed; every other one is optional."""

    PLAYER_ID = "player_id"
    TRACKING_CODE = "tracking_code"
    # The line's date or month (a daily export's day, a monthly one's month).
    PERIOD = "period"
    REGISTRATION_DATE = "registration_date"
    FTD_DATE = "ftd_date"
    FTD_AMOUNT = "ftd_amount"
    DEPOSITS = "deposits"
    NGR = "ngr"
    CPA = "cpa"
    REVSHARE = "revshare"
    COMMISSION = "commission"
    CURRENCY = "currency"
    TRANSACTION_ID = "transaction_id"


AMOUNT_FIELDS = (Field.FTD_AMOUNT, Field.DEPOSITS, Field.NGR, Field.CPA, Field.REVSHARE, Field.COMMISSION)
# NGR can be a loss, and a RevShare or a month's commission with it; deposits and CPAs cannot.
SIGNED_FIELDS = frozenset({Field.NGR, Field.REVSHARE, Field.COMMISSION})
DATE_FIELDS = (Field.PERIOD, Field.REGISTRATION_DATE, Field.FTD_DATE)


def header_key(name: str) -> str:
    """A header as HEADERS names it: lower case, runs of anything but letters and digits as one _."""
    return re.sub(r"[^a-z0-9]+", "_", name.strip().lower()).strip("_")


# The header names each platform's exports use for a field (as header_key writes them), in the
# order a proposal prefers them. Income Access: btag, "Sign Up Date", "CPA Commission";
# MyAffiliates: token, "Joined Date", "Earnings"; NetRefer: "Marketing Tag", "Customer ID",
# "RS Commission"; Cellxpert: afp, "User ID", "Net Gaming"; Affilka: stag, "Sign Up At",
# "First Deposit Sum", "Partner Income".
HEADERS: Mapping[Field, tuple[str, ...]] = {
    Field.PLAYER_ID: (
        "player_id",
        "playerid",
        "player",
        "customer_id",
        "customerid",
        "customer",
        "user_id",
        "userid",
        "member_id",
        "account_id",
        "client_id",
    ),
    Field.TRACKING_CODE: (
        "btag",
        "b_tag",
        "tracking_code",
        "tracker",
        "tracking_token",
        "token",
        "marketing_tag",
        "tag",
        "stag",
        "afp",
        "click_id",
        "clickid",
        "sub_id",
        "subid",
        "campaign_code",
    ),
    Field.PERIOD: ("period", "month", "date", "activity_date", "stats_date", "report_date", "day"),
    Field.REGISTRATION_DATE: (
        "registration_date",
        "sign_up_date",
        "signup_date",
        "sign_up_at",
        "joined_date",
        "join_date",
        "registered",
        "registration",
        "reg_date",
    ),
    Field.FTD_DATE: (
        "ftd_date",
        "first_deposit_date",
        "first_deposit_at",
        "ftd_at",
        "first_deposit_time",
    ),
    Field.FTD_AMOUNT: (
        "ftd_amount",
        "first_deposit_amount",
        "first_deposit_sum",
        "first_deposit",
        "ftd",
        "ftd_sum",
    ),
    Field.DEPOSITS: (
        "deposits",
        "deposit_amount",
        "deposits_amount",
        "deposits_sum",
        "total_deposits",
        "deposit",
        "net_deposits",
    ),
    Field.NGR: (
        "ngr",
        "net_gaming_revenue",
        "net_revenue",
        "net_gaming",
        "netrevenue",
        "revenue",
    ),
    Field.CPA: ("cpa_commission", "cpa", "cpa_amount", "cpa_earnings"),
    Field.REVSHARE: (
        "revshare_commission",
        "rev_share_commission",
        "rs_commission",
        "revshare",
        "rev_share",
        "revenue_share",
        "rs",
    ),
    Field.COMMISSION: (
        "total_commission",
        "commission",
        "earnings",
        "total_earnings",
        "partner_income",
        "total",
    ),
    Field.CURRENCY: ("currency", "currency_code", "ccy"),
    Field.TRANSACTION_ID: ("transaction_id", "txn_id", "tid", "deposit_id", "event_id"),
}


class DateOrder(StrEnum):
    """How a date written with slashes or dots is read: 03/11/2026 is 3 November (dmy) or March 11
    (mdy). ISO dates are read as they are either way."""

    DMY = "dmy"
    MDY = "mdy"


@dataclass(frozen=True, slots=True)
class ColumnMapping:
    """Which header holds each field (absent: not in the file); `currency` for lines naming none."""

    columns: Mapping[Field, str]
    date_order: DateOrder = DateOrder.DMY
    currency: str | None = None

    def as_json(self) -> dict[str, object]:
        return {
            "columns": {f.value: h for f, h in self.columns.items()},
            "date_order": self.date_order.value,
            "currency": self.currency,
        }


class MappingError(ValueError):
    """A mapping that cannot read the file (a header it names is not there, no player column)."""


def mapping_from_json(data: Mapping[str, object]) -> ColumnMapping:
    """A mapping as `as_json` wrote it (a saved one, or one sent to the API), checked."""
    columns = data.get("columns", {})
    if not isinstance(columns, dict):
        raise MappingError("columns: an object of field: header")
    parsed: dict[Field, str] = {}
    for name, header in columns.items():
        try:
            key = Field(name)
        except ValueError:
            raise MappingError(f"columns: unknown field {str(name)[:40]!r}") from None
        if not isinstance(header, str) or not header.strip() or len(header) > MAX_HEADER_LEN:
            raise MappingError(f"columns.{key.value}: a header name of 1 to {MAX_HEADER_LEN} characters")
        parsed[key] = header
    order = data.get("date_order", DateOrder.DMY.value)
    if order not in {o.value for o in DateOrder}:
        raise MappingError("date_order: dmy or mdy")
    currency = data.get("currency")
    if currency is not None and (not isinstance(currency, str) or parse_currency(currency) is None):
        raise MappingError("currency: an ISO 4217 code")
    return ColumnMapping(parsed, DateOrder(str(order)), parse_currency(currency) if currency else None)


def propose_mapping(header: Sequence[str]) -> ColumnMapping:
    """The mapping the header names suggest: each field takes the first of its names present
    (HEADERS), a column at most one field."""
    keys = {header_key(h): h for h in reversed(header) if h.strip()}
    taken: set[str] = set()
    columns: dict[Field, str] = {}
    for name, candidates in HEADERS.items():
        for candidate in candidates:
            found = keys.get(candidate)
            if found is not None and found not in taken:
                columns[name] = found
                taken.add(found)
                break
    return ColumnMapping(columns)


def check_mapping(mapping: ColumnMapping, header: Sequence[str]) -> None:
    """MappingError unless the mapping can read a file with this header."""
    if Field.PLAYER_ID not in mapping.columns:
        raise MappingError("no column is mapped to player_id")
    present = Counter(h.strip() for h in header)
    for name, column in mapping.columns.items():
        if column.strip() not in present:
            raise MappingError(f"{name.value}: the file has no column {column[:MAX_HEADER_LEN]!r}")
        if present[column.strip()] > 1:
            # Which of them holds the figures is a guess either way: the operator says.
            raise MappingError(
                f"{name.value}: the file has {present[column.strip()]} columns named"
                f" {column.strip()[:MAX_HEADER_LEN]!r}; rename all but one"
            )
    used = [c.strip() for c in mapping.columns.values()]
    if len(set(used)) != len(used):
        raise MappingError("a column is mapped to two fields")


@dataclass(frozen=True, slots=True)
class ReportRow:
    """One line of the report, every value checked. Amounts are in `currency`."""

    line: int
    player_id: str
    month: str
    tracking_code: str = ""
    registered_on: date | None = None
    ftd_on: date | None = None
    ftd_amount: Decimal | None = None
    deposits: Decimal | None = None
    ngr: Decimal | None = None
    cpa: Decimal | None = None
    revshare: Decimal | None = None
    commission: Decimal | None = None
    currency: str | None = None
    transaction_id: str = ""
    # The day the line reports, where its period cell is a date (a daily report). Not part of
    # `key`: lines imported before it was kept keep their keys, and a day's transaction ID tells
    # its line from another day's.
    day: date | None = None

    @property
    def key(self) -> str:
        """The row's identity: a line with the same player, month and figures is the same fact
        (an export overlapping an earlier one), imported once."""
        parts = [
            self.player_id,
            self.month,
            self.tracking_code,
            *(str(v) if v is not None else "" for v in (self.registered_on, self.ftd_on)),
            *(f"{v:f}" if v is not None else "" for v in self.amounts()),
            self.currency or "",
            self.transaction_id,
        ]
        return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:40]

    def amounts(self) -> tuple[Decimal | None, ...]:
        return (self.ftd_amount, self.deposits, self.ngr, self.cpa, self.revshare, self.commission)

    def as_json(self) -> dict[str, object]:
        return {
            "line": self.line,
            "player_id": self.player_id,
            "month": self.month,
            "tracking_code": self.tracking_code,
            "registered_on": self.registered_on.isoformat() if self.registered_on else None,
            "ftd_on": self.ftd_on.isoformat() if self.ftd_on else None,
            **{
                f.value: (f"{v:f}" if v is not None else None)
                for f, v in zip(AMOUNT_FIELDS, self.amounts(), strict=True)
            },
            "currency": self.currency,
            "transaction_id": self.transaction_id,
        }


def row_from_json(data: Mapping[str, object]) -> ReportRow:
    """A row as `as_json` kept it (a reconciliation reopened)."""

    def day(name: str) -> date | None:
        value = data.get(name)
        return date.fromisoformat(str(value)) if value else None

    def amount(name: Field) -> Decimal | None:
        value = data.get(name.value)
        return Decimal(str(value)) if value is not None else None

    return ReportRow(
        line=int(str(data["line"])),
        player_id=str(data["player_id"]),
        month=str(data["month"]),
        tracking_code=str(data.get("tracking_code") or ""),
        registered_on=day("registered_on"),
        ftd_on=day("ftd_on"),
        ftd_amount=amount(Field.FTD_AMOUNT),
        deposits=amount(Field.DEPOSITS),
        ngr=amount(Field.NGR),
        cpa=amount(Field.CPA),
        revshare=amount(Field.REVSHARE),
        commission=amount(Field.COMMISSION),
        currency=str(data["currency"]) if data.get("currency") else None,
        transaction_id=str(data.get("transaction_id") or ""),
    )


@dataclass(frozen=True, slots=True)
class BadRow:
    line: int
    reason: str


class BadValue(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Reading:
    """How the file's values are written, found by the reader (core: sniff_decimal)."""

    decimal: str = "."  # "." or ","


# "1.234,56" / "1 234,56" (comma decimal) against "1,234.56" (point): the last mark followed by
# one or two digits at the end is the decimal mark; three digits after it prove nothing.
_COMMA_DECIMAL = re.compile(r"^[-(]?[0-9][0-9. \u00a0\u202f]*,[0-9]{1,2}\)?$")
_POINT_DECIMAL = re.compile(r"^[-(]?[0-9][0-9, \u00a0\u202f]*\.[0-9]{1,2}\)?$")
_SPACES = re.compile(r"[ \u00a0\u202f']")
# Symbols an export may put beside an amount; the currency itself comes from its column.
_SYMBOLS = re.compile(r"^[€$£¥₹₽]|[€$£¥₹₽]$")


def sniff_decimal(cells: Iterable[str]) -> str:
    """The decimal mark of a file's amounts: "," when more cells read as decimal-comma amounts
    than as decimal-point ones."""
    comma = point = 0
    for cell in cells:
        text = _SYMBOLS.sub("", cell.strip())
        if _COMMA_DECIMAL.match(text):
            comma += 1
        elif _POINT_DECIMAL.match(text):
            point += 1
    return "," if comma > point else "."


# A report repeats its dates and many of its amounts (0,00, the CPA): each text is read once.
@functools.lru_cache(maxsize=8192)
def read_amount(raw: str, decimal: str, *, signed: bool) -> Decimal | None:
    """An amount as exports write it (a decimal comma or point, thousands marks, a currency
    symbol, a loss in parentheses), then checked as a postback's is (core/money.parse_amount):
    None when it is not one."""
    text = _SYMBOLS.sub("", raw.strip()).strip()
    if text.startswith("(") and text.endswith(")"):
        text = "-" + text[1:-1]
    thousands = "." if decimal == "," else ","
    whole = text.split(decimal, 1)[0]
    # Thousands marks (or spaces) only between groups of three digits: "12,50" in a file of
    # decimal points is a decimal comma misread, not 1,250.
    if (thousands in whole or _SPACES.search(whole)) and not _GROUPED.fullmatch(
        _SPACES.sub(thousands, whole).replace(thousands, ",")
    ):
        return None
    text = _SPACES.sub("", text).replace(thousands, "")
    if decimal == ",":
        text = text.replace(",", ".")
    return parse_amount(text, signed=signed)


_GROUPED = re.compile(r"-?[0-9]{1,3}(?:,[0-9]{3})+")


_DAY_FIRST = re.compile(r"([0-9]{1,2})[./-]([0-9]{1,2})[./-]([0-9]{4})(?:[ T].*)?")
_MONTH_YEAR = re.compile(r"([0-9]{1,2})[./-]([0-9]{4})")
_ISO_MONTH = re.compile(r"([0-9]{4})-([0-9]{2})")


@functools.lru_cache(maxsize=4096)
def read_date(raw: str, order: DateOrder) -> date | None:
    text = raw.strip()
    found = _DAY_FIRST.fullmatch(text)
    if found:
        a, b, year = (int(g) for g in found.groups())
        day, month = (a, b) if order is DateOrder.DMY else (b, a)
        try:
            return date(year, month, day)
        except ValueError:
            return None
    stated = parse_event_time(text)
    return stated.at.date() if stated is not None else None


@functools.lru_cache(maxsize=1024)
def read_month(raw: str, order: DateOrder) -> str | None:
    """A period cell: a month (2026-11, 11/2026) or a day in it."""
    text = raw.strip()
    if _ISO_MONTH.fullmatch(text):
        return parse_period(text)
    found = _MONTH_YEAR.fullmatch(text)
    if found:
        return parse_period(f"{found.group(2)}-{int(found.group(1)):02d}")
    day = read_date(text, order)
    return period_of(datetime(day.year, day.month, 1)) if day is not None else None


def read_rows(
    header: Sequence[str],
    lines: Iterable[tuple[int, Sequence[str]]],
    mapping: ColumnMapping,
    reading: Reading,
    period: str | None = None,
) -> Iterator[ReportRow | BadRow]:
    """Each line (its number in the file, its cells) as a ReportRow or a BadRow. `period`: the
    month the file covers; a line of another month is refused, and a line naming no month of its
    own is of it. Blank lines are skipped."""
    check_mapping(mapping, header)
    index = {h.strip(): n for n, h in reversed(list(enumerate(header)))}
    where = {name: index[column.strip()] for name, column in mapping.columns.items()}
    for number, cells in lines:
        if not any(c.strip() for c in cells):
            continue
        try:
            values = {name: (cells[n].strip() if n < len(cells) else "") for name, n in where.items()}
            yield _row(number, values, mapping, reading, period)
        except BadValue as exc:
            yield BadRow(number, str(exc))


def _row(
    line: int, values: dict[Field, str], mapping: ColumnMapping, reading: Reading, period: str | None
) -> ReportRow:
    for name, value in values.items():
        if len(value) > MAX_CELL_LEN:
            raise BadValue(f"{name.value}: longer than {MAX_CELL_LEN} characters")
        if not value.isprintable():
            raise BadValue(f"{name.value}: control characters")
    player = values[Field.PLAYER_ID]
    if not player:
        raise BadValue("player_id: empty")
    if len(player) > MAX_SUB_ID_LEN:
        raise BadValue(f"player_id: longer than {MAX_SUB_ID_LEN} characters")
    code = values.get(Field.TRACKING_CODE, "")
    if len(code) > MAX_SUB_ID_LEN:
        raise BadValue(f"tracking_code: longer than {MAX_SUB_ID_LEN} characters")
    txn = values.get(Field.TRANSACTION_ID, "")
    if len(txn) > MAX_TXN_ID_LEN:
        raise BadValue(f"transaction_id: longer than {MAX_TXN_ID_LEN} characters")
    dates = {name: _date(name, values.get(name, ""), mapping.date_order) for name in DATE_FIELDS[1:]}
    month = _month(values, mapping.date_order, dates, period)
    raw_period = values.get(Field.PERIOD, "")
    day = read_date(raw_period, mapping.date_order) if raw_period else None
    amounts = {
        name: _amount(name, values.get(name, ""), reading.decimal) for name in AMOUNT_FIELDS if name in values
    }
    currency = mapping.currency
    if values.get(Field.CURRENCY):
        currency = parse_currency(values[Field.CURRENCY])
        if currency is None:
            raise BadValue(f"currency: {values[Field.CURRENCY][:40]!r} is not an ISO 4217 code")
    if currency is None and any(v is not None for v in amounts.values()):
        raise BadValue("currency: none on the line, and the mapping names no default")
    return ReportRow(
        line=line,
        player_id=player,
        month=month,
        tracking_code=code,
        registered_on=dates[Field.REGISTRATION_DATE],
        ftd_on=dates[Field.FTD_DATE],
        ftd_amount=amounts.get(Field.FTD_AMOUNT),
        deposits=amounts.get(Field.DEPOSITS),
        ngr=amounts.get(Field.NGR),
        cpa=amounts.get(Field.CPA),
        revshare=amounts.get(Field.REVSHARE),
        commission=amounts.get(Field.COMMISSION),
        currency=currency,
        transaction_id=txn,
        day=day,
    )


def _date(name: Field, raw: str, order: DateOrder) -> date | None:
    if not raw:
        return None
    day = read_date(raw, order)
    if day is None or not 2000 <= day.year <= 2099:
        raise BadValue(f"{name.value}: {raw[:40]!r} is not a date")
    return day


def _month(
    values: dict[Field, str], order: DateOrder, dates: dict[Field, date | None], period: str | None
) -> str:
    raw = values.get(Field.PERIOD, "")
    month = read_month(raw, order) if raw else None
    if raw and month is None:
        raise BadValue(f"period: {raw[:40]!r} is not a month or a date")
    month = month or period
    if month is None:
        # A per-player export without a period column: the month of its first deposit or sign-up.
        first = dates[Field.FTD_DATE] or dates[Field.REGISTRATION_DATE]
        if first is None:
            raise BadValue("period: the line names no month; map a period column or give the period")
        month = f"{first.year:04d}-{first.month:02d}"
    if period is not None and month != period:
        raise BadValue(f"period: {month} is outside the reconciled period {period}")
    return month


def _amount(name: Field, raw: str, decimal: str) -> Decimal | None:
    if not raw or raw in ("-", "\u2013"):  # an empty cell, or a dash (an en dash too) for none
        return None
    amount = read_amount(raw, decimal, signed=name in SIGNED_FIELDS)
    if amount is None:
        sign = "" if name in SIGNED_FIELDS else ", not negative"
        raise BadValue(
            f"{name.value}: {raw[:40]!r} is not an amount (decimal mark {decimal!r}{sign}, "
            "4 decimals and 10^9 at most)"
        )
    return amount


@dataclass(slots=True)
class OperatorFigures:
    """What the operator's lines say of one player in one month, summed over the lines."""

    player_id: str
    month: str
    currency: str | None
    lines: list[int] = field(default_factory=list)
    tracking_code: str = ""
    registered_on: date | None = None
    ftd_on: date | None = None
    ftd_amount: Decimal | None = None
    deposits: Decimal | None = None
    ngr: Decimal | None = None
    cpa: Decimal | None = None
    revshare: Decimal | None = None
    commission: Decimal | None = None

    @property
    def commission_total(self) -> Decimal:
        """The operator's commission: its total column, else CPA plus RevShare."""
        if self.commission is not None:
            return self.commission
        return (self.cpa or Decimal(0)) + (self.revshare or Decimal(0))


def figures_of(rows: Iterable[ReportRow]) -> tuple[dict[tuple[str, str], OperatorFigures], list[BadRow]]:
    """The rows by (player, month), summed (a daily export has a line a day). A line naming
    another currency than an earlier line of the same player and month is refused."""
    out: dict[tuple[str, str], OperatorFigures] = {}
    bad: list[BadRow] = []
    for row in rows:
        key = (row.player_id, row.month)
        f = out.get(key)
        if f is None:
            f = out[key] = OperatorFigures(row.player_id, row.month, row.currency)
        elif row.currency is not None and f.currency is not None and row.currency != f.currency:
            bad.append(
                BadRow(
                    row.line,
                    f"currency: {row.currency} where line {f.lines[0]} of the same player and month "
                    f"has {f.currency}",
                )
            )
            continue
        f.lines.append(row.line)
        f.currency = f.currency or row.currency
        f.tracking_code = f.tracking_code or row.tracking_code
        f.registered_on = _earliest(f.registered_on, row.registered_on)
        f.ftd_on = _earliest(f.ftd_on, row.ftd_on)
        f.ftd_amount = _plus(f.ftd_amount, row.ftd_amount)
        f.deposits = _plus(f.deposits, row.deposits)
        f.ngr = _plus(f.ngr, row.ngr)
        f.cpa = _plus(f.cpa, row.cpa)
        f.revshare = _plus(f.revshare, row.revshare)
        f.commission = _plus(f.commission, row.commission)
    return out, bad


def _earliest(a: date | None, b: date | None) -> date | None:
    return b if a is None else a if b is None else min(a, b)


def _plus(a: Decimal | None, b: Decimal | None) -> Decimal | None:
    return b if a is None else a if b is None else a + b
