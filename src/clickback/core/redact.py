"""What the postback log keeps of a secret: the advertiser's token (under any of its names) is
replaced by its last characters, so a manager can still tell an old token from the current one
without the log (or a backup of it, or whoever reads the API) being able to post as the
advertiser. Everything else stays as it arrived."""

import re
from urllib.parse import quote, unquote_plus

from clickback.core.intake import ALIASES

SECRET_NAMES = frozenset(ALIASES["token"])
# Fewer characters than this are hidden whole: the tail of a short value gives too much away.
SHOWN_FROM = 16
SHOWN = 4
_NAMES = "|".join(map(re.escape, sorted(SECRET_NAMES)))
# A JSON member named like a secret (names are trimmed and case-blind, as intake reads them), its
# value a string (perhaps cut off by the log's limit) or a number.
_JSON_SECRET = re.compile(
    r'("\s*(?:' + _NAMES + r')\s*"\s*:\s*)(?:"((?:[^"\\]|\\.)*)(?:"|$)|(-?[0-9][0-9.eE+-]*))', re.IGNORECASE
)


def masked(value: str) -> str:
    return "***" + value[-SHOWN:] if len(value) >= SHOWN_FROM else "***"


def redact_query(text: str) -> str:
    """A query string (or form body) with every secret parameter's value masked, the rest of it
    byte for byte as sent."""
    pieces = text.split("&")
    for i, piece in enumerate(pieces):
        name, sep, value = piece.partition("=")
        if sep and value and unquote_plus(name).strip().lower() in SECRET_NAMES:
            pieces[i] = f"{name}={quote(masked(unquote_plus(value)), safe='*')}"
    return "&".join(pieces)


def redact_body(text: str) -> str:
    """A body as the postback log keeps it: in a JSON object the secret members' values masked
    in place (the rest as sent, escapes included), any other body treated as a form."""
    if not text.lstrip().startswith("{"):
        return redact_query(text)
    return _JSON_SECRET.sub(lambda m: f'{m.group(1)}"{masked(m.group(2) or m.group(3) or "")}"', text)
