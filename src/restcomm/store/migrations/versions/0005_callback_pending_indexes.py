"""Status callbacks: partial indexes over the pending rows replace the index on (state, due time).

Revision ID: 0005_callback_pending_indexes
Revises: 0004_smpp_parked_receipts
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_callback_pending_indexes"
down_revision = "0004_smpp_parked_receipts"
branch_labels = None
depends_on = None

PENDING = sa.text("state = 'pending'")


def upgrade() -> None:
    op.drop_index("ix_callbacks_due", table_name="status_callbacks")
    op.create_index("ix_callbacks_pending_due", "status_callbacks", ["next_attempt_at", "id"],
                    sqlite_where=PENDING, postgresql_where=PENDING)
    op.create_index("ix_callbacks_pending_message", "status_callbacks", ["message_sid", "seq"],
                    sqlite_where=PENDING, postgresql_where=PENDING)


def downgrade() -> None:
    op.drop_index("ix_callbacks_pending_message", table_name="status_callbacks")
    op.drop_index("ix_callbacks_pending_due", table_name="status_callbacks")
    op.create_index("ix_callbacks_due", "status_callbacks", ["state", "next_attempt_at"])
