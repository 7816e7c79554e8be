"""RevShare months that added two currencies before ADR 24: each NGR report priced in another
currency than its month's is priced again into it, the month's kept NGR corrected, and the month
listed for the settle job to book the difference

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-06

A deal that changed currency mid-month left the month's row in the old currency while each later
NGR report was priced in the new one and added to it (docs/adr/0024). Each such report, of any
status (a rejected one can be approved again), is priced again as ADR 24 prices it: its amount as
sent converted into the month's currency at the newest rate dated on or before its day, either
direction (store/mixed_months.py). The month's kept NGR moves by the difference, so that what
changes from now on moves it right; the month is listed in `revshare_due`, and the settle job
(every server process, once a minute; `POST /api/commissions/settle` at once) recomputes it as a
postback would, books the difference ("recomputed: NGR reports priced in another currency than
the month's (before ADR 24)", caused by the month's last report priced again), and the months
after it follow as their carry-in does.

A report with no rate on record between its currency and its month's is left as it was (the
month keeps adding it as booked) and counted in a warning at migration time, naming its months;
`store.mixed_months.LEFT_AS_THEY_WERE` (quoted in docs/commissions.md) lists such reports.

The reports are read in batches of store.mixed_months.BATCH, all in the migration's transaction.
"""

from collections.abc import Sequence

from alembic import op

from clickback.store.mixed_months import reprice_mixed_months

revision: str = "0029"
down_revision: str | Sequence[str] | None = "0028"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    reprice_mixed_months(op.get_bind())


def downgrade() -> None:
    """Nothing to undo: no schema changed, and the reports stay priced in their months' currency
    (the code before this prices new reports so too; ADR 24)."""
