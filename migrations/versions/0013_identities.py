"""login_providers and identities: sign in with Google, Apple, Facebook or any OpenID Connect provider

Revision ID: 0013
Revises: 0005
Create Date: 2026-12-01 09:00:00

"""
from alembic import op
import sqlalchemy as sa


revision = "0013"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "login_providers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("label", sa.String(length=80), nullable=False),
        sa.Column("client_id", sa.String(length=255), nullable=False),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.Column("issuer", sa.String(length=512), nullable=True),
        sa.Column("team_id", sa.String(length=32), nullable=True),
        sa.Column("key_id", sa.String(length=32), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["site_id"], ["sites.id"], name=op.f("fk_login_providers_site_id_sites"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_login_providers")),
        sa.UniqueConstraint("site_id", "name", name="uq_login_providers_site_name"),
    )
    with op.batch_alter_table("login_providers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_login_providers_site_id"), ["site_id"], unique=False)

    op.create_table(
        "identities",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("reader_id", sa.Integer(), nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("subject", sa.String(length=255), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("email_verified", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("last_used_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["site_id"], ["sites.id"], name=op.f("fk_identities_site_id_sites"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["reader_id"], ["readers.id"], name=op.f("fk_identities_reader_id_readers"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_identities")),
        sa.UniqueConstraint("site_id", "provider", "subject", name="uq_identities_site_provider_subject"),
    )
    with op.batch_alter_table("identities", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_identities_reader_id"), ["reader_id"], unique=False)


def downgrade():
    with op.batch_alter_table("identities", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_identities_reader_id"))
    op.drop_table("identities")

    with op.batch_alter_table("login_providers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_login_providers_site_id"))
    op.drop_table("login_providers")
