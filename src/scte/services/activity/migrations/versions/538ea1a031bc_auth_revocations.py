"""auth revocations: the sign-in sessions the members service revoked (scte.kit.revocation)

Revision ID: 538ea1a031bc
Revises: 217962500b14
Create Date: 2026-12-07 20:16:23.338526
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "538ea1a031bc"
down_revision: str | None = "217962500b14"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "auth_revocations",
        sa.Column("member_id", sa.String(length=128), nullable=False),
        sa.Column(
            "session_id", sa.String(length=128), nullable=False, comment="'' = every session of the member below epoch"
        ),
        sa.Column("epoch", sa.Integer(), nullable=False, comment="tokens whose rev claim is below this are revoked"),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("member_id", "session_id"),
    )


def downgrade() -> None:
    op.drop_table("auth_revocations")
