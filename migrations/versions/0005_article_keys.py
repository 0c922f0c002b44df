"""article_keys: the secrets publishers sign article descriptors with

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 16:00:00

"""
from alembic import op
import sqlalchemy as sa


revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "article_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("kid", sa.String(length=16), nullable=False),
        sa.Column("secret", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["site_id"], ["sites.id"], name=op.f("fk_article_keys_site_id_sites"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_article_keys")),
        sa.UniqueConstraint("kid", name=op.f("uq_article_keys_kid")),
    )
    with op.batch_alter_table("article_keys", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_article_keys_site_id"), ["site_id"], unique=False)


def downgrade():
    with op.batch_alter_table("article_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_article_keys_site_id"))

    op.drop_table("article_keys")
