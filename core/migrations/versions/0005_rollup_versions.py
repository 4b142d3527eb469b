"""rollup versions: posts per hour x platform x model version in force, kept with the rollups
so a series reads where the model version changed without scanning its posts

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06 23:55:00.000000
"""
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

import core.models  # noqa: F401

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_INSERT_CHUNK = 5000


def upgrade() -> None:
    version = op.create_table('rollup_version',
    sa.Column('bucket', core.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('platform', sa.String(length=32), nullable=False),
    sa.Column('model_version', sa.String(length=128), nullable=False),
    sa.Column('posts', sa.Integer(), nullable=False),
    sa.Column('first_post_at', core.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('first_classified_at', core.models.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('bucket', 'platform', 'model_version')
    )
    # Fill it from the posts already classified, as trends.rollups.tally_versions counts an
    # hour (one pass over the posts, streamed), so series keep their version marks at once.
    post = sa.table(
        'post',
        sa.column('platform', sa.String()),
        sa.column('created_at', core.models.UTCDateTime()),
        sa.column('deleted_at', core.models.UTCDateTime()),
        sa.column('classification_id', sa.Integer()),
    )
    cls = sa.table(
        'classification',
        sa.column('id', sa.Integer()),
        sa.column('model_version', sa.String()),
        sa.column('created_at', core.models.UTCDateTime()),
    )
    stmt = (
        sa.select(post.c.platform, cls.c.model_version, post.c.created_at, cls.c.created_at)
        .select_from(post)
        .join(cls, cls.c.id == post.c.classification_id)
        .where(post.c.deleted_at.is_(None))
    )
    acc: dict[tuple[datetime, str, str], list[Any]] = {}
    bind = op.get_bind()
    for platform, model, created, classified in bind.execute(
        stmt.execution_options(stream_results=True, yield_per=10000)
    ):
        key = (created.replace(minute=0, second=0, microsecond=0), platform, model)
        row = acc.get(key)
        if row is None:
            acc[key] = [1, created, classified]
        else:
            row[0] += 1
            row[1] = min(row[1], created)
            row[2] = min(row[2], classified)
    rows = [
        {
            'bucket': b,
            'platform': pl,
            'model_version': mv,
            'posts': n,
            'first_post_at': first,
            'first_classified_at': scored,
        }
        for (b, pl, mv), (n, first, scored) in sorted(acc.items())
    ]
    for i in range(0, len(rows), _INSERT_CHUNK):
        bind.execute(sa.insert(version), rows[i : i + _INSERT_CHUNK])


def downgrade() -> None:
    op.drop_table('rollup_version')
