"""Organizations (the instance's own included), tags on an account's resources, IAM users.

Revision ID: 0010_management
Revises: 0009_client_sha256
"""

import datetime

import sqlalchemy as sa
from alembic import op

revision = "0010_management"
down_revision = "0009_client_sha256"
branch_labels = None
depends_on = None


def upgrade() -> None:
    table = op.create_table(
        "organizations",
        sa.Column("sid", sa.String(length=34), nullable=False),
        sa.Column("domain_name", sa.String(length=255), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("date_created", sa.DateTime(), nullable=False),
        sa.Column("date_updated", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("sid"),
        sa.UniqueConstraint("domain_name"),
    )
    # The organization every existing account and client already names. Its domain is set from
    # the configuration at the next start (web/bootstrap.py); Restcomm's default until then.
    bind = op.get_bind()
    org = bind.execute(sa.text("SELECT value FROM instance WHERE key = 'organization_sid'")).scalar()
    if org is not None:
        now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
        op.bulk_insert(table, [{"sid": org, "domain_name": "default.restcomm.com", "status": "active",
                                "date_created": now, "date_updated": now}])
    op.create_table(
        "tags",
        sa.Column("sid", sa.String(length=34), nullable=False),
        sa.Column("account_sid", sa.String(length=34), nullable=False),
        sa.Column("resource_type", sa.String(length=32), nullable=False),
        sa.Column("resource_sid", sa.String(length=34), nullable=False),
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("value", sa.String(length=256), nullable=False),
        sa.Column("date_created", sa.DateTime(), nullable=False),
        sa.Column("date_updated", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("sid"),
        sa.UniqueConstraint("resource_sid", "key", name="uq_tags_resource_key"),
    )
    op.create_index(op.f("ix_tags_account_sid"), "tags", ["account_sid"], unique=False)
    op.create_index("ix_tags_account_key_value", "tags", ["account_sid", "key", "value"], unique=False)
    op.create_table(
        "users",
        sa.Column("sid", sa.String(length=34), nullable=False),
        sa.Column("account_sid", sa.String(length=34), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("friendly_name", sa.String(length=255), nullable=False),
        sa.Column("role", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("date_created", sa.DateTime(), nullable=False),
        sa.Column("date_updated", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("sid"),
        sa.UniqueConstraint("email"),
    )
    op.create_index(op.f("ix_users_account_sid"), "users", ["account_sid"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_users_account_sid"), table_name="users")
    op.drop_table("users")
    op.drop_index("ix_tags_account_key_value", table_name="tags")
    op.drop_index(op.f("ix_tags_account_sid"), table_name="tags")
    op.drop_table("tags")
    op.drop_table("organizations")
