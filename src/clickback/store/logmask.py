"""The postback log's rows written before a rule of core.redact, masked as new rows are (by the
migrations that came with the rules)."""

import re
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from clickback.core.intake import cut_between_words
from clickback.core.limits import MAX_PARAM_NAME_LEN, MAX_RAW_LOG_LEN
from clickback.core.model import token_digest
from clickback.core.reasons import Reason
from clickback.core.redact import (
    keylike_runs,
    longest_first,
    mask_known,
    redact_body,
    redact_query,
    redact_text,
)

BATCH = 1000
LOG = sa.table(
    "postbacks",
    sa.column("id", sa.Integer),
    sa.column("advertiser_id", sa.Integer),
    sa.column("reason"),
    sa.column("query"),
    sa.column("body"),
    sa.column("detail"),
    sa.column("ignored"),
)
ADVERTISERS = sa.table(
    "advertisers",
    sa.column("id", sa.Integer),
    sa.column("token"),
    sa.column("previous_token"),
    sa.column("signing_secret"),
)
# The columns' lengths (store/tables.postbacks): a value masked again may grow ("auth=x" becomes
# "auth=***"), and is cropped as store/recording.log crops a new row's.
_DETAIL_LEN = 512
_IGNORED_LEN = 1024
# How intake names a value too long: "sub1 (limit 255)" (core/intake.parse).
_LIMIT_NAMED = re.compile(r" \(limit [0-9]+\)$")


def mask_logged_tokens(conn: sa.Connection, maybe: sa.ColumnElement[bool]) -> None:
    """Mask the rows `maybe` selects (a clause on LOG's columns) where the rules mask anything:
    the query and the body, by the parameters' names."""

    def by_name(row: Any) -> dict[str, str]:
        return {"query": redact_query(row.query), "body": redact_body(row.body)}

    _rewrite(conn, maybe, by_name)


def mask_logged_secrets(conn: sa.Connection) -> None:
    """Mask every row as store/recording.log masks a new one: the query, the body, the detail and
    the ignored names by the parameters' names, and the secrets of the row's advertiser and of any
    advertiser whose token or signing secret the row holds wherever they appear (what
    core.redact.known_secrets finds in the catalog, found here in the advertisers table)."""
    of_advertiser: dict[int, tuple[str, ...]] = {}
    by_digest: dict[bytes, int] = {}
    for a in conn.execute(sa.select(ADVERTISERS)):
        of_advertiser[a.id] = longest_first((a.token or "", a.previous_token or "", a.signing_secret or ""))
        # As Catalog.build indexes them: tokens (the replaced one too) and signing secrets.
        by_digest.update((token_digest(s), a.id) for s in of_advertiser[a.id])

    def everywhere(row: Any) -> dict[str, str]:
        held = {
            by_digest.get(token_digest(run))
            for run in keylike_runs(row.query, row.body, row.detail, row.ignored)
        }
        held.add(row.advertiser_id)
        secrets = longest_first(s for i in held if i is not None for s in of_advertiser.get(i, ()))
        return {
            "query": mask_known(redact_query(row.query), secrets)[:MAX_RAW_LOG_LEN],
            "body": mask_known(redact_body(row.body), secrets)[:MAX_RAW_LOG_LEN],
            # Kept joined by commas, the ignored names are masked as one free text: a name may
            # lose a neighbour's text to a mask (a JSON member's value), never keep a secret.
            "detail": mask_known(redact_text(_quoted_today(row)), secrets)[:_DETAIL_LEN],
            "ignored": mask_known(redact_text(row.ignored), secrets)[:_IGNORED_LEN],
        }

    _rewrite(conn, sa.true(), everywhere)


def _quoted_today(row: Any) -> str:
    """The detail, a name too long quoted as intake quotes one today: up to its last whole word.
    Before, its first characters were quoted, perhaps a token's first ones, which no mask finds."""
    detail: str = row.detail
    # A quote cut before ends in "…"; a value too long is named with its limit, never cut.
    cut = len(detail) == MAX_PARAM_NAME_LEN and not detail.endswith("…") and not _LIMIT_NAMED.search(detail)
    return cut_between_words(detail) if cut and row.reason == Reason.PARAMETER_TOO_LONG.code else detail


def _rewrite(
    conn: sa.Connection, maybe: sa.ColumnElement[bool], mask: Callable[[Any], dict[str, str]]
) -> None:
    """The rows `maybe` selects, a batch at a time in id order (a large log is never read whole),
    each written back where `mask` changes any of the columns it gives: a row masked already is
    left as it is, so running it again changes nothing."""
    after = 0
    while True:
        rows = conn.execute(
            sa.select(LOG).where(maybe & (LOG.c.id > after)).order_by(LOG.c.id).limit(BATCH)
        ).all()
        if not rows:
            return
        changed = []
        for row in rows:
            shown = mask(row)
            if any(getattr(row, column) != value for column, value in shown.items()):
                changed.append({"row_id": row.id, **{f"new_{c}": v for c, v in shown.items()}})
        if changed:
            columns = [c for c in changed[0] if c != "row_id"]
            conn.execute(
                LOG.update()
                .where(LOG.c.id == sa.bindparam("row_id"))
                .values({c.removeprefix("new_"): sa.bindparam(c) for c in columns}),
                changed,
            )
        after = rows[-1].id
