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
    text,
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
    # The ancestor whose status change gave this account its current status (a cascade); NULL when
    # the status is the account's own. Reactivating that ancestor reactivates only these accounts:
    # a descendant closed or suspended on its own keeps its status (see api/accounts.py).
    Column("status_cascaded_from", String(SID), nullable=True),
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
    # HA1 sha256(login:realm:password) for SHA-256 digest (RFC 7616); null for passwords set
    # before migration 0009 (those clients authenticate with MD5 until the password changes).
    Column("password_sha256", String(64)),
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
# Inbound routing reads an organization's few pattern numbers on every unmatched message.
Index("ix_numbers_org_pattern", incoming_phone_numbers.c.organization_sid, incoming_phone_numbers.c.is_pattern)

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

# ---------------------------------------------------------------------------------------------
# Messaging (revision 0002_messaging)

messages = Table(
    "messages",
    metadata,
    Column("sid", String(SID), primary_key=True),
    Column("account_sid", String(SID), nullable=False),
    Column("from_number", String(255), nullable=False),
    Column("to_number", String(255), nullable=False),
    Column("body", Text, nullable=False),
    # queued | sending | sent | delivered | undelivered | failed | received
    Column("status", String(16), nullable=False),
    # outbound-api | outbound-reply | inbound
    Column("direction", String(16), nullable=False),
    Column("num_segments", Integer, nullable=False, default=1),
    Column("num_media", Integer, nullable=False, default=0),
    Column("encoding", String(8), nullable=False, default="GSM-7"),
    Column("error_code", Integer),
    Column("error_message", Text),
    Column("price", String(16)),
    Column("price_unit", String(8), nullable=False, default="USD"),
    Column("api_version", String(16), nullable=False),
    Column("status_callback", Text),
    Column("status_callback_method", String(8)),
    # Where it went: "internal" (a number hosted here), "carrier", or null before routing.
    Column("route", String(16)),
    Column("carrier", String(64)),
    # Dispatch bookkeeping: the next time a worker may take it, and the lease of the one that did.
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", DateTime),
    Column("lease_owner", String(64)),
    Column("lease_until", DateTime),
    # Inbound messages: the app run (pending | running | done | none).
    Column("app_state", String(16)),
    # How many app-to-app hops led here (loop cap), and the message that caused this one.
    Column("hop", Integer, nullable=False, default=0),
    Column("parent_sid", String(SID)),
    Column("date_created", DateTime, nullable=False),
    Column("date_updated", DateTime, nullable=False),
    Column("date_sent", DateTime),
)
Index("ix_messages_account_created", messages.c.account_sid, messages.c.date_created)
Index("ix_messages_dispatch", messages.c.status, messages.c.next_attempt_at)
Index("ix_messages_app", messages.c.app_state)
# Fair claiming (revision 0012_fair_claiming): the claims walk the accounts that have work, then take
# each one's oldest (messaging/store.py). Partial indexes over the waiting rows only, so the walk is
# one index seek per account however many messages were ever sent.
QUEUED_MESSAGE = text("status = 'queued'")
PENDING_APP = text("app_state = 'pending'")
Index("ix_messages_queued_account", messages.c.account_sid, messages.c.next_attempt_at,
      sqlite_where=QUEUED_MESSAGE, postgresql_where=QUEUED_MESSAGE)
Index("ix_messages_pending_app_account", messages.c.account_sid, messages.c.date_created,
      sqlite_where=PENDING_APP, postgresql_where=PENDING_APP)

# One row per segment handed to a carrier, so receipts find their message by the carrier's id.
message_segments = Table(
    "message_segments",
    metadata,
    Column("message_sid", String(SID), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("carrier", String(64), nullable=False),
    Column("carrier_message_id", String(128)),
    Column("status", String(16), nullable=False),
    Column("error_code", Integer),
    Column("date_updated", DateTime, nullable=False),
)
Index("ix_segments_carrier_id", message_segments.c.carrier, message_segments.c.carrier_message_id)

# Status callbacks as an outbox: delivered in order per message or call, retried with backoff.
# ``message_sid`` is the SID of the resource the callback reports on: a message (SM…) or a call
# (CA…); the prefix tells which (messaging/callbacks.py).
status_callbacks = Table(
    "status_callbacks",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("message_sid", String(SID), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("url", Text, nullable=False),
    Column("method", String(8), nullable=False),
    Column("params", Text, nullable=False),
    Column("state", String(16), nullable=False),  # pending | done | failed
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", DateTime, nullable=False),
    Column("lease_owner", String(64)),
    Column("lease_until", DateTime),
    Column("date_created", DateTime, nullable=False),
    # The account of the message or call (fair claiming between accounts; 0012_fair_claiming).
    Column("account_sid", String(SID)),
)
# Partial indexes over the pending callbacks only (the outbox keeps done ones): the claim's scan in
# due order and its "no pending predecessor" check stay small and cheap however many are done,
# and PostgreSQL's planner cannot misjudge them after a burst (with an index on state it chose a
# scan of every pending row per candidate: a 1 s claim at 6,000 pending).
PENDING_CALLBACK = text("state = 'pending'")
Index("ix_callbacks_pending_due", status_callbacks.c.next_attempt_at, status_callbacks.c.id,
      sqlite_where=PENDING_CALLBACK, postgresql_where=PENDING_CALLBACK)
Index("ix_callbacks_pending_message", status_callbacks.c.message_sid, status_callbacks.c.seq,
      sqlite_where=PENDING_CALLBACK, postgresql_where=PENDING_CALLBACK)
Index("ix_callbacks_message", status_callbacks.c.message_sid, status_callbacks.c.seq)
Index("ix_callbacks_pending_account", status_callbacks.c.account_sid, status_callbacks.c.next_attempt_at,
      status_callbacks.c.id, sqlite_where=PENDING_CALLBACK, postgresql_where=PENDING_CALLBACK)
# Pending callbacks without an account (queued by a node older than 0011 during a rolling upgrade):
# claimed oldest first on their own; the index is empty otherwise, so looking costs nothing.
PENDING_UNOWNED_CALLBACK = text("state = 'pending' AND account_sid IS NULL")
Index("ix_callbacks_pending_unowned", status_callbacks.c.next_attempt_at, status_callbacks.c.id,
      sqlite_where=PENDING_UNOWNED_CALLBACK, postgresql_where=PENDING_UNOWNED_CALLBACK)

# STOP/START: a recipient that opted out of messages from one of our senders.
opt_outs = Table(
    "opt_outs",
    metadata,
    Column("sender", String(255), primary_key=True),
    Column("recipient", String(255), primary_key=True),
    Column("account_sid", String(SID), nullable=False),
    Column("date_created", DateTime, nullable=False),
)

emails = Table(
    "emails",
    metadata,
    Column("sid", String(SID), primary_key=True),
    Column("account_sid", String(SID), nullable=False, index=True),
    Column("from_addr", String(320), nullable=False),
    Column("to_addr", Text, nullable=False),
    Column("cc", Text),
    Column("bcc", Text),
    Column("subject", String(255), nullable=False),
    Column("body", Text, nullable=False),
    Column("content_type", String(64), nullable=False),
    Column("status", String(16), nullable=False),  # queued | sending | sent | failed
    Column("error_message", Text),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", DateTime),
    Column("lease_owner", String(64)),
    Column("lease_until", DateTime),
    Column("date_created", DateTime, nullable=False),
    Column("date_updated", DateTime, nullable=False),
    Column("date_sent", DateTime),
)
Index("ix_emails_due", emails.c.status, emails.c.next_attempt_at)
# Fair claiming of the outbox (revision 0013_email_fair_claiming), as for messages above.
QUEUED_EMAIL = text("status = 'queued'")
Index("ix_emails_queued_account", emails.c.account_sid, emails.c.next_attempt_at, emails.c.date_created,
      sqlite_where=QUEUED_EMAIL, postgresql_where=QUEUED_EMAIL)

# SMPP delivery receipts that arrived before the submit_sm_resp they answer was recorded (the
# carrier's id is not in message_segments yet); re-applied once it is (restcomm.smpp.mo).
smpp_parked_receipts = Table(
    "smpp_parked_receipts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("carrier", String(64), nullable=False),
    Column("carrier_message_id", String(128), nullable=False),
    Column("status", String(16), nullable=False),
    Column("error_code", Integer),
    Column("date_received", DateTime, nullable=False),
)
Index("ix_parked_receipts_id", smpp_parked_receipts.c.carrier, smpp_parked_receipts.c.carrier_message_id)
Index("ix_parked_receipts_received", smpp_parked_receipts.c.date_received)

# Parts of a concatenated MO waiting for their siblings (restcomm.smpp.mo.MoParts). A part is
# stored before the SMSC is acknowledged; the last one to arrive moves the whole text into the
# inbound pipeline and marks the parts done in one transaction. The key is the message as handsets
# number it (addresses, reference, total), not the bind or node that received the part; a part
# delivered twice hits the primary key and is ignored. Done parts are kept a while (until
# date_expires) so a part the SMSC delivers again after its message went through is recognized.
mo_parts = Table(
    "mo_parts",
    metadata,
    Column("source", String(64), primary_key=True),
    Column("destination", String(64), primary_key=True),
    Column("reference", Integer, primary_key=True, autoincrement=False),
    Column("total", Integer, primary_key=True, autoincrement=False),
    Column("part", Integer, primary_key=True, autoincrement=False),
    Column("carrier", String(64), nullable=False),
    Column("body", Text, nullable=False),
    Column("data_coding", Integer, nullable=False),
    Column("alphabet", String(16), nullable=False),
    Column("source_ton", Integer, nullable=False),
    Column("destination_ton", Integer, nullable=False),
    Column("date_received", DateTime, nullable=False),
    # Waiting: when the message is given up as incomplete (the carrier's mo_reassembly_timeout).
    # Done: when the part is forgotten.
    Column("date_expires", DateTime, nullable=False),
    Column("date_done", DateTime),  # when its message entered the pipeline; NULL while waiting
)
Index("ix_mo_parts_expires", mo_parts.c.date_expires)

# ---------------------------------------------------------------------------------------------
# Voice (revision 0008_voice)

# One row per call leg: written when the call starts (queued or ringing) and again on every
# transition, last when it ends. A leg placed by <Dial> has a parent_call_sid. The node that runs a
# live call holds a lease on it (node, lease_until) and renews it; a call whose lease expired belongs
# to a node that died, and is closed by voice.store.close_orphaned_calls.
calls = Table(
    "calls",
    metadata,
    Column("sid", String(SID), primary_key=True),
    Column("parent_call_sid", String(SID)),
    Column("account_sid", String(SID), nullable=False),
    Column("api_version", String(16), nullable=False),
    Column("from_number", String(512), nullable=False),
    Column("to_number", String(512), nullable=False),
    Column("from_formatted", String(512)),
    Column("to_formatted", String(512)),
    Column("caller_name", String(255)),
    Column("forwarded_from", String(255)),
    Column("phone_number_sid", String(SID)),
    # inbound | outbound-api | outbound-dial
    Column("direction", String(16), nullable=False),
    # queued | ringing | in-progress | completed | busy | failed | no-answer | canceled
    Column("status", String(16), nullable=False),
    Column("answered_by", String(32)),
    Column("start_time", DateTime),
    Column("answer_time", DateTime),
    Column("end_time", DateTime),
    Column("duration", Integer),  # seconds from answer to end (0 when never answered)
    Column("ring_duration", Integer),
    Column("price", String(16)),
    Column("price_unit", String(8), nullable=False, default="USD"),
    # The application: where its RCML comes from, and where its status callbacks go.
    Column("url", Text),
    Column("method", String(8)),
    Column("fallback_url", Text),
    Column("fallback_method", String(8)),
    Column("application_sid", String(SID)),
    Column("status_callback", Text),
    Column("status_callback_method", String(8)),
    Column("status_callback_events", String(64)),  # comma-separated: initiated,ringing,answered,completed
    Column("timeout", Integer),
    Column("record", Boolean, nullable=False, default=False),
    Column("sip_call_id", String(255)),
    Column("error_code", Integer),
    Column("end_reason", Text),
    Column("node", String(64)),
    Column("lease_until", DateTime),
    Column("date_created", DateTime, nullable=False),
    Column("date_updated", DateTime, nullable=False),
)
Index("ix_calls_account_created", calls.c.account_sid, calls.c.date_created)
Index("ix_calls_parent", calls.c.parent_call_sid)
Index("ix_calls_live", calls.c.status, calls.c.lease_until)

recordings = Table(
    "recordings",
    metadata,
    Column("sid", String(SID), primary_key=True),
    Column("account_sid", String(SID), nullable=False),
    Column("call_sid", String(SID)),
    Column("api_version", String(16), nullable=False),
    Column("duration", Integer),  # whole seconds; null while recording
    Column("file_path", Text),  # under the data directory; WAV 8 kHz 16-bit, flushed as written
    Column("status", String(16), nullable=False),  # in-progress | completed | absent | failed | deleted
    Column("channels", Integer, nullable=False, default=1),
    Column("source", String(32), nullable=False),  # RecordVerb | DialVerb | OutboundAPI | StartCallRecording
    Column("error_code", Integer),
    Column("start_time", DateTime),
    Column("price", String(16)),
    Column("price_unit", String(8), nullable=False, default="USD"),
    Column("date_created", DateTime, nullable=False),
    Column("date_updated", DateTime, nullable=False),
)
Index("ix_recordings_account_created", recordings.c.account_sid, recordings.c.date_created)
Index("ix_recordings_call", recordings.c.call_sid)

# SIP registrations of Clients (the registrar's bindings), shared by every node. One row per
# (organization, address of record, contact); Call-ID and CSeq order refreshes (RFC 3261 §10.3).
sip_registrations = Table(
    "sip_registrations",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("organization_sid", String(SID), nullable=False),
    Column("aor", String(255), nullable=False),  # the Client's login
    Column("contact", String(1024), nullable=False),
    Column("source_address", String(128)),  # host:port the REGISTER came from (NAT)
    Column("transport", String(8), nullable=False),
    Column("expires_at", DateTime, nullable=False),
    Column("user_agent", String(255)),
    Column("call_id", String(255), nullable=False),
    Column("cseq", Integer, nullable=False),
    Column("node", String(64)),
    Column("date_created", DateTime, nullable=False),
    Column("date_updated", DateTime, nullable=False),
    UniqueConstraint("organization_sid", "aor", "contact", name="uq_sip_registrations_binding"),
)
Index("ix_sip_registrations_expires", sip_registrations.c.expires_at)

# SIP trunks (Restcomm's Gateways API): the same thing as a [[sip_trunks]] entry of the
# configuration file. The password is kept usable (digest to the carrier needs it) and never
# returned by the API.
gateways = Table(
    "gateways",
    metadata,
    Column("sid", String(SID), primary_key=True),
    Column("name", String(255), nullable=False, unique=True),
    Column("host", String(255), nullable=False),
    Column("port", Integer, nullable=False),
    Column("transport", String(8), nullable=False),
    Column("username", String(255)),
    Column("password", String(255)),
    Column("register", Boolean, nullable=False, default=False),
    Column("ttl", Integer, nullable=False, default=3600),
    Column("prefixes", Text, nullable=False, default=""),  # comma-separated
    Column("inbound_addresses", Text, nullable=False, default=""),  # comma-separated
    Column("date_created", DateTime, nullable=False),
    Column("date_updated", DateTime, nullable=False),
)

# Organizations (Restcomm's /Organizations): a domain that scopes Client logins, numbers and SIP
# registrations. The instance's own organization (instance.organization_sid) is kept here with the
# configured domain at every start; administrators add others.
organizations = Table(
    "organizations",
    metadata,
    Column("sid", String(SID), primary_key=True),
    Column("domain_name", String(255), nullable=False, unique=True),
    Column("status", String(16), nullable=False),
    Column("date_created", DateTime, nullable=False),
    Column("date_updated", DateTime, nullable=False),
)

# Tags: key/value labels on an account's resources (the account itself, incoming numbers, clients,
# applications). One value per key and resource; list operations filter on them (?Tag=key:value).
tags = Table(
    "tags",
    metadata,
    Column("sid", String(SID), primary_key=True),
    Column("account_sid", String(SID), nullable=False, index=True),
    Column("resource_type", String(32), nullable=False),
    Column("resource_sid", String(SID), nullable=False),
    Column("key", String(128), nullable=False),
    Column("value", String(256), nullable=False),
    Column("date_created", DateTime, nullable=False),
    Column("date_updated", DateTime, nullable=False),
    UniqueConstraint("resource_sid", "key", name="uq_tags_resource_key"),
)
# Filtering a list by tag: the resources of one account holding key (and value).
Index("ix_tags_account_key_value", tags.c.account_sid, tags.c.key, tags.c.value)

# IAM users: people who sign in to an account with their own email and password and act with their
# own role; the audit log names them (credential_sid). Emails are unique among users and accounts.
users = Table(
    "users",
    metadata,
    Column("sid", String(SID), primary_key=True),
    Column("account_sid", String(SID), nullable=False, index=True),
    Column("email", String(320), nullable=False, unique=True),
    Column("friendly_name", String(255), nullable=False),
    Column("role", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("password_hash", Text, nullable=False),
    Column("date_created", DateTime, nullable=False),
    Column("date_updated", DateTime, nullable=False),
)

# Profiles (Restcomm's /Profiles): a JSON document of feature enablement and session throttling,
# linked to accounts and organizations. An account's effective profile is its own link, else its
# nearest ancestor's, else its organization's, else the default profile (restcomm.profiles).
profiles = Table(
    "profiles",
    metadata,
    Column("sid", String(SID), primary_key=True),
    Column("document", Text, nullable=False),
    Column("date_created", DateTime, nullable=False),
    Column("date_updated", DateTime, nullable=False),
)

# At most one profile per account or organization (target_sid: AC… or OR…); the effective-profile
# lookup reads these by target SID, the profile's relationships by profile SID.
profile_associations = Table(
    "profile_associations",
    metadata,
    Column("target_sid", String(SID), primary_key=True),
    Column("profile_sid", String(SID), nullable=False, index=True),
    Column("date_created", DateTime, nullable=False),
    Column("date_updated", DateTime, nullable=False),
)
