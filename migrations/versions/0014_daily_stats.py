"""daily_stats and activation_times: the figures per site and day (views rolled up from Redis, events counted)

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-30 16:30:00

"""
from alembic import op
import sqlalchemy as sa


revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "daily_stats",
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("metric", sa.String(length=40), nullable=False),
        sa.Column("key", sa.String(length=40), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["site_id"], ["sites.id"], name=op.f("fk_daily_stats_site_id_sites"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("site_id", "day", "metric", "key", name=op.f("pk_daily_stats")),
    )
    op.create_table(
        "activation_times",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("seconds", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["site_id"], ["sites.id"], name=op.f("fk_activation_times_site_id_sites"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_activation_times")),
    )
    with op.batch_alter_table("activation_times", schema=None) as batch_op:
        batch_op.create_index("ix_activation_times_site_day", ["site_id", "day"], unique=False)


def downgrade():
    with op.batch_alter_table("activation_times", schema=None) as batch_op:
        batch_op.drop_index("ix_activation_times_site_day")
    op.drop_table("activation_times")
    op.drop_table("daily_stats")
