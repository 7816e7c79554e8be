"""Amounts and currencies: as they arrive from outside, their precision, and how they are shown."""

import functools
import re
from collections.abc import Mapping
from decimal import Decimal

from clickback.core.limits import MAX_PAYOUT, PAYOUT_DECIMALS

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
# ISO 4217 minor units other than 2. HUF is 2 in ISO 4217 but paid in whole forints (no coin
# below 5 Ft since 1999): clickback has always rounded it to 0, and the docs promise that.
_MINOR_UNITS: Mapping[str, int] = {
    **dict.fromkeys("BIF CLP DJF GNF HUF ISK JPY KMF KRW PYG RWF UGX VND VUV XAF XOF XPF".split(), 0),
    **dict.fromkeys("BHD IQD JOD KWD LYD OMR TND".split(), 3),
}


def minor_units(currency: str) -> int:
    """Decimals of the currency's smallest unit (2 for a code it does not know)."""
    return _MINOR_UNITS.get(currency, 2)


def minor_unit(currency: str | None) -> Decimal:
    """The currency's smallest unit as an amount (0.01 for none, or a code it does not know):
    differences under it are not differences."""
    return Decimal(1).scaleb(-minor_units(currency)) if currency else Decimal("0.01")


def finer_than_minor_unit(amount: Decimal, currency: str) -> str | None:
    """Why `amount` cannot be paid in `currency`, or None when it can."""
    places = minor_units(currency)
    unit = Decimal(1).scaleb(-places)
    if amount == amount.quantize(unit):
        return None
    if places == 0:
        return f"{currency} has no decimals: {amount:f} is finer than 1"
    return f"{currency} amounts have {places} decimals: {amount:f} is finer than {unit}"


@functools.cache
def _number(decimals: int) -> re.Pattern[str]:
    # Digits with an optional dot: no exponent, sign, comma, NaN or Infinity reaches Decimal.
    return re.compile(rf"-?[0-9]{{1,12}}(\.[0-9]{{1,{decimals}}})?")


def parse_amount(raw: str, *, signed: bool = False, decimals: int = PAYOUT_DECIMALS) -> Decimal | None:
    """`signed` admits a leading minus (a period's net gaming revenue may be a loss); `decimals`,
    more decimals than an amount's (an exchange rate's)."""
    text = raw.strip()
    if not _number(decimals).fullmatch(text) or (text.startswith("-") and not signed):
        return None
    amount = Decimal(text)
    return amount if abs(amount) <= MAX_PAYOUT else None


def written_plainly(raw: str, decimals: int = PAYOUT_DECIMALS) -> bool:
    """Whether a number's text is as parse_amount reads one (its range aside)."""
    return _number(decimals).fullmatch(raw.strip()) is not None


def plain(number: Decimal) -> str:
    """A number as digits with a dot, as amounts are read: never in exponent notation, which is
    how str() writes some Decimals (1E-8, and 1.5E+2 for one read from that text)."""
    return f"{number:f}"


def parse_period(raw: str) -> str | None:
    """A reporting month, YYYY-MM."""
    text = raw.strip()
    return text if _PERIOD.fullmatch(text) else None


def parse_currency(raw: str) -> str | None:
    code = raw.strip()
    # ASCII first: upper() maps some other letters onto ASCII ones (long s, dotless i).
    return code.upper() if code.isascii() and code.upper() in CURRENCIES else None


def money_text(amount: Decimal, currency: str | None) -> str:
    """An amount as people read it in its currency: the currency's decimals (JPY 57347, KWD
    1.000, EUR 10.00), more only where the amount has non-zero digits there (a JPY deposit
    reported as 12000.5 shows 12000.5: nothing is hidden). Without a currency (no deal to
    name one), two decimals."""
    least = 2 if currency is None else minor_units(currency)
    places = max(least, -amount.normalize().as_tuple().exponent)  # type: ignore[operator]
    return f"{amount:.{places}f}"
