"""The postback log's rows written before a rule of core.redact, masked as new rows are (by the
migrations that came with the rules)."""

import sqlalchemy as sa

from clickback.core.redact import redact_body, redact_query

BATCH = 1000
LOG = sa.table("postbacks", sa.column("id", sa.Integer), sa.column("query"), sa.column("body"))


def mask_logged_tokens(conn: sa.Connection, maybe: sa.ColumnElement[bool]) -> None:
    """Mask the rows `maybe` selects (a clause on LOG's columns) where the rules mask anything."""
    after = 0
    while True:
        rows = conn.execute(
            sa.select(LOG.c.id, LOG.c.query, LOG.c.body)
            .where(maybe & (LOG.c.id > after))
            .order_by(LOG.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            return
        changed = [
            {"row_id": r.id, "q": redact_query(r.query), "b": redact_body(r.body)}
            for r in rows
            if (redact_query(r.query), redact_body(r.body)) != (r.query, r.body)
        ]
        if changed:
            conn.execute(
                LOG.update()
                .where(LOG.c.id == sa.bindparam("row_id"))
                .values(query=sa.bindparam("q"), body=sa.bindparam("b")),
                changed,
            )
        after = rows[-1].id
