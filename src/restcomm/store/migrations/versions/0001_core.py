"""Core provisioning tables: accounts, API keys, clients, applications, numbers, caller ids,
notifications, audit log.

Revision ID: 0001_core
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001_core"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("sid", sa.String(length=34), nullable=False),
        sa.Column("parent_sid", sa.String(length=34), nullable=True),
        sa.Column("lineage", sa.String(length=105), nullable=False),
        sa.Column("organization_sid", sa.String(length=34), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("friendly_name", sa.String(length=255), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("role", sa.String(length=64), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("auth_token", sa.String(length=64), nullable=False),
        sa.Column("secondary_auth_token", sa.String(length=64), nullable=True),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("api_version", sa.String(length=16), nullable=False),
        sa.Column("date_created", sa.DateTime(), nullable=False),
        sa.Column("date_updated", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("sid"),
        sa.UniqueConstraint("email"),
    )
    op.create_index("ix_accounts_lineage", "accounts", ["lineage"], unique=False)
    op.create_index(op.f("ix_accounts_parent_sid"), "accounts", ["parent_sid"], unique=False)
    op.create_table(
        "api_keys",
        sa.Column("sid", sa.String(length=34), nullable=False),
        sa.Column("account_sid", sa.String(length=34), nullable=False),
        sa.Column("friendly_name", sa.String(length=255), nullable=False),
        sa.Column("secret_hash", sa.String(length=128), nullable=False),
        sa.Column("date_created", sa.DateTime(), nullable=False),
        sa.Column("date_updated", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("sid"),
    )
    op.create_index(op.f("ix_api_keys_account_sid"), "api_keys", ["account_sid"], unique=False)
    op.create_table(
        "applications",
        sa.Column("sid", sa.String(length=34), nullable=False),
        sa.Column("account_sid", sa.String(length=34), nullable=False),
        sa.Column("friendly_name", sa.String(length=255), nullable=False),
        sa.Column("voice_caller_id_lookup", sa.Boolean(), nullable=False),
        sa.Column("rcml_url", sa.Text(), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=True),
        sa.Column("api_version", sa.String(length=16), nullable=False),
        sa.Column("date_created", sa.DateTime(), nullable=False),
        sa.Column("date_updated", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("sid"),
    )
    op.create_index(op.f("ix_applications_account_sid"), "applications", ["account_sid"], unique=False)
    op.create_table(
        "audit_log",
        sa.Column("sid", sa.String(length=34), nullable=False),
        sa.Column("account_sid", sa.String(length=34), nullable=False),
        sa.Column("actor_sid", sa.String(length=34), nullable=False),
        sa.Column("credential_sid", sa.String(length=34), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("resource_type", sa.String(length=64), nullable=False),
        sa.Column("resource_sid", sa.String(length=80), nullable=True),
        sa.Column("changes", sa.Text(), nullable=False),
        sa.Column("remote_addr", sa.String(length=64), nullable=True),
        sa.Column("request_id", sa.String(length=64), nullable=True),
        sa.Column("date_created", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("sid"),
    )
    op.create_index("ix_audit_account_created", "audit_log", ["account_sid", "date_created"], unique=False)
    op.create_table(
        "clients",
        sa.Column("sid", sa.String(length=34), nullable=False),
        sa.Column("account_sid", sa.String(length=34), nullable=False),
        sa.Column("organization_sid", sa.String(length=34), nullable=False),
        sa.Column("login", sa.String(length=255), nullable=False),
        sa.Column("friendly_name", sa.String(length=255), nullable=False),
        sa.Column("password", sa.String(length=255), nullable=False),
        sa.Column("password_algorithm", sa.String(length=16), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("voice_url", sa.Text(), nullable=True),
        sa.Column("voice_method", sa.String(length=8), nullable=True),
        sa.Column("voice_fallback_url", sa.Text(), nullable=True),
        sa.Column("voice_fallback_method", sa.String(length=8), nullable=True),
        sa.Column("voice_application_sid", sa.String(length=34), nullable=True),
        sa.Column("push_client_identity", sa.String(length=34), nullable=True),
        sa.Column("api_version", sa.String(length=16), nullable=False),
        sa.Column("date_created", sa.DateTime(), nullable=False),
        sa.Column("date_updated", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("sid"),
        sa.UniqueConstraint("organization_sid", "login", name="uq_clients_org_login"),
    )
    op.create_index(op.f("ix_clients_account_sid"), "clients", ["account_sid"], unique=False)
    op.create_table(
        "incoming_phone_numbers",
        sa.Column("sid", sa.String(length=34), nullable=False),
        sa.Column("account_sid", sa.String(length=34), nullable=False),
        sa.Column("organization_sid", sa.String(length=34), nullable=False),
        sa.Column("phone_number", sa.String(length=255), nullable=False),
        sa.Column("friendly_name", sa.String(length=255), nullable=False),
        sa.Column("number_type", sa.String(length=16), nullable=False),
        sa.Column("pure_sip", sa.Boolean(), nullable=False),
        sa.Column("is_pattern", sa.Boolean(), nullable=False),
        sa.Column("voice_url", sa.Text(), nullable=True),
        sa.Column("voice_method", sa.String(length=8), nullable=True),
        sa.Column("voice_fallback_url", sa.Text(), nullable=True),
        sa.Column("voice_fallback_method", sa.String(length=8), nullable=True),
        sa.Column("status_callback", sa.Text(), nullable=True),
        sa.Column("status_callback_method", sa.String(length=8), nullable=True),
        sa.Column("voice_caller_id_lookup", sa.Boolean(), nullable=False),
        sa.Column("voice_application_sid", sa.String(length=34), nullable=True),
        sa.Column("sms_url", sa.Text(), nullable=True),
        sa.Column("sms_method", sa.String(length=8), nullable=True),
        sa.Column("sms_fallback_url", sa.Text(), nullable=True),
        sa.Column("sms_fallback_method", sa.String(length=8), nullable=True),
        sa.Column("sms_application_sid", sa.String(length=34), nullable=True),
        sa.Column("ussd_url", sa.Text(), nullable=True),
        sa.Column("ussd_method", sa.String(length=8), nullable=True),
        sa.Column("ussd_fallback_url", sa.Text(), nullable=True),
        sa.Column("ussd_fallback_method", sa.String(length=8), nullable=True),
        sa.Column("ussd_application_sid", sa.String(length=34), nullable=True),
        sa.Column("refer_url", sa.Text(), nullable=True),
        sa.Column("refer_method", sa.String(length=8), nullable=True),
        sa.Column("refer_application_sid", sa.String(length=34), nullable=True),
        sa.Column("voice_capable", sa.Boolean(), nullable=False),
        sa.Column("sms_capable", sa.Boolean(), nullable=False),
        sa.Column("mms_capable", sa.Boolean(), nullable=False),
        sa.Column("fax_capable", sa.Boolean(), nullable=False),
        sa.Column("api_version", sa.String(length=16), nullable=False),
        sa.Column("date_created", sa.DateTime(), nullable=False),
        sa.Column("date_updated", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("sid"),
        sa.UniqueConstraint("organization_sid", "phone_number", name="uq_numbers_org_number"),
    )
    op.create_index(
        op.f("ix_incoming_phone_numbers_account_sid"), "incoming_phone_numbers", ["account_sid"], unique=False
    )
    op.create_table(
        "instance",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_table(
        "notifications",
        sa.Column("sid", sa.String(length=34), nullable=False),
        sa.Column("account_sid", sa.String(length=34), nullable=False),
        sa.Column("call_sid", sa.String(length=80), nullable=True),
        sa.Column("message_sid", sa.String(length=34), nullable=True),
        sa.Column("api_version", sa.String(length=16), nullable=False),
        sa.Column("log", sa.Integer(), nullable=False),
        sa.Column("error_code", sa.Integer(), nullable=False),
        sa.Column("more_info", sa.Text(), nullable=False),
        sa.Column("message_text", sa.Text(), nullable=False),
        sa.Column("message_date", sa.DateTime(), nullable=False),
        sa.Column("request_url", sa.Text(), nullable=True),
        sa.Column("request_method", sa.String(length=8), nullable=True),
        sa.Column("request_variables", sa.Text(), nullable=True),
        sa.Column("response_headers", sa.Text(), nullable=True),
        sa.Column("response_body", sa.Text(), nullable=True),
        sa.Column("date_created", sa.DateTime(), nullable=False),
        sa.Column("date_updated", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("sid"),
    )
    op.create_index(
        "ix_notifications_account_created", "notifications", ["account_sid", "date_created"], unique=False
    )
    op.create_index(op.f("ix_notifications_account_sid"), "notifications", ["account_sid"], unique=False)
    op.create_table(
        "outgoing_caller_ids",
        sa.Column("sid", sa.String(length=34), nullable=False),
        sa.Column("account_sid", sa.String(length=34), nullable=False),
        sa.Column("friendly_name", sa.String(length=255), nullable=False),
        sa.Column("phone_number", sa.String(length=64), nullable=False),
        sa.Column("api_version", sa.String(length=16), nullable=False),
        sa.Column("date_created", sa.DateTime(), nullable=False),
        sa.Column("date_updated", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("sid"),
    )
    op.create_index(
        op.f("ix_outgoing_caller_ids_account_sid"), "outgoing_caller_ids", ["account_sid"], unique=False
    )
