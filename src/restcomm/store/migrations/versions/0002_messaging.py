"""Messaging: messages, carrier segments, status-callback outbox, opt-outs, emails.

Revision ID: 0002_messaging
Revises: 0001_core
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_messaging"
down_revision = "0001_core"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "emails",
        sa.Column("sid", sa.String(length=34), nullable=False),
        sa.Column("account_sid", sa.String(length=34), nullable=False),
        sa.Column("from_addr", sa.String(length=320), nullable=False),
        sa.Column("to_addr", sa.Text(), nullable=False),
        sa.Column("cc", sa.Text(), nullable=True),
        sa.Column("bcc", sa.Text(), nullable=True),
        sa.Column("subject", sa.String(length=255), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("content_type", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=True),
        sa.Column("lease_owner", sa.String(length=64), nullable=True),
        sa.Column("lease_until", sa.DateTime(), nullable=True),
        sa.Column("date_created", sa.DateTime(), nullable=False),
        sa.Column("date_updated", sa.DateTime(), nullable=False),
        sa.Column("date_sent", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("sid"),
    )
    op.create_index(op.f("ix_emails_account_sid"), "emails", ["account_sid"], unique=False)
    op.create_index("ix_emails_due", "emails", ["status", "next_attempt_at"], unique=False)
    op.create_table(
        "message_segments",
        sa.Column("message_sid", sa.String(length=34), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("carrier", sa.String(length=64), nullable=False),
        sa.Column("carrier_message_id", sa.String(length=128), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("error_code", sa.Integer(), nullable=True),
        sa.Column("date_updated", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("message_sid", "seq"),
    )
    op.create_index(
        "ix_segments_carrier_id", "message_segments", ["carrier", "carrier_message_id"], unique=False
    )
    op.create_table(
        "messages",
        sa.Column("sid", sa.String(length=34), nullable=False),
        sa.Column("account_sid", sa.String(length=34), nullable=False),
        sa.Column("from_number", sa.String(length=255), nullable=False),
        sa.Column("to_number", sa.String(length=255), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("direction", sa.String(length=16), nullable=False),
        sa.Column("num_segments", sa.Integer(), nullable=False),
        sa.Column("num_media", sa.Integer(), nullable=False),
        sa.Column("encoding", sa.String(length=8), nullable=False),
        sa.Column("error_code", sa.Integer(), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("price", sa.String(length=16), nullable=True),
        sa.Column("price_unit", sa.String(length=8), nullable=False),
        sa.Column("api_version", sa.String(length=16), nullable=False),
        sa.Column("status_callback", sa.Text(), nullable=True),
        sa.Column("status_callback_method", sa.String(length=8), nullable=True),
        sa.Column("route", sa.String(length=16), nullable=True),
        sa.Column("carrier", sa.String(length=64), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=True),
        sa.Column("lease_owner", sa.String(length=64), nullable=True),
        sa.Column("lease_until", sa.DateTime(), nullable=True),
        sa.Column("app_state", sa.String(length=16), nullable=True),
        sa.Column("hop", sa.Integer(), nullable=False),
        sa.Column("parent_sid", sa.String(length=34), nullable=True),
        sa.Column("date_created", sa.DateTime(), nullable=False),
        sa.Column("date_updated", sa.DateTime(), nullable=False),
        sa.Column("date_sent", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("sid"),
    )
    op.create_index("ix_messages_account_created", "messages", ["account_sid", "date_created"], unique=False)
    op.create_index("ix_messages_app", "messages", ["app_state"], unique=False)
    op.create_index("ix_messages_dispatch", "messages", ["status", "next_attempt_at"], unique=False)
    op.create_table(
        "opt_outs",
        sa.Column("sender", sa.String(length=255), nullable=False),
        sa.Column("recipient", sa.String(length=255), nullable=False),
        sa.Column("account_sid", sa.String(length=34), nullable=False),
        sa.Column("date_created", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("sender", "recipient"),
    )
    op.create_table(
        "status_callbacks",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("message_sid", sa.String(length=34), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("method", sa.String(length=8), nullable=False),
        sa.Column("params", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=False),
        sa.Column("lease_owner", sa.String(length=64), nullable=True),
        sa.Column("lease_until", sa.DateTime(), nullable=True),
        sa.Column("date_created", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_callbacks_due", "status_callbacks", ["state", "next_attempt_at"], unique=False)
    op.create_index("ix_callbacks_message", "status_callbacks", ["message_sid", "seq"], unique=False)
