"""readers.pending_password_hash: a later registration's password, installed by its activation link

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 09:00:00

"""
from alembic import op
import sqlalchemy as sa


revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("readers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("pending_password_hash", sa.String(length=255), nullable=True))


def downgrade():
    with op.batch_alter_table("readers", schema=None) as batch_op:
        batch_op.drop_column("pending_password_hash")
