"""Fair claiming between accounts: partial indexes over the waiting work by account, and the
account of each status callback.

The claims (messaging/store.py) walk the accounts that have queued messages, pending application
sessions or pending callbacks (one index seek per account) and take a share of each one's oldest,
so one account's backlog no longer delays the others. Callbacks queued before this revision get
their account from their message or call.

Revision ID: 0012_fair_claiming
Revises: 0011_profiles
"""

import sqlalchemy as sa
from alembic import op

revision = "0012_fair_claiming"
down_revision = "0011_profiles"
branch_labels = None
depends_on = None

QUEUED = sa.text("status = 'queued'")
PENDING_APP = sa.text("app_state = 'pending'")
PENDING = sa.text("state = 'pending'")
PENDING_UNOWNED = sa.text("state = 'pending' AND account_sid IS NULL")


def upgrade() -> None:
    op.create_index("ix_messages_queued_account", "messages", ["account_sid", "next_attempt_at"],
                    sqlite_where=QUEUED, postgresql_where=QUEUED)
    op.create_index("ix_messages_pending_app_account", "messages", ["account_sid", "date_created"],
                    sqlite_where=PENDING_APP, postgresql_where=PENDING_APP)
    with op.batch_alter_table("status_callbacks") as batch:
        batch.add_column(sa.Column("account_sid", sa.String(length=34), nullable=True))
    op.execute(
        "UPDATE status_callbacks SET account_sid = "
        "(SELECT account_sid FROM messages WHERE messages.sid = status_callbacks.message_sid) "
        "WHERE message_sid LIKE 'SM%'"
    )
    op.execute(
        "UPDATE status_callbacks SET account_sid = "
        "(SELECT account_sid FROM calls WHERE calls.sid = status_callbacks.message_sid) "
        "WHERE message_sid LIKE 'CA%'"
    )
    op.create_index("ix_callbacks_pending_account", "status_callbacks", ["account_sid", "next_attempt_at", "id"],
                    sqlite_where=PENDING, postgresql_where=PENDING)
    op.create_index("ix_callbacks_pending_unowned", "status_callbacks", ["next_attempt_at", "id"],
                    sqlite_where=PENDING_UNOWNED, postgresql_where=PENDING_UNOWNED)


def downgrade() -> None:
    op.drop_index("ix_callbacks_pending_unowned", table_name="status_callbacks")
    op.drop_index("ix_callbacks_pending_account", table_name="status_callbacks")
    with op.batch_alter_table("status_callbacks") as batch:
        batch.drop_column("account_sid")
    op.drop_index("ix_messages_pending_app_account", table_name="messages")
    op.drop_index("ix_messages_queued_account", table_name="messages")
