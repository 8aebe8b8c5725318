"""invitations: a company's invitation that the member accepts or refuses

Revision ID: 5b0e7c1d9a21
Revises: 80cf50062fc6
Create Date: 2026-12-07 20:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "5b0e7c1d9a21"
down_revision: str | None = "80cf50062fc6"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "invitations",
        sa.Column("invitation_id", sa.String(length=64), nullable=False),
        sa.Column("company_id", sa.String(length=128), nullable=False),
        sa.Column("member_id", sa.String(length=128), nullable=True),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("invited_by", sa.String(length=128), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("invitation_id"),
    )
    with op.batch_alter_table("invitations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_invitations_company_id"), ["company_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_invitations_member_id"), ["member_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_invitations_email"), ["email"], unique=False)


def downgrade() -> None:
    op.drop_table("invitations")
