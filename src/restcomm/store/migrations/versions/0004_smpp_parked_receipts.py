"""SMPP: delivery receipts parked until the submit_sm_resp they answer is recorded.

Revision ID: 0004_smpp_parked_receipts
Revises: 0003_number_patterns
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_smpp_parked_receipts"
down_revision = "0003_number_patterns"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "smpp_parked_receipts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("carrier", sa.String(length=64), nullable=False),
        sa.Column("carrier_message_id", sa.String(length=128), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("error_code", sa.Integer(), nullable=True),
        sa.Column("date_received", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_parked_receipts_id", "smpp_parked_receipts", ["carrier", "carrier_message_id"], unique=False
    )
    op.create_index("ix_parked_receipts_received", "smpp_parked_receipts", ["date_received"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_parked_receipts_received", table_name="smpp_parked_receipts")
    op.drop_index("ix_parked_receipts_id", table_name="smpp_parked_receipts")
    op.drop_table("smpp_parked_receipts")
