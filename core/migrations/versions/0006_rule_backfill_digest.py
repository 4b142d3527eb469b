"""alert rules: a digest of the history last backfilled, so detection does not backtest the
same history again on every pass

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07 01:10:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Null for every existing rule: the next pass backfills once, as before, and records it.
    with op.batch_alter_table('alert_rule', schema=None) as batch_op:
        batch_op.add_column(sa.Column('backfill_digest', sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('alert_rule', schema=None) as batch_op:
        batch_op.drop_column('backfill_digest')
