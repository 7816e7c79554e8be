"""The tracking pixel's rules (ADR 12): the click-ID cookie a click sets, and reading it back.

The pixel is a postback fired by the user's browser from the advertiser's thank-you page, so what
it carries is public: it names the offer by a public code, never the advertiser's token.
"""

import re
from urllib.parse import unquote_to_bytes

from clickback.core.clickids import CLICK_ID_LEN
from clickback.core.redact import SECRET_NAMES

COOKIE_NAME = "cb_click"
# Only the pixel's requests carry it: nothing else on the tracking domain reads it.
COOKIE_PATH = "/p/"
PIXEL_CODE_LEN = 16
# Every value a cookie header may hold for us is a click ID: anything longer is not ours.
_COOKIE = re.compile(
    r"(?:^|;)\s*" + COOKIE_NAME + r"=([-0-9A-Za-z_]{1," + str(CLICK_ID_LEN) + r"})\s*(?:;|$)"
)
# The names that carry the advertiser's token on a postback.
_SECRETS = tuple(name.encode() for name in SECRET_NAMES)


def cookie_attributes(https: bool, max_age_seconds: int) -> str:
    """What follows `cb_click=<click ID>` in the redirect's Set-Cookie.

    The pixel request goes to the tracking domain from the advertiser's page: a cross-site
    request, on which browsers send only `SameSite=None` cookies, and those only with `Secure`
    (so only over https). Over plain http (a test set-up) `SameSite=None` without `Secure` is
    refused outright by current browsers, so the cookie falls back to `Lax`, which they send on
    top-level visits to the tracking domain only: the query-string click ID is the pixel's
    method there."""
    site = "SameSite=None; Secure" if https else "SameSite=Lax"
    return f"; Path={COOKIE_PATH}; Max-Age={max_age_seconds}; HttpOnly; {site}"


def click_id_from_cookie(header: str) -> str:
    """The click ID in a Cookie header, or ""; the first one when the browser sent several."""
    if COOKIE_NAME not in header:
        return ""
    found = _COOKIE.search(header)
    return found.group(1) if found else ""


def without_secrets(query: bytes) -> bytes:
    """The query with any token removed, before it is read or logged: a token on a pixel URL sits
    in a public page, and the pixel never needs it."""
    fields = query.split(b"&")
    kept = [f for f in fields if _name(f) not in _SECRETS]
    return query if len(kept) == len(fields) else b"&".join(kept)


def _name(field: bytes) -> bytes:
    """A query field's name as intake reads it (unescaped, trimmed, lower case)."""
    return unquote_to_bytes(field.partition(b"=")[0].replace(b"+", b" ")).strip().lower()
