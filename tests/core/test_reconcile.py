"""Reading an operator's report (mapping, amounts, dates, bad lines) and comparing it with what
clickback recorded (core/reconcile.py, core/reconcile_compare.py)."""

from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from clickback.core.reconcile import (
    BadRow,
    ColumnMapping,
    DateOrder,
    Field,
    MappingError,
    OperatorFigures,
    Reading,
    ReportRow,
    check_mapping,
    figures_of,
    mapping_from_json,
    propose_mapping,
    read_amount,
    read_date,
    read_month,
    read_rows,
    row_from_json,
    sniff_decimal,
)
from clickback.core.reconcile_compare import (
    UNCONVERTED,
    Cause,
    ClickbackFigures,
    Kind,
    amounts_now,
    compare,
    summarise,
)

INCOME_ACCESS = (
    "Player ID,BTAG,Period,Sign Up Date,FTD Date,"
    "Deposits,Net Revenue,CPA Commission,RevShare Commission,Total Commission,Currency"
).split(",")
MYAFFILIATES = (
    "PLAYER_ID,TOKEN,JOINED_DATE,FIRST_DEPOSIT_DATE,FIRST_DEPOSIT,"
    "DEPOSITS,NET_REVENUE,CPA,REV_SHARE,EARNINGS,CURRENCY"
).split(",")
NETREFER = (
    "Customer ID,Marketing Tag,Month,Registration Date,First Deposit Date,"
    "First Deposit Amount,Deposits,NGR,CPA Commission,RS Commission,Currency"
).split(",")
CELLXPERT = (
    "User ID,afp,Registration Date,FTD Date,FTD Amount,Deposits,Net Gaming,CPA,RevShare,Commission,Currency"
).split(",")
AFFILKA = (
    "Player ID,Stag,Sign Up At,First Deposit At,First Deposit Sum,"
    "Deposits Sum,NGR,CPA,Revenue Share,Partner Income,Currency"
).split(",")


@pytest.mark.parametrize("header", [INCOME_ACCESS, MYAFFILIATES, NETREFER, CELLXPERT, AFFILKA])
def test_each_platforms_header_proposes_a_full_mapping(header: list[str]) -> None:
    mapping = propose_mapping(header)
    for needed in (
        Field.PLAYER_ID,
        Field.TRACKING_CODE,
        Field.DEPOSITS,
        Field.NGR,
        Field.CPA,
        Field.CURRENCY,
    ):
        assert needed in mapping.columns, (needed, header)
    assert Field.REGISTRATION_DATE in mapping.columns and Field.FTD_DATE in mapping.columns
    assert len(set(mapping.columns.values())) == len(mapping.columns)
    check_mapping(mapping, header)
    assert mapping_from_json(mapping.as_json()) == mapping


def test_a_mapping_naming_a_missing_column_or_no_player_is_refused() -> None:
    with pytest.raises(MappingError, match="player_id"):
        check_mapping(ColumnMapping({Field.NGR: "NGR"}), ["NGR"])
    with pytest.raises(MappingError, match="no column 'Player'"):
        check_mapping(ColumnMapping({Field.PLAYER_ID: "Player"}), ["NGR"])
    # Two columns of one name: which holds the figures is not for clickback to guess.
    two = ColumnMapping({Field.PLAYER_ID: "Player", Field.NGR: "NGR"})
    with pytest.raises(MappingError, match="ngr: the file has 2 columns named 'NGR'; rename all but one"):
        check_mapping(two, ["Player", "NGR", " NGR "])
    check_mapping(two, ["Player", "NGR", "Other", "Other"])  # an unmapped column may repeat
    for bad in (
        {"columns": {"nonsense": "x"}},
        {"columns": {"ngr": ""}},
        {"currency": "EURO"},
        {"date_order": "ymd"},
    ):
        with pytest.raises(MappingError):
            mapping_from_json(bad)


@pytest.mark.parametrize(
    ("raw", "decimal", "signed", "expected"),
    [
        ("1.234,56", ",", False, Decimal("1234.56")),
        ("1 234,5", ",", False, Decimal("1234.5")),
        ("1\u00a0234,50 €", ",", False, Decimal("1234.50")),
        ("1,234.56", ".", False, Decimal("1234.56")),
        ("$12.5", ".", False, Decimal("12.5")),
        ("-80,25", ",", True, Decimal("-80.25")),
        ("(80.25)", ".", True, Decimal("-80.25")),
        ("-80.25", ".", False, None),
        ("1e5", ".", False, None),
        ("NaN", ".", False, None),
        ("12.34567", ".", False, None),
        ("2000000000", ".", False, None),
        # A thousands mark that groups no three digits is a decimal mark misread: refused, not
        # read as 100 times the amount.
        ("12,50", ".", False, None),
        ("3,1", ".", False, None),
        ("1 234,56", ".", False, None),
        ("1.5", ",", False, None),
        ("12.345.678,9", ",", False, Decimal("12345678.9")),
        ("1 234 567", ".", False, Decimal("1234567")),
        ("-1,234", ".", True, Decimal("-1234")),
    ],
)
def test_amounts_read_as_exports_write_them_within_the_postback_limits(
    raw: str, decimal: str, signed: bool, expected: Decimal | None
) -> None:
    assert read_amount(raw, decimal, signed=signed) == expected


def test_the_decimal_mark_is_sniffed_from_the_cells() -> None:
    assert sniff_decimal(["P-1", "120,50", "1.200,00", "2026-11-03"]) == ","
    assert sniff_decimal(["P-1", "120.50", "1,200.00", "7"]) == "."
    assert sniff_decimal(["1,234"]) == "."  # three digits after it: thousands


def test_dates_and_months_in_the_forms_spreadsheets_write() -> None:
    assert read_date("03/11/2026", DateOrder.DMY) == date(2026, 11, 3)
    assert read_date("11/03/2026", DateOrder.MDY) == date(2026, 11, 3)
    assert read_date("03.11.2026 14:05", DateOrder.DMY) == date(2026, 11, 3)
    assert read_date("2026-11-03T14:05:00+02:00", DateOrder.DMY) == date(2026, 11, 3)
    assert read_date("31/02/2026", DateOrder.DMY) is None
    assert read_month("2026-11", DateOrder.DMY) == "2026-11"
    assert read_month("11/2026", DateOrder.DMY) == "2026-11"
    assert read_month("2026-11-30", DateOrder.DMY) == "2026-11"
    assert read_month("Nov", DateOrder.DMY) is None


def test_bad_lines_are_reported_with_their_number_and_reason_and_the_others_read() -> None:
    header = ["Player ID", "BTAG", "Period", "Deposits", "NGR", "Currency"]
    mapping = propose_mapping(header)
    lines = [
        (2, ["P-1", "a1", "2026-11", "100,50", "-20,00", "EUR"]),
        (3, ["", "a1", "2026-11", "1", "1", "EUR"]),
        (4, ["P-3", "a1", "2026-11", "-5", "0", "EUR"]),
        (5, ["P-4", "a1", "2026-11", "5", "0", "EURO"]),
        (6, ["P-5", "a1", "2026-10", "5", "0", "EUR"]),
        (7, ["P-6", "a1", "soon", "5", "0", "EUR"]),
        (8, ["", "", "", "", "", ""]),
        (9, ["P-7", "a1\x00", "2026-11", "5", "0", "EUR"]),
    ]
    read = list(read_rows(header, lines, mapping, Reading(","), period="2026-11"))
    good = [r for r in read if isinstance(r, ReportRow)]
    bad = {r.line: r.reason for r in read if isinstance(r, BadRow)}
    assert [(r.line, r.deposits, r.ngr) for r in good] == [(2, Decimal("100.50"), Decimal("-20.00"))]
    assert set(bad) == {3, 4, 5, 6, 7, 9}
    assert bad[3] == "player_id: empty"
    assert bad[4].startswith("deposits: '-5' is not an amount")
    assert "ISO 4217" in bad[5]
    assert bad[6] == "period: 2026-10 is outside the reconciled period 2026-11"
    assert "not a month" in bad[7]
    assert "control characters" in bad[9]
    assert row_from_json(good[0].as_json()) == good[0]


def test_a_daily_exports_lines_sum_per_player_and_month_and_keys_tell_lines_apart() -> None:
    rows = [
        ReportRow(2, "P-1", "2026-11", "a1", deposits=Decimal(10), currency="EUR"),
        ReportRow(3, "P-1", "2026-11", "a1", ftd_on=date(2026, 11, 2), deposits=Decimal(5), currency="EUR"),
        ReportRow(4, "P-1", "2026-11", "a1", deposits=Decimal(5), currency="USD"),
    ]
    figures, bad = figures_of(rows)
    f = figures[("P-1", "2026-11")]
    assert (f.deposits, f.ftd_on, f.lines) == (Decimal(15), date(2026, 11, 2), [2, 3])
    assert [b.line for b in bad] == [4]
    assert rows[0].key != rows[1].key
    assert rows[0].key == ReportRow(9, "P-1", "2026-11", "a1", deposits=Decimal(10), currency="EUR").key


ALL = frozenset(Field)


def ours(**values: Any) -> ClickbackFigures:
    base: dict[str, Any] = {
        "player_id": "P-1",
        "month": "2026-11",
        "known": True,
        "affiliate_id": 1,
        "currency": "EUR",
        "ledger_currency": "EUR",
    }
    return ClickbackFigures(**(base | values))


def theirs(**values: Any) -> OperatorFigures:
    row = ReportRow(2, "P-1", "2026-11", "code", **({"currency": "EUR"} | values))
    return figures_of([row])[0][("P-1", "2026-11")]


def test_each_class_of_the_comparison() -> None:
    ftd = date(2026, 11, 3)
    same = compare(
        theirs(ftd_on=ftd, deposits=Decimal(50), cpa=Decimal(100)),
        ours(ftd_on=ftd, deposits=Decimal("50.004"), cpa=Decimal(100)),
        {},
        ALL,
    )
    assert same.kind is Kind.MATCHED and same.difference == 0

    missing = compare(theirs(ftd_on=ftd), ours(known=False, affiliate_id=None), {}, ALL)
    assert missing.kind is Kind.MISSING_IN_CLICKBACK and missing.evidence["missing_events"] == ["player"]
    no_ftd = compare(theirs(ftd_on=ftd), ours(), {}, ALL)
    assert no_ftd.evidence["missing_events"] == ["first_deposit"]

    extra = compare(None, ours(ftd_on=ftd, cpa=Decimal(100)), {}, ALL)
    assert extra.kind is Kind.MISSING_AT_OPERATOR and extra.difference == -100
    not_counted = compare(theirs(deposits=Decimal(50)), ours(ftd_on=ftd, deposits=Decimal(50)), {}, ALL)
    assert not_counted.kind is Kind.MISSING_AT_OPERATOR
    # A report without first-deposit columns says nothing of them.
    silent = compare(
        theirs(deposits=Decimal(50)),
        ours(ftd_on=ftd, deposits=Decimal(50)),
        {},
        ALL - {Field.FTD_DATE, Field.FTD_AMOUNT},
    )
    assert silent.kind is Kind.MATCHED

    elsewhere = compare(theirs(), ours(code_affiliate_id=2), {}, ALL)
    assert elsewhere.kind is Kind.ATTRIBUTED_ELSEWHERE and "affiliate 2" in elsewhere.evidence["attribution"]

    cpa = compare(
        theirs(ftd_on=ftd, cpa=Decimal(0)), ours(ftd_on=ftd, cpa=Decimal(100), cpa_rules="ftd ≥ 20"), {}, ALL
    )
    assert cpa.kind is Kind.CPA_DISAGREES and cpa.difference == -100
    assert cpa.causes[0][0] is Cause.CPA_NOT_QUALIFIED
    assert cpa.evidence["qualification"]["rules"] == "ftd ≥ 20"

    charged = compare(
        theirs(deposits=Decimal(70), ngr=Decimal(30)),
        ours(deposits=Decimal(100), chargebacks=Decimal(30), ngr=Decimal(30)),
        {},
        ALL,
    )
    assert charged.kind is Kind.AMOUNT_DIFFERS
    assert [(c, a) for c, a, _ in charged.causes] == [(Cause.CHARGEBACK, Decimal(-30))]

    rate = compare(
        theirs(ngr=Decimal(1000), revshare=Decimal(300)),
        ours(ngr=Decimal(1000), revshare=Decimal(250), revshare_percent=Decimal(25)),
        {},
        ALL,
    )
    assert rate.kind is Kind.AMOUNT_DIFFERS and rate.difference == 50
    assert rate.causes[0][0] is Cause.RATE and "30.00%" in rate.causes[0][2]

    carried = compare(
        theirs(ngr=Decimal(1000), revshare=Decimal(250)),
        ours(ngr=Decimal(1000), revshare=Decimal(200), revshare_percent=Decimal(25), carry_in=Decimal(-200)),
        {},
        ALL,
    )
    assert [c for c, _, _ in carried.causes] == [Cause.NEGATIVE_CARRYOVER]


def test_clickbacks_amounts_are_converted_into_the_operators_currency_at_the_months_rate() -> None:
    rates = {("USD", "EUR", "2026-11"): Decimal("0.9")}
    item = compare(theirs(cpa=Decimal(90)), ours(ledger_currency="USD", cpa=Decimal(100)), rates, ALL)
    assert item.kind is Kind.MATCHED and item.evidence["rates"] == ["USD→EUR 2026-11: 0.9"]
    unrated = compare(theirs(cpa=Decimal(90)), ours(ledger_currency="GBP", cpa=Decimal(100)), rates, ALL)
    assert unrated.kind is Kind.AMOUNT_DIFFERS and unrated.causes[0][0] is Cause.EXCHANGE_RATE


def test_the_summary_splits_each_affiliates_difference_by_class() -> None:
    ftd = date(2026, 11, 3)
    items = [
        compare(theirs(ftd_on=ftd, cpa=Decimal(100)), ours(ftd_on=ftd, cpa=Decimal(100)), {}, ALL),
        compare(None, ours(player_id="P-2", ftd_on=ftd, cpa=Decimal(100)), {}, ALL),
        compare(
            theirs(ngr=Decimal(1000), revshare=Decimal(300)),
            ours(player_id="P-3", ngr=Decimal(1000), revshare=Decimal(250)),
            {},
            ALL,
        ),
    ]
    (s,) = summarise(items)
    assert (s.affiliate_id, s.operator_total, s.clickback_total, s.difference) == (
        1,
        Decimal(400),
        Decimal(450),
        Decimal(-50),
    )
    assert s.explained == {Kind.MISSING_AT_OPERATOR: -100, Kind.AMOUNT_DIFFERS: 50}
    assert sum(s.explained.values()) == s.difference
    assert s.items == {Kind.MATCHED: 1, Kind.MISSING_AT_OPERATOR: 1, Kind.AMOUNT_DIFFERS: 1}


def test_an_amount_too_large_once_converted_is_left_as_it_is_and_noted() -> None:
    rates = {("EUR", "VND", "2026-11"): Decimal(1000000)}
    amounts, notes = amounts_now(ours(deposits=Decimal(10**9), ngr=Decimal(5)), rates, "VND")

    assert (amounts["deposits"], amounts["ngr"]) == ("1000000000", "5000000.0000")
    too_large = "EUR→VND 2026-11: 1000000, more than 1000000000 once converted"
    assert notes == [too_large, "EUR→VND 2026-11: 1000000"]
    assert notes[0].endswith(UNCONVERTED) and not notes[1].endswith(UNCONVERTED)


def test_cause_texts_show_amounts_as_the_api_does_at_their_currencys_decimals() -> None:
    # Amounts come from the database at four decimals: the texts show them as money_text does.
    charged = compare(
        theirs(deposits=Decimal(70), ngr=Decimal(30)),
        ours(deposits=Decimal("100.0000"), chargebacks=Decimal("30.0000"), ngr=Decimal("30.0000")),
        {},
        ALL,
    )
    assert [d for _, _, d in charged.causes] == ["deposits: the operator nets 30.00 of chargebacks out"]
    yen = compare(
        theirs(deposits=Decimal(7000), currency="JPY"),
        ours(deposits=Decimal("10000.0000"), chargebacks=Decimal("3E+3"), currency="JPY"),
        {},
        ALL,
    )
    assert [d for _, _, d in yen.causes] == ["deposits: the operator nets 3000 of chargebacks out"]

    def carried(ledger: str) -> str:
        item = compare(
            theirs(ngr=Decimal(1000), revshare=Decimal(250)),
            ours(
                ngr=Decimal(1000),
                revshare=Decimal("200.0000"),
                revshare_percent=Decimal(25),
                carry_in=Decimal("-200.5000"),
                ledger_currency=ledger,
            ),
            {(ledger, "EUR", "2026-11"): Decimal(1)},
            ALL,
        )
        return next(d for c, _, d in item.causes if c is Cause.NEGATIVE_CARRYOVER)

    assert carried("EUR") == "the affiliate's month carries in -200.50 of earlier losses"
    # The carry-in is the deal's currency's: named when the report's is another.
    assert carried("KWD") == "the affiliate's month carries in -200.500 KWD of earlier losses"
