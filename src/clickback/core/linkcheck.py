"""Whether an offer's URL still works: the verdict of one check from what was observed (status,
redirect chain, time, the start of the page), the next hop of a redirect chain, the soft-404
phrases, and the URL checked (the offer URL with a marked test click ID).

An offer that stopped working costs the affiliate every click sent to it: the advertiser's
landing page answering 404, a redirect chain going round, or, most often in iGaming, a page that
answers 200 and says "this offer has expired" in the player's language. The checker cannot tell a
real landing page from a polite error page by its status, so it reads the page's visible text.
"""

import html
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import urljoin, urlsplit

from clickback.core.limits import MAX_URL_LEN
from clickback.core.macros import OFFER_MACROS, UrlTemplate

# Redirects followed before giving up (browsers allow about 20; an offer needing more than a few
# is broken for the user's patience anyway).
MAX_REDIRECTS = 10
# A URL visited this many times in one chain is a loop. Not twice: a cookie check sends the
# browser away and back to the same URL once, then on.
LOOP_VISITS = 3
# Bytes of the final page read and searched: soft-404 pages say it near the top.
MAX_BODY_BYTES = 64 * 1024
# Answered, but the user waited longer than this: the check says "slow".
DEFAULT_SLOW_MS = 5000
MAX_HINT_LEN = 300
MAX_ERROR_LEN = 512
MAX_CHAIN_HOPS = MAX_REDIRECTS + 1


class Verdict(StrEnum):
    OK = "ok"
    SLOW = "slow"
    SOFT_404 = "soft_404"
    BROKEN = "broken"


class Code(StrEnum):
    """Why, finer than the verdict: what a person does next differs for each."""

    OK = "ok"
    SLOW = "slow"
    SOFT_404 = "soft_404"
    HTTP_ERROR = "http_error"
    TIMEOUT = "timeout"
    CONNECTION_ERROR = "connection_error"
    REFUSED_ADDRESS = "refused_address"
    REDIRECT_LOOP = "redirect_loop"
    TOO_MANY_REDIRECTS = "too_many_redirects"
    BAD_REDIRECT = "bad_redirect"


VERDICT_OF: Mapping[Code, Verdict] = {
    Code.OK: Verdict.OK,
    Code.SLOW: Verdict.SLOW,
    Code.SOFT_404: Verdict.SOFT_404,
} | {code: Verdict.BROKEN for code in Code if code not in (Code.OK, Code.SLOW, Code.SOFT_404)}


class Failure(StrEnum):
    """Why the fetcher got no answer (facts of the network, judged below)."""

    TIMEOUT = "timeout"
    CONNECTION = "connection"
    REFUSED = "refused"  # the SSRF guard: a private, loopback or link-local address
    UNRESOLVED = "unresolved"  # the host name does not resolve: a connection_error


@dataclass(frozen=True, slots=True)
class Policy:
    """How the checks are made (delivery/linkcheck.py)."""

    # Each check's requests together, at most this long (a redirect chain shares it).
    timeout: float = 15.0
    slow_ms: int = DEFAULT_SLOW_MS
    concurrency: int = 8
    host_gap: float = 1.0


@dataclass(frozen=True, slots=True)
class Hop:
    """One request of the chain: its URL and answer (a redirect's Location as sent, if any)."""

    url: str
    status: int
    location: str = ""


@dataclass(frozen=True, slots=True)
class Observed:
    """What one check saw. `failure` is set when the last request got no answer."""

    url: str
    chain: tuple[Hop, ...]
    elapsed_ms: int
    body: str = ""
    content_type: str = ""
    failure: Failure | None = None
    error: str = ""


@dataclass(frozen=True, slots=True)
class Outcome:
    verdict: Verdict
    code: Code
    hint: str

    @property
    def broken(self) -> bool:
        return self.verdict is Verdict.BROKEN


@dataclass(frozen=True, slots=True)
class Stop:
    """The chain ends here without a final answer (a loop, too long, a target not to follow)."""

    code: Code
    target: str


# --- the URL checked ---------------------------------------------------------------------------


def checked_url(template: UrlTemplate, offer_id: int, click_id: str) -> str:
    """The offer URL as a click renders it (core/clicks.take_click), with the test click ID and
    every other macro empty but {offer_id}: the check is of the offer, not of one affiliate's link."""
    values = {field: "" for field in OFFER_MACROS.values()}
    return template.render(values | {"click_id": click_id, "offer_id": str(offer_id)})


# --- following redirects -----------------------------------------------------------------------


def next_hop(chain: tuple[Hop, ...]) -> str | Stop | None:
    """After the chain's last answer: the next URL to request, a Stop, or None (a final answer)."""
    last = chain[-1]
    if not (300 <= last.status < 400 and last.location):
        return None
    try:
        target = urljoin(last.url, last.location.strip())
        parts = urlsplit(target)
        parts.port  # noqa: B018 - raises ValueError for a port that is no number
    except ValueError:  # "http://[::1", "http://host:port": no URL a browser could follow
        return Stop(Code.BAD_REDIRECT, last.location[:MAX_URL_LEN])
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname or len(target) > MAX_URL_LEN:
        return Stop(Code.BAD_REDIRECT, target[:MAX_URL_LEN])
    if sum(hop.url == target for hop in chain) >= LOOP_VISITS - 1:
        return Stop(Code.REDIRECT_LOOP, target)
    if len(chain) > MAX_REDIRECTS:
        # Longer than any real chain: a loop whose URLs change (a counter, a timestamp) looks so.
        return Stop(Code.TOO_MANY_REDIRECTS, target)
    return target


# --- the verdict -------------------------------------------------------------------------------


def judge(seen: Observed, slow_ms: int = DEFAULT_SLOW_MS) -> Outcome:
    if seen.failure is not None:
        return _failed(seen)
    if not seen.chain:
        return Outcome(Verdict.BROKEN, Code.CONNECTION_ERROR, "no request was made")
    step = next_hop(seen.chain)
    if isinstance(step, Stop):
        return _stopped(step, len(seen.chain))
    last = seen.chain[-1]
    if last.status >= 400:
        return Outcome(Verdict.BROKEN, Code.HTTP_ERROR, _http_hint(last.status, len(seen.chain)))
    if 300 <= last.status < 400:
        return Outcome(Verdict.BROKEN, Code.BAD_REDIRECT, f"HTTP {last.status} without a Location to follow")
    if last.status < 200:
        return Outcome(Verdict.BROKEN, Code.HTTP_ERROR, f"HTTP {last.status} is no answer a browser shows")
    found = soft_404(seen.body, seen.content_type)
    if found is not None:
        phrase, language = found
        hint = f'the page answers {last.status} but says "{phrase}" ({language}): the offer is probably over'
        return Outcome(Verdict.SOFT_404, Code.SOFT_404, hint[:MAX_HINT_LEN])
    if seen.elapsed_ms > slow_ms:
        hint = f"answered in {seen.elapsed_ms / 1000:.1f} s (slow above {slow_ms / 1000:g} s): users leave"
        return Outcome(Verdict.SLOW, Code.SLOW, hint)
    redirects = len(seen.chain) - 1
    via = f" after {redirects} redirect{'s' * (redirects != 1)}" if redirects else ""
    return Outcome(Verdict.OK, Code.OK, f"HTTP {last.status}{via} in {seen.elapsed_ms} ms")


def _failed(seen: Observed) -> Outcome:
    hop = len(seen.chain) + 1
    where = f" (at redirect {hop - 1})" if hop > 1 else ""
    detail = f": {seen.error}" if seen.error else ""
    if seen.failure is Failure.TIMEOUT:
        code, hint = Code.TIMEOUT, f"no complete answer in time{where}{detail}"
    elif seen.failure is Failure.REFUSED:
        code = Code.REFUSED_ADDRESS
        hint = (
            f"not requested{where}: the address is not public{detail}; if it is meant to be reached,"
            " add it to CLICKBACK_OUTBOUND_ALLOW"
        )
    elif seen.failure is Failure.UNRESOLVED:
        code = Code.CONNECTION_ERROR
        hint = (
            f"no connection{where}{detail}: check the host name in the URL, or ask the advertiser"
            " whether the domain moved"
        )
    else:
        code, hint = Code.CONNECTION_ERROR, f"no connection{where}{detail}"
    return Outcome(Verdict.BROKEN, code, hint[:MAX_HINT_LEN])


def _stopped(stop: Stop, hops: int) -> Outcome:
    target = stop.target[:120]
    if stop.code is Code.REDIRECT_LOOP:
        hint = f"the redirects go round: {target} again after {hops} requests"
    elif stop.code is Code.TOO_MANY_REDIRECTS:
        hint = f"more than {MAX_REDIRECTS} redirects, the last to {target}"
    else:
        hint = f"a redirect to {target}: browsers cannot follow it to a page"
    return Outcome(Verdict.BROKEN, stop.code, hint[:MAX_HINT_LEN])


def _http_hint(status: int, hops: int) -> str:
    where = f" after {hops - 1} redirect{'s' * (hops != 2)}" if hops > 1 else ""
    if status in (404, 410):
        return f"HTTP {status}{where}: the page is gone; ask the advertiser for the offer's new URL"
    if status in (401, 403):
        return f"HTTP {status}{where}: the page refuses visitors (geo or bot blocking, or the offer closed)"
    if status >= 500:
        return f"HTTP {status}{where}: the advertiser's server is failing"
    return f"HTTP {status}{where}: users see an error page"


# --- soft 404 ----------------------------------------------------------------------------------

# Phrases error pages use, by language (ISO 639-1), written as they appear; matched on visible text
# normalised by _normal (case, accents as written, "ё" as "е", curly apostrophes). Each is specific
# enough not to appear on a working landing page ("expired" alone would: "bonus expires in 7 days").
SOFT_404_PHRASES: Mapping[str, tuple[str, ...]] = {
    "en": (
        "offer expired",
        "offer has expired",
        "offer is no longer available",
        "no longer available",
        "page not found",
        "invalid link",
        "link is invalid",
        "link has expired",
        "link expired",
        "campaign ended",
        "campaign has ended",
        "offer not found",
        "offer is not available",
    ),
    "de": (
        "angebot abgelaufen",
        "angebot ist abgelaufen",
        "seite nicht gefunden",
        "ungültiger link",
        "link ist ungültig",
        "nicht mehr verfügbar",
        "kampagne beendet",
        "aktion beendet",
    ),
    "es": (
        "oferta expirada",
        "oferta caducada",
        "la oferta ha expirado",
        "página no encontrada",
        "enlace no válido",
        "enlace inválido",
        "ya no está disponible",
        "campaña finalizada",
        "promoción finalizada",
    ),
    "pt": (
        "oferta expirou",
        "página não encontrada",
        "link inválido",
        "não está mais disponível",
        "já não está disponível",
        "campanha encerrada",
        "oferta encerrada",
    ),
    "it": (
        "offerta scaduta",
        "pagina non trovata",
        "link non valido",
        "non è più disponibile",
        "campagna terminata",
        "promozione terminata",
    ),
    "fr": (
        "offre expirée",
        "offre a expiré",
        "page introuvable",
        "page non trouvée",
        "lien invalide",
        "lien non valide",
        "n'est plus disponible",
        "campagne terminée",
    ),
    "ru": (
        "предложение истекло",
        "срок действия предложения истек",
        "страница не найдена",
        "недействительная ссылка",
        "ссылка недействительна",
        "больше не доступно",
        "больше не доступна",
        "акция завершена",
        "кампания завершена",
    ),
    "tr": (
        "teklifin süresi doldu",
        "kampanyanın süresi doldu",
        "sayfa bulunamadı",
        "geçersiz bağlantı",
        "geçersiz link",
        "artık mevcut değil",
        "kampanya sona erdi",
    ),
    "pl": (
        "oferta wygasła",
        "nie znaleziono strony",
        "strona nie została znaleziona",
        "nieprawidłowy link",
        "link jest nieprawidłowy",
        "nie jest już dostępna",
        "nie jest już dostępny",
        "kampania zakończona",
    ),
    "sv": (
        "erbjudandet har gått ut",
        "sidan hittades inte",
        "sidan kunde inte hittas",
        "ogiltig länk",
        "inte längre tillgänglig",
        "kampanjen har avslutats",
    ),
    "fi": (
        "tarjous on päättynyt",
        "tarjous on vanhentunut",
        "sivua ei löytynyt",
        "sivua ei löydy",
        "virheellinen linkki",
        "ei ole enää saatavilla",
        "kampanja on päättynyt",
    ),
    "no": (
        "tilbudet er utløpt",
        "siden ble ikke funnet",
        "finner ikke siden",
        "ugyldig lenke",
        "ikke lenger tilgjengelig",
        "kampanjen er avsluttet",
    ),
    "ja": (
        "ページが見つかりません",
        "お探しのページは見つかりませんでした",
        "このオファーは終了しました",
        "オファーの有効期限が切れました",
        "無効なリンク",
        "リンクが無効です",
        "キャンペーンは終了しました",
    ),
}

# A tag ends at its ">" or where the next "<" begins: `[^<>]` keeps each attempt short, so a hostile
# page of 64 KiB of "<" costs milliseconds, not the seconds `[^>]*` took (quadratic).
_HIDDEN = re.compile(
    r"<(script|style|noscript|template|svg)\b[^<>]*>.*?(</\1\s*>|\Z)|<!--.*?(-->|\Z)", re.I | re.S
)
_TAG = re.compile(r"<[^<>]*>")
_SPACE = re.compile(r"\s+")


def _normal(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).casefold()
    return _SPACE.sub(" ", text.replace("ё", "е").replace("’", "'").replace("ʼ", "'"))


_LANGUAGE_OF: Mapping[str, tuple[str, str]] = {
    _normal(phrase): (phrase, language)
    for language, phrases in SOFT_404_PHRASES.items()
    for phrase in phrases
}
# Longest first, so "offer has expired" is named rather than a shorter phrase inside it.
_PHRASE = re.compile("|".join(re.escape(p) for p in sorted(_LANGUAGE_OF, key=len, reverse=True)))


def visible_text(page: str) -> str:
    """The text a person sees (titles and body), without scripts, styles, comments and tags."""
    text = _TAG.sub(" ", _HIDDEN.sub(" ", page[:MAX_BODY_BYTES]))
    return _SPACE.sub(" ", html.unescape(text)).strip()


def soft_404(page: str, content_type: str = "text/html") -> tuple[str, str] | None:
    """The error phrase a page answering 200 shows (as written in the list, and its language), or
    None. Only text pages: an image or a download says nothing."""
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind and not (kind.startswith("text/") or kind in ("application/xhtml+xml", "")):
        return None
    match = _PHRASE.search(_normal(visible_text(page)))
    return None if match is None else _LANGUAGE_OF[match.group(0)]
