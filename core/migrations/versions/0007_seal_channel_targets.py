"""alert rules: seal the webhook URLs and signing secrets already stored in plain text

The column keeps its JSON type; only the values of each channel's ``url`` and ``secret`` change
(core/sealing.py, under the key of the settings this migration runs with).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 14:20:00.000000
"""
import json
from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

from core.sealing import UNSEALABLE, current_key, seal_channels, unseal_channels

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _rewrite(change: Callable[..., list[dict[str, Any]]]) -> None:
    conn = op.get_bind()
    rule = sa.table('alert_rule', sa.column('id', sa.Integer), sa.column('channels', sa.JSON))
    key = current_key()
    for rule_id, channels in conn.execute(sa.select(rule.c.id, rule.c.channels)).all():
        if isinstance(channels, str):  # a driver that hands JSON back as text
            channels = json.loads(channels)
        new = change(channels, key=key)
        if new != channels:
            conn.execute(rule.update().where(rule.c.id == rule_id).values(channels=new))


def upgrade() -> None:
    _rewrite(seal_channels)


def downgrade() -> None:
    # Back to plain text: what an older release reads. A value under another key stays sealed.
    def opened(channels: list[dict[str, Any]], *, key: bytes) -> list[dict[str, Any]]:
        return [
            {k: v for k, v in c.items() if k != UNSEALABLE}
            for c in unseal_channels(channels, key=key)
        ]

    _rewrite(opened)
