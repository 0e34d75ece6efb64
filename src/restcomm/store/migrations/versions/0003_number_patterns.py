"""Inbound routing: an index to find an organization's pattern numbers (regexes and the "*"
catch-all) without scanning all of its numbers.

Revision ID: 0003_number_patterns
Revises: 0002_messaging
"""

from alembic import op

revision = "0003_number_patterns"
down_revision = "0002_messaging"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_numbers_org_pattern", "incoming_phone_numbers", ["organization_sid", "is_pattern"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_numbers_org_pattern", table_name="incoming_phone_numbers")
