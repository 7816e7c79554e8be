"""postback log: the entries kept before secrets were masked wherever they are, masked as new
entries are (a value under a name that looks like a credential's, misspelt or another
platform's; the advertiser's token, previous token or signing secret under any name or none, in
the query, the body, the detail and the ignored names)

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-09

"""

from collections.abc import Sequence

from alembic import op

from clickback.store.logmask import mask_logged_secrets

revision: str = "0027"
down_revision: str | Sequence[str] | None = "0026"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Every row: a secret under an innocent name is found only by reading it.
    mask_logged_secrets(op.get_bind())


def downgrade() -> None:
    """A masked secret stays masked."""
