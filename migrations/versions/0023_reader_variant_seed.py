"""readers.variant_seed: the seed of the experiments' variants a reader carries from their anonymous id

Every reader there is has none: they take their own (meter.sites.rules.experiments.reader_seed).

Revision ID: 0023
Revises: 0022
Create Date: 2027-01-12 10:00:00

"""
from alembic import op
import sqlalchemy as sa


revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("readers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("variant_seed", sa.String(length=32), nullable=True))


def downgrade():
    with op.batch_alter_table("readers", schema=None) as batch_op:
        batch_op.drop_column("variant_seed")
