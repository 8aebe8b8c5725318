"""The notifications database: the delivery log (each notice, its state and attempts), channel
preferences, and read models of recipients (members' addresses) and company admins."""

from __future__ import annotations

from sqlalchemy import JSON, Column, Index, Integer, MetaData, PrimaryKeyConstraint, String, Table, Text

from scte.bus.storage import UtcDateTime, include_in
from scte.kit.revocation import include_revocations

__all__ = ["company_admins", "deliveries", "employments", "metadata", "preferences", "recipients"]

metadata = MetaData()

recipients = Table(
    "recipients",
    metadata,
    Column("member_id", String(128), primary_key=True),
    Column("email", String(320), nullable=True),
    Column("display_name", String(200), nullable=True),
)
"""Members' contact details, from member.registered and member.profile_updated."""

preferences = Table(
    "preferences",
    metadata,
    Column("member_id", String(128), primary_key=True),
    Column("channels", JSON, nullable=False, default=dict),
    Column("phone", String(32), nullable=True),
    Column("push_token", String(256), nullable=True),
    Column("updated_at", UtcDateTime, nullable=False),
)
"""category -> list of channels; a category not listed goes by email."""

employments = Table(
    "employments",
    metadata,
    Column("company_id", String(128), nullable=False),
    Column("member_id", String(128), nullable=False),
    PrimaryKeyConstraint("company_id", "member_id", name="pk_notification_employments"),
    Index("ix_notification_employments_member", "member_id"),
)
"""Current employment links, from company.employment_changed: whose admins hear of a member."""

company_admins = Table(
    "company_admins",
    metadata,
    Column("company_id", String(128), nullable=False),
    Column("member_id", String(128), nullable=False),
    PrimaryKeyConstraint("company_id", "member_id", name="pk_company_admins"),
)
"""From company.roles_changed."""

deliveries = Table(
    "deliveries",
    metadata,
    Column("notification_id", String(64), primary_key=True),
    Column("recipient_id", String(128), nullable=False),
    Column("channel", String(8), nullable=False),
    Column("template", String(64), nullable=False),
    Column("cause_event_id", String(64), nullable=False),
    Column("cause_event_type", String(128), nullable=False),
    Column("correlation_id", String(64), nullable=True),
    Column("context", JSON, nullable=False),
    Column("status", String(16), nullable=False, comment="pending | sent | failed"),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", UtcDateTime, nullable=True, comment="when pending: due from then"),
    Column("address", String(320), nullable=True),
    Column("subject", Text, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("sent_at", UtcDateTime, nullable=True),
    Index("ix_deliveries_due", "status", "next_attempt_at"),
    Index("ix_deliveries_recipient", "recipient_id", "created_at"),
)
"""The delivery log: a notice is written here (pending) in the transaction that handles its event,
then the dispatcher sends it; a failed send stays pending with a later `next_attempt_at`."""

include_in(metadata)
include_revocations(metadata)
