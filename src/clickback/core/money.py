"""Payout amounts and currencies as they arrive from outside."""

import re
from decimal import Decimal

from clickback.core.limits import MAX_PAYOUT, PAYOUT_DECIMALS

# Digits with an optional dot: no exponent, sign, comma, NaN or Infinity reaches Decimal.
_AMOUNT = re.compile(rf"-?[0-9]{{1,12}}(\.[0-9]{{1,{PAYOUT_DECIMALS}}})?")
_PERIOD = re.compile(r"(20[0-9]{2})-(0[1-9]|1[0-2])")

# ISO 4217 active codes (2026), plus XAU/XAG-style units left out on purpose: payouts are money.
CURRENCIES = frozenset(
    """
    AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN BWP BYN
    BZD CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS
    GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW
    KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD
    NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD
    SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD UYU UZS VES
    VND VUV WST XAF XCD XCG XOF XPF YER ZAR ZMW ZWG
    """.split()
)


def parse_amount(raw: str, *, signed: bool = False) -> Decimal | None:
    """`signed` admits a leading minus (a period's net gaming revenue may be a loss)."""
    text = raw.strip()
    if not _AMOUNT.fullmatch(text) or (text.startswith("-") and not signed):
        return None
    amount = Decimal(text)
    return amount if abs(amount) <= MAX_PAYOUT else None


def parse_period(raw: str) -> str | None:
    """A reporting month, YYYY-MM."""
    text = raw.strip()
    return text if _PERIOD.fullmatch(text) else None


def parse_currency(raw: str) -> str | None:
    code = raw.strip()
    # ASCII first: upper() maps some other letters onto ASCII ones (long s, dotless i).
    return code.upper() if code.isascii() and code.upper() in CURRENCIES else None


def money_text(amount: Decimal) -> str:
    """Amounts as senders and spreadsheets expect them: at least two decimals, no noise after."""
    places = max(2, -amount.normalize().as_tuple().exponent)  # type: ignore[operator]
    return f"{amount:.{places}f}"
