"""Clients: the SHA-256 digest HA1 beside the MD5 one (SIP digest with algorithm=SHA-256).

Revision ID: 0009_client_sha256
Revises: 0008_voice
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_client_sha256"
down_revision = "0008_voice"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Null for existing clients: an HA1 cannot be derived from another one. They keep MD5 until
    # their password is set again.
    with op.batch_alter_table("clients") as batch:
        batch.add_column(sa.Column("password_sha256", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("clients") as batch:
        batch.drop_column("password_sha256")
