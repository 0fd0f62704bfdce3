"""run requests: a submitted recipe, the run's progress and its result

Revision ID: 0003_run_request_recipe
Revises: 0002_loop
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

revision = "0003_run_request_recipe"
down_revision = "0002_loop"
branch_labels = None
depends_on = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("run_requests", schema=None) as batch_op:
        batch_op.add_column(sa.Column("recipe", _JSON, nullable=True))
        batch_op.add_column(sa.Column("result", _JSON, nullable=True))
        batch_op.add_column(sa.Column("progress", _JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("run_requests", schema=None) as batch_op:
        batch_op.drop_column("progress")
        batch_op.drop_column("result")
        batch_op.drop_column("recipe")
