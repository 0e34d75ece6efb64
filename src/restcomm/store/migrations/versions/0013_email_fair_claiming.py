"""Fair claiming of the email outbox between accounts: a partial index over the queued emails by
account (the claim walks the accounts with queued emails, one index seek each, and takes a share of
each one's oldest; messaging/email.py). Queued emails without a due time (none are written so) are
given their creation time, so the claim's range scan finds every one.

Revision ID: 0013_email_fair_claiming
Revises: 0012_fair_claiming
"""

import sqlalchemy as sa
from alembic import op

revision = "0013_email_fair_claiming"
down_revision = "0012_fair_claiming"
branch_labels = None
depends_on = None

QUEUED = sa.text("status = 'queued'")


def upgrade() -> None:
    op.execute("UPDATE emails SET next_attempt_at = date_created WHERE status = 'queued' AND next_attempt_at IS NULL")
    op.create_index("ix_emails_queued_account", "emails", ["account_sid", "next_attempt_at", "date_created"],
                    sqlite_where=QUEUED, postgresql_where=QUEUED)


def downgrade() -> None:
    op.drop_index("ix_emails_queued_account", table_name="emails")
