"""Cost import: the spend a traffic source reports afterwards, per day and link (and sub IDs), read
from CSV and spread over the matching clicks.

The file is the whole truth of what each link's traffic cost on each day it names: its figures
replace whatever those clicks cost before (a CPC model's, an earlier import's), so importing a
corrected file again replaces, never adds. A line spreads its amount evenly over the clicks of
its day (in the import's zone) and link that match its sub IDs, bot clicks included (sources
bill them), to the 1/10,000: the first clicks take the remainder, so the clicks' costs add up to
the line exactly. A click of such a day and link that no line matches costs nothing.

Every line is checked before anything is applied: one wrong line refuses the file, naming the
line and the field.
"""

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from clickback.core.clicks import SUB_KEYS
from clickback.core.cost import COST_SCALE
from clickback.core.limits import MAX_SUB_ID_LEN
from clickback.core.model import Catalog
from clickback.core.money import CURRENCIES, parse_amount
from clickback.core.reporting import FIRST_DAY, LAST_DAY

MAX_LINES = 20_000
MAX_LINK_LEN = 32
# What a file's header may name; `day`, `link` and `cost` are needed.
COLUMNS = ("day", "link", "cost", "currency", *SUB_KEYS)


@dataclass(frozen=True, slots=True)
class SpendLine:
    line: int  # in the file, the header being line 1
    day: date
    link: str  # the link's code, or its id
    units: int  # the amount in 1/10,000 of `currency`
    currency: str
    subs: tuple[tuple[str, str], ...]  # (sub key, value) the line is for; () for all the link's clicks

    def matches(self, subs: Sequence[str]) -> bool:
        """Whether a click with these sub IDs (sub1…sub5) is one of this line's."""
        return all(subs[SUB_KEYS.index(key)] == value for key, value in self.subs)


class SpendError(ValueError):
    """A file that cannot be imported: `line` and `field` name where (line 0: the file)."""

    def __init__(self, line: int, field: str, message: str) -> None:
        super().__init__(f"line {line}: {field}: {message}" if line else f"{field}: {message}")
        self.line, self.field = line, field


def parse_spend(text: str, currency: str | None) -> list[SpendLine]:
    """The lines of a spend CSV (a header naming COLUMNS, comma-separated). `currency`: the
    amounts' currency where a line names none."""
    try:
        return _parse_spend(text, currency)
    except csv.Error as exc:  # a stray carriage return in a quoted cell, a NUL ...
        raise SpendError(0, "file", f"not a CSV file: {exc}") from None


def _parse_spend(text: str, currency: str | None) -> list[SpendLine]:
    # newline="": the csv module's own line endings (a lone \r ends a line, as in old Mac files).
    reader = csv.reader(io.StringIO(text, newline=""))
    header = [h.strip().lower() for h in next(reader, [])]
    if unknown := [h for h in header if h not in COLUMNS]:
        raise SpendError(1, "header", f"unknown column {unknown[0][:40]!r}; columns: {', '.join(COLUMNS)}")
    if missing := [c for c in ("day", "link", "cost") if c not in header]:
        raise SpendError(1, "header", f"no {missing[0]} column")
    if len(set(header)) != len(header):
        raise SpendError(1, "header", "a column named twice")
    lines: list[SpendLine] = []
    seen: set[tuple[date, str, tuple[tuple[str, str], ...]]] = set()
    for n, cells in enumerate(reader, start=2):
        if not any(c.strip() for c in cells):
            continue
        if len(lines) >= MAX_LINES:
            raise SpendError(n, "file", f"at most {MAX_LINES:,} lines a file")
        if len(cells) != len(header):
            raise SpendError(n, "line", f"{len(cells)} cells where the header has {len(header)}")
        row = dict(zip(header, (c.strip() for c in cells), strict=True))
        spend = _line(n, row, currency)
        key = (spend.day, spend.link, spend.subs)
        if key in seen:
            raise SpendError(n, "line", "the same day, link and sub IDs as an earlier line")
        seen.add(key)
        lines.append(spend)
    if not lines:
        raise SpendError(0, "file", "no lines of spend")
    return lines


def _line(n: int, row: dict[str, str], currency: str | None) -> SpendLine:
    try:
        day = date.fromisoformat(row["day"])
    except ValueError:
        raise SpendError(n, "day", f"{row['day'][:40]!r} is not a day (YYYY-MM-DD)") from None
    if not FIRST_DAY <= day <= LAST_DAY:
        raise SpendError(n, "day", f"{day} is out of range")
    link = row["link"]
    if not link or len(link) > MAX_LINK_LEN or not link.isalnum():
        raise SpendError(n, "link", f"{link[:40]!r} is not a link's code or id")
    amount = parse_amount(row["cost"])
    if amount is None:
        raise SpendError(
            n, "cost", f"{row['cost'][:40]!r} is not an amount (digits, a dot, 4 decimals at most)"
        )
    code = (row.get("currency") or currency or "").upper()
    if code not in CURRENCIES:
        raise SpendError(n, "currency", f"{code[:40]!r} is not an ISO 4217 code" if code else "none given")
    subs = []
    for key in SUB_KEYS:
        value = row.get(key, "")
        if len(value) > MAX_SUB_ID_LEN or not value.isprintable():
            raise SpendError(n, key, f"at most {MAX_SUB_ID_LEN} printable characters")
        if value:
            subs.append((key, value))
    return SpendLine(n, day, link, int(amount * COST_SCALE), code, tuple(subs))


def resolve(lines: Sequence[SpendLine], catalog: Catalog) -> dict[tuple[date, int], list[SpendLine]]:
    """The lines by (day, link id), each link found by its code or id. The lines of one day and
    link name the same sub IDs (or none), so that no click is two lines'."""
    by_id = {str(link_id): link_id for link_id in catalog.links}
    groups: dict[tuple[date, int], list[SpendLine]] = {}
    for spend in lines:
        found = catalog.links_by_code.get(spend.link)
        link_id = found.id if found is not None else by_id.get(spend.link)
        if link_id is None:
            raise SpendError(spend.line, "link", f"no link has the code or id {spend.link!r}")
        group = groups.setdefault((spend.day, link_id), [])
        if group and [k for k, _ in group[0].subs] != [k for k, _ in spend.subs]:
            raise SpendError(
                spend.line, "line", f"line {group[0].line} of the same day and link names other sub IDs"
            )
        # The same link named once by its code and once by its id: the second would take the
        # first's clicks and its spend would be lost.
        twin = next((other for other in group if other.subs == spend.subs), None)
        if twin is not None:
            raise SpendError(spend.line, "line", f"the same day, link and sub IDs as line {twin.line}")
        group.append(spend)
    return groups


@dataclass(frozen=True, slots=True)
class Spread:
    """A day and link's lines over its clicks."""

    costs: dict[str, tuple[int, str]]  # each click's new cost (units, currency); (0, "") for none
    matched: list[int]  # how many clicks each line went to, in the lines' order


def spread_lines(lines: Sequence[SpendLine], clicks: Sequence[tuple[str, Sequence[str]]]) -> Spread:
    """`clicks`: the day and link's (click ID, sub IDs), in time order. Every click gets its
    share of the line it matches, or nothing: the lines are the whole truth of the day."""
    costs: dict[str, tuple[int, str]] = dict.fromkeys((click_id for click_id, _ in clicks), (0, ""))
    matched = []
    for line in lines:
        mine = [click_id for click_id, subs in clicks if line.matches(subs)]
        matched.append(len(mine))
        if mine:
            for click_id, units in zip(mine, spread(line.units, len(mine)), strict=True):
                costs[click_id] = (units, line.currency if units else "")
    return Spread(costs, matched)


def spread(units: int, clicks: int) -> list[int]:
    """`units` over `clicks` clicks, evenly to the unit, the first ones taking the remainder: the
    parts add up to `units` exactly."""
    base, extra = divmod(units, clicks)
    return [base + 1] * extra + [base] * (clicks - extra)
