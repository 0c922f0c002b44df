"""unlocks.meter and unlock_doubts.meter: the meter an unlock counted in (a policy's named meters)

Every row there is has counted in the site's one meter: it gets "default", as new rows of it do.
The unique constraint and the index take the meter, so one article may count in two meters.

Revision ID: 0022
Revises: 0021
Create Date: 2027-01-05 10:00:00

"""
from alembic import op
import sqlalchemy as sa


revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("unlocks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("meter", sa.String(length=32), server_default="default", nullable=False))
        batch_op.drop_index("ix_unlocks_subject_period")
        batch_op.drop_constraint("uq_unlocks_subject_article", type_="unique")
        batch_op.create_unique_constraint(
            "uq_unlocks_subject_article", ["site_id", "subject", "meter", "period", "article_id"]
        )
        batch_op.create_index("ix_unlocks_subject_period", ["site_id", "subject", "meter", "period"], unique=False)
    with op.batch_alter_table("unlock_doubts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("meter", sa.String(length=32), server_default="default", nullable=False))


def downgrade():
    """Back to one meter: the named meters' rows go (they could collide with the default meter's)."""
    op.execute("DELETE FROM unlocks WHERE meter <> 'default'")
    op.execute("DELETE FROM unlock_doubts WHERE meter <> 'default'")
    with op.batch_alter_table("unlock_doubts", schema=None) as batch_op:
        batch_op.drop_column("meter")
    with op.batch_alter_table("unlocks", schema=None) as batch_op:
        batch_op.drop_index("ix_unlocks_subject_period")
        batch_op.drop_constraint("uq_unlocks_subject_article", type_="unique")
        batch_op.create_unique_constraint("uq_unlocks_subject_article", ["site_id", "subject", "period", "article_id"])
        batch_op.create_index("ix_unlocks_subject_period", ["site_id", "subject", "period"], unique=False)
        batch_op.drop_column("meter")
