"""postback log: tokens masked in the JSON bodies kept before names were decoded (a name written
with escapes, "\\u0074oken", or a body that began with a byte order mark)

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-06

"""

from collections.abc import Sequence

from alembic import op

from clickback.store.logmask import LOG, mask_logged_tokens

revision: str = "0021"
down_revision: str | Sequence[str] | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    maybe = LOG.c.body.contains("\\u", autoescape=True) | LOG.c.body.startswith("\ufeff", autoescape=True)
    mask_logged_tokens(op.get_bind(), maybe)


def downgrade() -> None:
    """A masked token stays masked."""
