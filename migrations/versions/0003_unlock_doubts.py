"""unlock_doubts: recording checks whose Redis reply was lost, settled into the ledger later

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 13:40:00

"""
from alembic import op
import sqlalchemy as sa


revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "unlock_doubts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("subject", sa.String(length=160), nullable=False),
        sa.Column("article_id", sa.String(length=512), nullable=False),
        sa.Column("checked_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["site_id"], ["sites.id"], name=op.f("fk_unlock_doubts_site_id_sites"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_unlock_doubts")),
    )
    with op.batch_alter_table("unlock_doubts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_unlock_doubts_checked_at"), ["checked_at"], unique=False)


def downgrade():
    with op.batch_alter_table("unlock_doubts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_unlock_doubts_checked_at"))

    op.drop_table("unlock_doubts")
