"""Whole numbers written by outsiders: ASCII digits, nothing else."""


def is_digits(text: str) -> bool:
    """Whether `text` is one or more of the digits 0 to 9. `str.isdigit` is also true of "²" and
    of other scripts' digits, which `int()` refuses (a 500 where a reason code was due) or reads
    as numbers no sender meant."""
    return text.isascii() and text.isdigit()


# The database's INTEGER: every row id is one, and a larger number sent to PostgreSQL fails the
# whole query (SQLite would only find nothing).
MAX_ID = 2**31 - 1


def id_of(text: str) -> int | None:
    """A row id as outsiders write it, 1 to MAX_ID in ASCII digits; None for anything else."""
    if not is_digits(text) or len(text) > len(str(MAX_ID)):
        return None
    value = int(text)
    return value if 0 < value <= MAX_ID else None
