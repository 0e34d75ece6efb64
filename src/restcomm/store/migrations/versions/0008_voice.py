"""Voice: calls, recordings, SIP registrations and gateways (SIP trunks).

Revision ID: 0008_voice
Revises: 0006_mo_parts
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_voice"
down_revision = "0006_mo_parts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "calls",
        sa.Column("sid", sa.String(length=34), nullable=False),
        sa.Column("parent_call_sid", sa.String(length=34), nullable=True),
        sa.Column("account_sid", sa.String(length=34), nullable=False),
        sa.Column("api_version", sa.String(length=16), nullable=False),
        sa.Column("from_number", sa.String(length=512), nullable=False),
        sa.Column("to_number", sa.String(length=512), nullable=False),
        sa.Column("from_formatted", sa.String(length=512), nullable=True),
        sa.Column("to_formatted", sa.String(length=512), nullable=True),
        sa.Column("caller_name", sa.String(length=255), nullable=True),
        sa.Column("forwarded_from", sa.String(length=255), nullable=True),
        sa.Column("phone_number_sid", sa.String(length=34), nullable=True),
        sa.Column("direction", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("answered_by", sa.String(length=32), nullable=True),
        sa.Column("start_time", sa.DateTime(), nullable=True),
        sa.Column("answer_time", sa.DateTime(), nullable=True),
        sa.Column("end_time", sa.DateTime(), nullable=True),
        sa.Column("duration", sa.Integer(), nullable=True),
        sa.Column("ring_duration", sa.Integer(), nullable=True),
        sa.Column("price", sa.String(length=16), nullable=True),
        sa.Column("price_unit", sa.String(length=8), nullable=False),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("method", sa.String(length=8), nullable=True),
        sa.Column("fallback_url", sa.Text(), nullable=True),
        sa.Column("fallback_method", sa.String(length=8), nullable=True),
        sa.Column("application_sid", sa.String(length=34), nullable=True),
        sa.Column("status_callback", sa.Text(), nullable=True),
        sa.Column("status_callback_method", sa.String(length=8), nullable=True),
        sa.Column("status_callback_events", sa.String(length=64), nullable=True),
        sa.Column("timeout", sa.Integer(), nullable=True),
        sa.Column("record", sa.Boolean(), nullable=False),
        sa.Column("sip_call_id", sa.String(length=255), nullable=True),
        sa.Column("error_code", sa.Integer(), nullable=True),
        sa.Column("end_reason", sa.Text(), nullable=True),
        sa.Column("node", sa.String(length=64), nullable=True),
        sa.Column("lease_until", sa.DateTime(), nullable=True),
        sa.Column("date_created", sa.DateTime(), nullable=False),
        sa.Column("date_updated", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("sid"),
    )
    op.create_index("ix_calls_account_created", "calls", ["account_sid", "date_created"], unique=False)
    op.create_index("ix_calls_parent", "calls", ["parent_call_sid"], unique=False)
    op.create_index("ix_calls_live", "calls", ["status", "lease_until"], unique=False)

    op.create_table(
        "recordings",
        sa.Column("sid", sa.String(length=34), nullable=False),
        sa.Column("account_sid", sa.String(length=34), nullable=False),
        sa.Column("call_sid", sa.String(length=34), nullable=True),
        sa.Column("api_version", sa.String(length=16), nullable=False),
        sa.Column("duration", sa.Integer(), nullable=True),
        sa.Column("file_path", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("channels", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("error_code", sa.Integer(), nullable=True),
        sa.Column("start_time", sa.DateTime(), nullable=True),
        sa.Column("price", sa.String(length=16), nullable=True),
        sa.Column("price_unit", sa.String(length=8), nullable=False),
        sa.Column("date_created", sa.DateTime(), nullable=False),
        sa.Column("date_updated", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("sid"),
    )
    op.create_index("ix_recordings_account_created", "recordings", ["account_sid", "date_created"], unique=False)
    op.create_index("ix_recordings_call", "recordings", ["call_sid"], unique=False)

    op.create_table(
        "sip_registrations",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("organization_sid", sa.String(length=34), nullable=False),
        sa.Column("aor", sa.String(length=255), nullable=False),
        sa.Column("contact", sa.String(length=1024), nullable=False),
        sa.Column("source_address", sa.String(length=128), nullable=True),
        sa.Column("transport", sa.String(length=8), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("user_agent", sa.String(length=255), nullable=True),
        sa.Column("call_id", sa.String(length=255), nullable=False),
        sa.Column("cseq", sa.Integer(), nullable=False),
        sa.Column("node", sa.String(length=64), nullable=True),
        sa.Column("date_created", sa.DateTime(), nullable=False),
        sa.Column("date_updated", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("organization_sid", "aor", "contact", name="uq_sip_registrations_binding"),
    )
    op.create_index("ix_sip_registrations_expires", "sip_registrations", ["expires_at"], unique=False)

    op.create_table(
        "gateways",
        sa.Column("sid", sa.String(length=34), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("port", sa.Integer(), nullable=False),
        sa.Column("transport", sa.String(length=8), nullable=False),
        sa.Column("username", sa.String(length=255), nullable=True),
        sa.Column("password", sa.String(length=255), nullable=True),
        sa.Column("register", sa.Boolean(), nullable=False),
        sa.Column("ttl", sa.Integer(), nullable=False),
        sa.Column("prefixes", sa.Text(), nullable=False),
        sa.Column("inbound_addresses", sa.Text(), nullable=False),
        sa.Column("date_created", sa.DateTime(), nullable=False),
        sa.Column("date_updated", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("sid"),
        sa.UniqueConstraint("name"),
    )


def downgrade() -> None:
    op.drop_table("gateways")
    op.drop_index("ix_sip_registrations_expires", table_name="sip_registrations")
    op.drop_table("sip_registrations")
    op.drop_index("ix_recordings_call", table_name="recordings")
    op.drop_index("ix_recordings_account_created", table_name="recordings")
    op.drop_table("recordings")
    op.drop_index("ix_calls_live", table_name="calls")
    op.drop_index("ix_calls_parent", table_name="calls")
    op.drop_index("ix_calls_account_created", table_name="calls")
    op.drop_table("calls")
