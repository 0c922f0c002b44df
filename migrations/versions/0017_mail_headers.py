"""outbox.sender, reply_to, message_id: each mail's headers, fixed when it is queued

Revision ID: 0017
Revises: 0014
Create Date: 2026-12-01 09:00:00

"""
from alembic import op
import sqlalchemy as sa


revision = "0017"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sender", sa.String(length=400), nullable=True))
        batch_op.add_column(sa.Column("reply_to", sa.String(length=320), nullable=True))
        batch_op.add_column(sa.Column("message_id", sa.String(length=255), nullable=True))


def downgrade():
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_column("message_id")
        batch_op.drop_column("reply_to")
        batch_op.drop_column("sender")
