"""Whole numbers written by outsiders: ASCII digits, nothing else."""


def is_digits(text: str) -> bool:
    """Whether `text` is one or more of the digits 0 to 9. `str.isdigit` is also true of "²" and
    of other scripts' digits, which `int()` refuses (a 500 where a reason code was due) or reads
    as numbers no sender meant."""
    return text.isascii() and text.isdigit()
