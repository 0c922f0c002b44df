"""grant_keys: the keys meter signs a site's grants with (private half sealed, public half as a JWK)

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-08 12:00:00

"""

from alembic import op
import sqlalchemy as sa


revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "grant_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("kid", sa.String(length=32), nullable=False),
        sa.Column("alg", sa.String(length=8), nullable=False),
        sa.Column("private_key", sa.Text(), nullable=False),
        sa.Column("public_jwk", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("retired_at", sa.DateTime(), nullable=True),
        sa.Column("published_until", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["site_id"], ["sites.id"], name=op.f("fk_grant_keys_site_id_sites"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_grant_keys")),
        sa.UniqueConstraint("kid", name=op.f("uq_grant_keys_kid")),
    )
    with op.batch_alter_table("grant_keys", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_grant_keys_site_id"), ["site_id"], unique=False)


def downgrade():
    with op.batch_alter_table("grant_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_grant_keys_site_id"))
    op.drop_table("grant_keys")
