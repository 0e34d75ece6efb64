"""SMPP: parts of concatenated MO stored until the whole message has arrived (or times out).

Revision ID: 0006_mo_parts
Revises: 0005_callback_pending_indexes
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_mo_parts"
down_revision = "0005_callback_pending_indexes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "mo_parts",
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("destination", sa.String(length=64), nullable=False),
        sa.Column("reference", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("total", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("part", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("carrier", sa.String(length=64), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("data_coding", sa.Integer(), nullable=False),
        sa.Column("alphabet", sa.String(length=16), nullable=False),
        sa.Column("source_ton", sa.Integer(), nullable=False),
        sa.Column("destination_ton", sa.Integer(), nullable=False),
        sa.Column("date_received", sa.DateTime(), nullable=False),
        sa.Column("date_expires", sa.DateTime(), nullable=False),
        sa.Column("date_done", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("source", "destination", "reference", "total", "part"),
    )
    op.create_index("ix_mo_parts_expires", "mo_parts", ["date_expires"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_mo_parts_expires", table_name="mo_parts")
    op.drop_table("mo_parts")
