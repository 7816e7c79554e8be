"""An affiliate's statement for a month: per offer what they earned and why, and its CSV form."""

import csv
import io
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import astuple, dataclass, fields
from decimal import Decimal

from clickback.core.money import money_text

# What a statement cell says where RevShare does not apply: never 0.00, which reads as "earned
# nothing" (or, for carry-in, "no deficit").
NOT_IN_DEAL = "not part of this deal"
# What starts a formula in a spreadsheet, full-width forms included (some read them as ASCII).
FORMULA_SIGNS = frozenset("=+-@\uff1d\uff0b\uff0d\uff20")
# Spreadsheets skip these before reading a formula: " =1+2" and "\n=1+2" run as "=1+2" does.
# Quotes too, for a cell read back from a file written without quoting.
_LEADING = re.compile(r'\A[\s"]+')


@dataclass(frozen=True, slots=True)
class StatementLine:
    offer_id: int
    offer: str
    currency: str
    deal: str  # cpa, revshare or hybrid: the deal in force; "" without one
    players: int  # registered this month, the registration standing (pending or approved)
    ftds: int
    qualified_cpas: int
    cpa_reversals: int
    cpa_earnings: Decimal  # net of reversals booked this month
    # The NGR of the affiliate's players this month, whatever the deal: the value they brought.
    ngr: Decimal
    # None where RevShare is not part of the deal (and nothing was ever booked for it).
    revshare_percent: Decimal | None
    carry_in: Decimal | None
    carry_out: Decimal | None
    revshare_earnings: Decimal | None

    @property
    def total(self) -> Decimal:
        return self.cpa_earnings + (self.revshare_earnings or Decimal(0))


COLUMNS = (*(f.name for f in fields(StatementLine)), "total")
# Amounts in the line's currency (the RevShare percent is not one).
MONEY_COLUMNS = frozenset({"cpa_earnings", "ngr", "carry_in", "carry_out", "revshare_earnings", "total"})


def totals(lines: Sequence[StatementLine]) -> Mapping[str, Decimal]:
    """Per currency: offers paying in different currencies are never added together."""
    out: dict[str, Decimal] = {}
    for line in lines:
        out[line.currency] = out.get(line.currency, Decimal(0)) + line.total
    return out


def statement_csv(lines: Sequence[StatementLine]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for line in lines:
        writer.writerow(line_cells(line))
    return buffer.getvalue()


def line_cells(line: StatementLine) -> list[str]:
    """A line as text, its amounts at its currency's precision (the CSV and the CLI's table)."""
    values = (*astuple(line), line.total)
    return [
        NOT_IN_DEAL
        if value is None
        else money_text(value, line.currency)
        if column in MONEY_COLUMNS
        else csv_cell(value)
        for column, value in zip(COLUMNS, values, strict=True)
    ]


@dataclass(frozen=True, slots=True)
class PlayerValue:
    """What a player brought in one currency: deposits net of chargebacks, NGR, and the CPA
    commission booked for them."""

    currency: str
    deposits: Decimal = Decimal(0)
    ngr: Decimal = Decimal(0)
    commission: Decimal = Decimal(0)


def by_currency(deal_currency: str | None, values: Iterable[PlayerValue]) -> list[PlayerValue]:
    """A player's values, one per currency and never added across currencies (a deal that changed
    currency priced the player's earlier conversions and commissions in the old one): the deal's
    currency first, zero where nothing was priced in it yet, so the list opens with the figures
    shown beside the deal's currency; then every other currency in code order."""
    given = {value.currency: value for value in values}
    if deal_currency is not None:
        given.setdefault(deal_currency, PlayerValue(deal_currency))
    return sorted(given.values(), key=lambda value: (value.currency != deal_currency, value.currency))


def csv_cell(value: object) -> str:
    """Text a spreadsheet would run as a formula is quoted with a leading apostrophe (numbers,
    negative ones included, are written as they are)."""
    if isinstance(value, Decimal):
        return f"{value:f}"
    if isinstance(value, int):
        return str(value)
    text = str(value)
    if text[:1] in ("\t", "\r") or _LEADING.sub("", text, count=1)[:1] in FORMULA_SIGNS:
        return "'" + text
    return text
