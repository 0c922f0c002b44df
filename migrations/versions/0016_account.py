"""The reader's own account: sessions' device label and last use, a pending address change, retention's index

Revision ID: 0016
Revises: 0017
Create Date: 2026-12-02 10:00:00

"""
from alembic import op
import sqlalchemy as sa


revision = "0016"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("reader_sessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("device", sa.String(length=80), nullable=True))
        batch_op.add_column(sa.Column("last_used_at", sa.DateTime(), nullable=True))
    with op.batch_alter_table("readers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("pending_email", sa.String(length=320), nullable=True))
        batch_op.create_index("ix_readers_unverified", ["verified_at", "created_at"], unique=False)


def downgrade():
    with op.batch_alter_table("readers", schema=None) as batch_op:
        batch_op.drop_index("ix_readers_unverified")
        batch_op.drop_column("pending_email")
    with op.batch_alter_table("reader_sessions", schema=None) as batch_op:
        batch_op.drop_column("last_used_at")
        batch_op.drop_column("device")
