"""URL templates with {macro} placeholders: compiled once, rendered per click with every value
URL-encoded, and the inbound check for placeholders a sender forgot to substitute."""

import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit

from clickback.core.limits import MAX_URL_LEN

# The macros an offer URL may use, and the click field each one stands for.
OFFER_MACROS: Mapping[str, str] = {
    "click_id": "click_id",
    "clickid": "click_id",
    "sub1": "sub1",
    "sub2": "sub2",
    "sub3": "sub3",
    "sub4": "sub4",
    "sub5": "sub5",
    "affiliate_id": "affiliate_id",
    "offer_id": "offer_id",
    "link": "link",
    "campaign": "campaign",
    "source": "source",
    "lp": "lp",
}

_PLACEHOLDER = re.compile(r"\{([A-Za-z0-9_]+)\}")
_URL_SAFE = re.compile(r"[A-Za-z0-9_.~-]*")
_LITERAL_SAFE = "".join(chr(c) for c in range(33, 127))
# Placeholder syntaxes of other platforms ({x}, {{x}}, [x], [[x]], #x#, %X%, ${x}; $x below), found anywhere
# in a value: a literal "{subacc4}" arriving instead of a value is the most common postback fault.
_UNREPLACED = re.compile(
    r"\{\{?\s*[A-Za-z_][\w.:\- =]*\}?\}"
    r"|\[\[?[A-Za-z_][\w.\-]*\]?\]"
    r"|#[A-Za-z_][\w.\-]*#"
    r"|%[A-Za-z_][\w.\-]*%"
    r"|\$\{?[A-Za-z_][\w.\-]*\}"
)

# Placeholders written with a bare dollar sign ($payout, $clickid$), in a template of ours: a
# dollar sign that starts a name, and is not itself after a letter, digit, "_" or "$" (a token
# "ab$cd", "US$" or "$5" is data). Only templates are checked for these: their author can write a
# dollar meant as data as %24, which an incoming value, already decoded, could not tell apart.
_DOLLAR_PLACEHOLDER = re.compile(r"(?<![A-Za-z0-9_$])\$[A-Za-z_][A-Za-z0-9_]*\$?")


class TemplateError(ValueError):
    """An offer URL template that cannot be used; the message says what to fix."""


@dataclass(frozen=True, slots=True)
class UrlTemplate:
    text: str
    host: str
    # Literal text and click fields alternate: (literal, field, literal, field, ..., literal).
    _parts: tuple[str, ...]

    @property
    def passes_click_id(self) -> bool:
        """Whether the offer gets the click ID: without it the advertiser has none to send back
        in a postback (only the pixel, which reads its cookie, can attribute the click)."""
        return "click_id" in self._parts[1::2]

    def render(self, values: Mapping[str, str]) -> str:
        parts = self._parts
        out = [parts[0]]
        for i in range(1, len(parts), 2):
            value = values.get(parts[i], "")
            # Most values (click IDs, numbers, plain sub IDs) need no escaping; checking is cheaper.
            out.append(value if _URL_SAFE.fullmatch(value) else quote(value, safe=""))
            out.append(parts[i + 1])
        return "".join(out)


def compile_template(text: str) -> UrlTemplate:
    if len(text) > MAX_URL_LEN:
        raise TemplateError(f"the URL is longer than {MAX_URL_LEN} characters")
    pieces = _PLACEHOLDER.split(text)
    known = ", ".join("{" + m + "}" for m in OFFER_MACROS)
    for name in pieces[1::2]:
        if name not in OFFER_MACROS:
            raise TemplateError(f"unknown macro {{{name}}}; known macros: {known}")
    # A brace left over ({click-id}, {{click_id}}) would reach the offer as text and lose the click.
    stray = next((p for p in pieces[::2] if "{" in p or "}" in p), None)
    if stray is not None:
        raise TemplateError(f"unknown macro or stray brace in {stray!r}; known macros: {known}")
    # The host must be literal so that no click parameter can steer the redirect elsewhere.
    literal = _PLACEHOLDER.sub("x", text)
    if any(ch in text for ch in "\r\n\t ") or any(ord(ch) < 32 or ord(ch) == 127 for ch in text):
        raise TemplateError("the URL contains spaces or control characters")
    parts = urlsplit(literal)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TemplateError("the URL must start with http:// or https:// and name a host")
    head = text.split("//", 1)[1].split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
    if "{" in head or "@" in head or "\\" in text:
        raise TemplateError("the host part of the URL must be written out, without macros")
    # Literal text goes out in a Location header, which must be ASCII: percent-encode the rest.
    fields = tuple(
        OFFER_MACROS[name] if i % 2 else quote(name, safe=_LITERAL_SAFE) for i, name in enumerate(pieces)
    )
    return UrlTemplate(text, parts.hostname, fields)


# A bare `$name` (shell-like templates): only as the whole value, as "$100" or "US$5" are values.
_DOLLAR = re.compile(r"\$[A-Za-z_]\w*")
# A placeholder the sender URL-encoded once or twice more than it decoded: `%257Bclick_id%257D`
# arrives as `%7Bclick_id%7D`.
_ENCODINGS_UNDONE = 2


def find_unreplaced_macro(value: str) -> str | None:
    """A placeholder of another syntax (`{x}`, `{{x}}`, `[x]`, `%x%`…) in `value`."""
    match = _UNREPLACED.search(value)
    return match.group(0) if match else None


def find_unsent_macro(value: str) -> str | None:
    """As find_unreplaced_macro, in a value a postback received, where a bare `$name`, or a
    placeholder URL-encoded once or twice more than decoded, is also one the sender's platform
    never replaced. (In a template's text a `%24` is how a dollar sign is written as data.)"""
    match = _UNREPLACED.search(value)
    if match:
        return match.group(0)
    if _DOLLAR.fullmatch(value.strip()):
        return value.strip()
    decoded = value
    for _ in range(_ENCODINGS_UNDONE):
        if "%" not in decoded:
            break
        decoded = unquote(decoded)
        match = _UNREPLACED.search(decoded) or _DOLLAR.fullmatch(decoded.strip())
        if match:
            return f"{match.group(0).strip()} (URL-encoded)"
    return None


def find_dollar_placeholder(text: str) -> str | None:
    """The first `$name` or `$name$` in a template's text as written (see _DOLLAR_PLACEHOLDER)."""
    match = _DOLLAR_PLACEHOLDER.search(text)
    return match.group(0) if match else None
