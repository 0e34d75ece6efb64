"""Tables, written once for SQLite and PostgreSQL alike (SQLAlchemy Core).

Timestamps are stored as naive UTC datetimes. Migrations under store/migrations create exactly
these tables; a test compares the migrated database with this metadata.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

SID = 34

instance = Table(
    "instance",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

accounts = Table(
    "accounts",
    metadata,
    Column("sid", String(SID), primary_key=True),
    Column("parent_sid", String(SID), nullable=True, index=True),
    # "AC1/AC2/" : the ancestors of this account, root first; "" for a top-level account.
    Column("lineage", String(3 * (SID + 1)), nullable=False, default=""),
    Column("organization_sid", String(SID), nullable=False),
    Column("email", String(320), nullable=False, unique=True),
    Column("friendly_name", String(255), nullable=False),
    Column("status", String(16), nullable=False),
    Column("role", String(64), nullable=False),
    Column("type", String(16), nullable=False, default="Full"),
    Column("auth_token", String(64), nullable=False),
    Column("secondary_auth_token", String(64), nullable=True),
    Column("password_hash", Text, nullable=False),
    Column("api_version", String(16), nullable=False),
    Column("date_created", DateTime, nullable=False),
    Column("date_updated", DateTime, nullable=False),
)
Index("ix_accounts_lineage", accounts.c.lineage)

api_keys = Table(
    "api_keys",
    metadata,
    Column("sid", String(SID), primary_key=True),
    Column("account_sid", String(SID), nullable=False, index=True),
    Column("friendly_name", String(255), nullable=False),
    Column("secret_hash", String(128), nullable=False),
    Column("date_created", DateTime, nullable=False),
    Column("date_updated", DateTime, nullable=False),
)

clients = Table(
    "clients",
    metadata,
    Column("sid", String(SID), primary_key=True),
    Column("account_sid", String(SID), nullable=False, index=True),
    Column("organization_sid", String(SID), nullable=False),
    Column("login", String(255), nullable=False),
    Column("friendly_name", String(255), nullable=False),
    Column("password", String(255), nullable=False),
    Column("password_algorithm", String(16), nullable=False),
    Column("status", Integer, nullable=False),
    Column("voice_url", Text),
    Column("voice_method", String(8)),
    Column("voice_fallback_url", Text),
    Column("voice_fallback_method", String(8)),
    Column("voice_application_sid", String(SID)),
    Column("push_client_identity", String(SID)),
    Column("api_version", String(16), nullable=False),
    Column("date_created", DateTime, nullable=False),
    Column("date_updated", DateTime, nullable=False),
    UniqueConstraint("organization_sid", "login", name="uq_clients_org_login"),
)

applications = Table(
    "applications",
    metadata,
    Column("sid", String(SID), primary_key=True),
    Column("account_sid", String(SID), nullable=False, index=True),
    Column("friendly_name", String(255), nullable=False),
    Column("voice_caller_id_lookup", Boolean, nullable=False, default=False),
    Column("rcml_url", Text),
    Column("kind", String(16)),
    Column("api_version", String(16), nullable=False),
    Column("date_created", DateTime, nullable=False),
    Column("date_updated", DateTime, nullable=False),
)

incoming_phone_numbers = Table(
    "incoming_phone_numbers",
    metadata,
    Column("sid", String(SID), primary_key=True),
    Column("account_sid", String(SID), nullable=False, index=True),
    Column("organization_sid", String(SID), nullable=False),
    Column("phone_number", String(255), nullable=False),
    Column("friendly_name", String(255), nullable=False),
    Column("number_type", String(16), nullable=False, default="local"),
    Column("pure_sip", Boolean, nullable=False, default=False),
    # True when a pure-SIP number is a pattern (regex or the "*" catch-all) rather than a literal.
    Column("is_pattern", Boolean, nullable=False, default=False),
    Column("voice_url", Text),
    Column("voice_method", String(8)),
    Column("voice_fallback_url", Text),
    Column("voice_fallback_method", String(8)),
    Column("status_callback", Text),
    Column("status_callback_method", String(8)),
    Column("voice_caller_id_lookup", Boolean, nullable=False, default=False),
    Column("voice_application_sid", String(SID)),
    Column("sms_url", Text),
    Column("sms_method", String(8)),
    Column("sms_fallback_url", Text),
    Column("sms_fallback_method", String(8)),
    Column("sms_application_sid", String(SID)),
    Column("ussd_url", Text),
    Column("ussd_method", String(8)),
    Column("ussd_fallback_url", Text),
    Column("ussd_fallback_method", String(8)),
    Column("ussd_application_sid", String(SID)),
    Column("refer_url", Text),
    Column("refer_method", String(8)),
    Column("refer_application_sid", String(SID)),
    Column("voice_capable", Boolean, nullable=False, default=True),
    Column("sms_capable", Boolean, nullable=False, default=True),
    Column("mms_capable", Boolean, nullable=False, default=False),
    Column("fax_capable", Boolean, nullable=False, default=False),
    Column("api_version", String(16), nullable=False),
    Column("date_created", DateTime, nullable=False),
    Column("date_updated", DateTime, nullable=False),
    UniqueConstraint("organization_sid", "phone_number", name="uq_numbers_org_number"),
)

outgoing_caller_ids = Table(
    "outgoing_caller_ids",
    metadata,
    Column("sid", String(SID), primary_key=True),
    Column("account_sid", String(SID), nullable=False, index=True),
    Column("friendly_name", String(255), nullable=False),
    Column("phone_number", String(64), nullable=False),
    Column("api_version", String(16), nullable=False),
    Column("date_created", DateTime, nullable=False),
    Column("date_updated", DateTime, nullable=False),
)

notifications = Table(
    "notifications",
    metadata,
    Column("sid", String(SID), primary_key=True),
    Column("account_sid", String(SID), nullable=False, index=True),
    Column("call_sid", String(80)),
    Column("message_sid", String(SID)),
    Column("api_version", String(16), nullable=False),
    Column("log", Integer, nullable=False),
    Column("error_code", Integer, nullable=False),
    Column("more_info", Text, nullable=False),
    Column("message_text", Text, nullable=False),
    Column("message_date", DateTime, nullable=False),
    Column("request_url", Text),
    Column("request_method", String(8)),
    Column("request_variables", Text),
    Column("response_headers", Text),
    Column("response_body", Text),
    Column("date_created", DateTime, nullable=False),
    Column("date_updated", DateTime, nullable=False),
)
Index("ix_notifications_account_created", notifications.c.account_sid, notifications.c.date_created)

audit_log = Table(
    "audit_log",
    metadata,
    Column("sid", String(SID), primary_key=True),
    # The account whose data changed (the tenant that may read the record).
    Column("account_sid", String(SID), nullable=False),
    # Who did it: the authenticated account, and the API key if one was used.
    Column("actor_sid", String(SID), nullable=False),
    Column("credential_sid", String(SID), nullable=False),
    Column("action", String(16), nullable=False),
    Column("resource_type", String(64), nullable=False),
    Column("resource_sid", String(80)),
    # Names of the parameters that were changed (never their secret values).
    Column("changes", Text, nullable=False),
    Column("remote_addr", String(64)),
    Column("request_id", String(64)),
    Column("date_created", DateTime, nullable=False),
)
Index("ix_audit_account_created", audit_log.c.account_sid, audit_log.c.date_created)
