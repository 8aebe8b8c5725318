"""exam questions: each exam's paper, sat by members from the portal

Revision ID: b7c1d2e3f405
Revises: a645adf01500
Create Date: 2026-12-07 23:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "b7c1d2e3f405"
down_revision: str | None = "a645adf01500"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "exam_questions",
        sa.Column("exam_id", sa.String(length=16), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("prompt", sa.Text(), nullable=False),
        sa.Column("choices", sa.Text(), nullable=False, comment="a JSON array of the choices' texts"),
        sa.Column("answer", sa.Integer(), nullable=False, comment="the index of the right choice"),
        sa.ForeignKeyConstraint(["exam_id"], ["exams.exam_id"]),
        sa.PrimaryKeyConstraint("exam_id", "number"),
    )


def downgrade() -> None:
    op.drop_table("exam_questions")
