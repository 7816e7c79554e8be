"""What the postback log keeps of a secret: the advertiser's token (under any of its names) is
replaced by its last characters, so a manager can still tell an old token from the current one
without the log (or a backup of it, or whoever reads the API) being able to post as the
advertiser. Everything else stays as it arrived."""

import json
import re
from urllib.parse import quote, unquote_plus

from clickback.core.intake import ALIASES

SECRET_NAMES = frozenset(ALIASES["token"])
# Fewer characters than this are hidden whole: the tail of a short value gives too much away.
SHOWN_FROM = 16
SHOWN = 4
# What may come before a JSON body's "{": whitespace, and a byte order mark (intake allows one).
_JSON_LEADING = "\ufeff \t\r\n"
# A JSON member (its name a string as sent, escapes included), its value a string (perhaps cut off
# by the log's limit) or a number. The name is decoded before it is compared: "\u0074oken" is a
# token to intake's JSON reader, so it is one here.
_JSON_MEMBER = re.compile(r'("((?:[^"\\]|\\.)*)"\s*:\s*)(?:"((?:[^"\\]|\\.)*)(?:"|$)|(-?[0-9][0-9.eE+-]*))')


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
    if not text.lstrip(_JSON_LEADING).startswith("{"):
        return redact_query(text)
    return _JSON_MEMBER.sub(_masked_member, text)


def _masked_member(m: re.Match[str]) -> str:
    if _json_text(m.group(2)).strip().lower() not in SECRET_NAMES:
        return m.group(0)
    return f'{m.group(1)}"{masked(_json_text(m.group(3)) if m.group(3) is not None else m.group(4))}"'


def _json_text(raw: str) -> str:
    """A JSON string's text from between its quotes; as sent if its escapes do not decode."""
    if "\\" not in raw:  # nearly every name and value: nothing to decode, no parser run
        return raw
    try:
        decoded = json.loads(f'"{raw}"')
    except ValueError:
        return raw
    return decoded if isinstance(decoded, str) else raw
