"""Organizations: a table of them (the instance's own organization included).

Revision ID: 0010_organizations
Revises: 0009_client_sha256
"""

import datetime

import sqlalchemy as sa
from alembic import op

revision = "0010_organizations"
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


def downgrade() -> None:
    op.drop_table("organizations")
