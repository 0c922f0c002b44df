"""ids never reused: SQLite AUTOINCREMENT for readers and gifts; a deleted giver's gifts left behind go

SQLite without AUTOINCREMENT gives a deleted row's id to the next row when it was the highest: the
next reader registered got a deleted reader's id, and with it whatever still named that id. PostgreSQL
sequences never go back, so there this migration only removes the leftovers (below).

The tables whose id something outside the row refers to, and which rows leave:
- `readers`: reader tokens and deletion links ("r"), Redis (cached state, `r:<id>` meter subjects, the
  AMP links of a reader), the ledger's subjects, gifts, identities, sessions. AUTOINCREMENT.
- `gifts`: `gift_openings.gift_id` (SQLite enforces no foreign key, so no cascade either). AUTOINCREMENT.
Not rebuilt: `sites` and `staff` (referred to by tokens, Redis keys and many tables, but never
deleted: a staff member is disabled), and the tables nothing refers to by id (`identities`,
`unlocks`, `unlock_doubts`, `outbox`, `activation_times`, `audit_log`, `api_keys`, `article_keys`,
`login_providers`, `gift_openings`, `bulk_resends`); sessions' ids are random strings.

SQLite's counter starts above every reader id still named anywhere (a deleted giver's gifts,
identities or sessions left behind), so no such id is handed out again; then those gifts and their
openings are deleted (on PostgreSQL the foreign keys' cascade had already removed them). Their Redis
copies refuse any new device (no row in SQL) and expire with the gift.

Revision ID: 0019
Revises: 0015
Create Date: 2026-12-08 10:00:00

"""

from alembic import op
import sqlalchemy as sa


revision = "0019"
down_revision = "0015"
branch_labels = None
depends_on = None

TABLES = ("readers", "gifts")


def _rebuild(autoincrement: bool) -> None:
    for table in TABLES:
        with op.batch_alter_table(
            table, recreate="always", table_kwargs={"sqlite_autoincrement": autoincrement}
        ) as batch_op:
            pass


def upgrade():
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        highest = bind.execute(
            sa.text(
                "SELECT MAX(id) FROM (SELECT MAX(id) AS id FROM readers UNION ALL SELECT MAX(reader_id) FROM gifts"
                " UNION ALL SELECT MAX(reader_id) FROM identities UNION ALL SELECT MAX(reader_id) FROM reader_sessions)"
            )
        ).scalar()
        _rebuild(True)
        for table in TABLES:
            bind.execute(sa.text("DELETE FROM sqlite_sequence WHERE name = :name"), {"name": table})
        if highest:
            bind.execute(sa.text("INSERT INTO sqlite_sequence (name, seq) VALUES ('readers', :seq)"), {"seq": highest})
        gifts_highest = bind.execute(
            sa.text(
                "SELECT MAX(id) FROM (SELECT MAX(id) AS id FROM gifts UNION ALL SELECT MAX(gift_id) FROM gift_openings)"
            )
        ).scalar()
        if gifts_highest:
            bind.execute(
                sa.text("INSERT INTO sqlite_sequence (name, seq) VALUES ('gifts', :seq)"), {"seq": gifts_highest}
            )
    orphans = "SELECT id FROM gifts WHERE reader_id NOT IN (SELECT id FROM readers)"
    bind.execute(
        sa.text(f"DELETE FROM gift_openings WHERE gift_id IN ({orphans}) OR gift_id NOT IN (SELECT id FROM gifts)")
    )
    bind.execute(sa.text("DELETE FROM gifts WHERE reader_id NOT IN (SELECT id FROM readers)"))


def downgrade():
    if op.get_bind().dialect.name == "sqlite":
        _rebuild(False)
