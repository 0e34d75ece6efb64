"""Profiles and their links to accounts and organizations, with Restcomm's default profile.

Revision ID: 0011_profiles
Revises: 0010_management
"""

import datetime
import json

import sqlalchemy as sa
from alembic import op

revision = "0011_profiles"
down_revision = "0010_management"
branch_labels = None
depends_on = None

# Restcomm's default profile SID and content (restcomm.profiles.DEFAULT_PROFILE_SID and
# DEFAULT_DOCUMENT, copied so that this migration stays as it was written).
DEFAULT_PROFILE_SID = "PRae6e420f425248d6a26948c17a9e2acf"
DEFAULT_DOCUMENT = {
    "featureEnablement": {
        "DIDPurchase": {}, "subaccountsCreation": {}, "outboundPSTN": {}, "inboundPSTN": {}, "outboundSMS": {},
        "inboundSMS": {}, "asr": {}, "USSD": {"provider": "default"}, "inboundUSSD": {}, "outboundUSSD": {},
    }
}


def upgrade() -> None:
    table = op.create_table(
        "profiles",
        sa.Column("sid", sa.String(length=34), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("date_created", sa.DateTime(), nullable=False),
        sa.Column("date_updated", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("sid"),
    )
    op.create_table(
        "profile_associations",
        sa.Column("target_sid", sa.String(length=34), nullable=False),
        sa.Column("profile_sid", sa.String(length=34), nullable=False),
        sa.Column("date_created", sa.DateTime(), nullable=False),
        sa.Column("date_updated", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("target_sid"),
    )
    op.create_index(op.f("ix_profile_associations_profile_sid"), "profile_associations", ["profile_sid"],
                    unique=False)
    now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
    op.bulk_insert(table, [{"sid": DEFAULT_PROFILE_SID, "document": json.dumps(DEFAULT_DOCUMENT, separators=(",", ":")),
                            "date_created": now, "date_updated": now}])


def downgrade() -> None:
    op.drop_index(op.f("ix_profile_associations_profile_sid"), table_name="profile_associations")
    op.drop_table("profile_associations")
    op.drop_table("profiles")
