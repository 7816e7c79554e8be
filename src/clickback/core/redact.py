"""What the postback log and a postback's reply keep of a secret: the advertiser's token (under
any of its names, or any name that looks like a credential's, or under no credential's name at
all) and signing secret are replaced by their last characters, so a manager can still tell an
old token from the current one without the log (or a backup of it, or whoever reads the API) being
able to post as the advertiser. Everything else stays as it arrived."""

import json
import re
from collections.abc import Iterable
from dataclasses import replace
from urllib.parse import quote, unquote_plus

from clickback.core.intake import ALIASES, RawPostback
from clickback.core.model import Advertiser, Catalog, token_digest
from clickback.core.outcome import Outcome

SECRET_NAMES = frozenset(ALIASES["token"])
# Names a sender may put a credential under, misspelt or another platform's (tokn, api_key,
# apikey, X-Api-Key, auth, password, sig): their values are masked as the token's are. No name
# intake reads but the token's looks like one (tests/core/test_redact.py checks).
_CREDENTIAL_NAME = re.compile(r"to?ke?n|secret|pass|pwd|auth|key|cred|sig")
# A run of the characters clickback's tokens and signing secrets are made of (token_urlsafe,
# token_hex), long enough to be one: where the token may hide under any name, or none.
_KEYLIKE = re.compile(r"[A-Za-z0-9_-]{16,}")
# Fewer characters than this are hidden whole: the tail of a short value gives too much away.
SHOWN_FROM = 16
SHOWN = 4
_MASKED = re.compile(rf"\*\*\*(?:.{{{SHOWN}}})?", re.DOTALL)
# What may come before a JSON body's "{": whitespace, and a byte order mark (intake allows one).
_JSON_LEADING = "\ufeff \t\r\n"
# A JSON member (its name a string as sent, escapes included), its value a string (perhaps cut off
# by the log's limit) or a number. The name is decoded before it is compared: "\u0074oken" is a
# token to intake's JSON reader, so it is one here.
_JSON_MEMBER = re.compile(r'("((?:[^"\\]|\\.)*)"\s*:\s*)(?:"((?:[^"\\]|\\.)*)(?:"|$)|(-?[0-9][0-9.eE+-]*))')


def masked(value: str) -> str:
    if _MASKED.fullmatch(value):
        # Already what this gives (a log row masked again by a migration): its tail is the
        # secret's, kept, not hidden as a short value would be.
        return value
    return "***" + value[-SHOWN:] if len(value) >= SHOWN_FROM else "***"


def is_secret_name(name: str) -> bool:
    """Whether a parameter of this name (as intake decodes it) is the token or looks like a
    credential: its value is never kept."""
    key = name.strip().lower()
    return key in SECRET_NAMES or _CREDENTIAL_NAME.search(key) is not None


def redact_query(text: str) -> str:
    """A query string (or form body) with every secret parameter's value masked, the rest of it
    byte for byte as sent."""
    pieces = text.split("&")
    for i, piece in enumerate(pieces):
        name, sep, value = piece.partition("=")
        if sep and value and is_secret_name(unquote_plus(name)):
            pieces[i] = f"{name}={quote(masked(unquote_plus(value)), safe='*')}"
    return "&".join(pieces)


def redact_body(text: str) -> str:
    """A body as the postback log keeps it: in a JSON object the secret members' values masked
    in place (the rest as sent, escapes included), any other body treated as a form."""
    if not text.lstrip(_JSON_LEADING).startswith("{"):
        return redact_query(text)
    return _JSON_MEMBER.sub(_masked_member, text)


def redact_text(text: str) -> str:
    """Free text that may hold what was sent (a refusal's detail, an ignored parameter's name, which
    is a whole body when a JSON body came as a form): its secret parameters and JSON members masked,
    wherever in it they are."""
    return _JSON_MEMBER.sub(_masked_member, redact_query(text))


def known_secrets(raw: RawPostback, catalog: Catalog, advertiser_id: int | None) -> tuple[str, ...]:
    """The tokens and signing secrets to mask wherever they appear in what is kept or sent back
    of `raw`: those of the advertiser it resolved to, and of any advertiser whose token it holds,
    or signing secret it holds, under whatever name (a misspelt one, inside a JSON body read as a
    form)."""
    found: dict[int, Advertiser] = {}
    if advertiser_id is not None and advertiser_id in catalog.advertisers:
        found[advertiser_id] = catalog.advertisers[advertiser_id]
    texts = (raw.query.decode("utf-8", "replace"), raw.body.decode("utf-8", "replace"))
    for run in keylike_runs(*texts):
        digest = token_digest(run)
        for by_digest in (catalog.advertisers_by_token, catalog.advertisers_by_secret):
            advertiser = by_digest.get(digest)
            if advertiser is not None:
                found[advertiser.id] = advertiser
    return longest_first(s for a in found.values() for s in (a.token, a.previous_token, a.signing_secret))


def longest_first(secrets: Iterable[str]) -> tuple[str, ...]:
    """Secrets (the empty left out) in the order mask_known takes them: the longest first, so
    none masks part of another."""
    return tuple(sorted({s for s in secrets if s}, key=lambda s: (-len(s), s)))


def mask_known(text: str, secrets: Iterable[str]) -> str:
    """`text` with every occurrence of each secret masked, in any letter case (intake lowercases
    parameter names, and a whole body may have become one)."""
    shown = text
    for secret in secrets:
        if len(secret) >= SHOWN and secret.lower() in shown.lower():
            shown = re.sub(re.escape(secret), lambda m: masked(m.group(0)), shown, flags=re.IGNORECASE)
    return shown


def scrubbed(outcome: Outcome, secrets: Iterable[str]) -> Outcome:
    """An outcome as it may be sent back or logged: no secret in its detail or ignored names."""
    secrets = tuple(secrets)
    if not outcome.detail and not outcome.ignored:
        return outcome
    return replace(
        outcome,
        detail=mask_known(redact_text(outcome.detail), secrets),
        ignored=tuple(mask_known(redact_text(name), secrets) for name in outcome.ignored),
    )


def keylike_runs(*sent: str) -> set[str]:
    """Every run of token characters in what was sent (a query, a body; or what the log keeps of
    them), as it is, percent-decoded, and (a JSON object, whatever its content type) as JSON
    decodes its strings."""
    texts = list(sent)
    texts += [unquote_plus(t) for t in sent if "%" in t or "+" in t]
    for text in sent:
        if "\\" in text and text.lstrip(_JSON_LEADING).startswith("{"):
            try:
                doc = json.loads(text.lstrip(_JSON_LEADING))
            except (ValueError, RecursionError):
                doc = None
            if isinstance(doc, dict):
                texts += [str(part) for item in doc.items() for part in item]
    return {run for text in texts for run in _KEYLIKE.findall(text)}


def _masked_member(m: re.Match[str]) -> str:
    if not is_secret_name(_json_text(m.group(2))):
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
