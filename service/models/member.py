"""A member of a community, reached by SMS or voice."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, one_of

STATUSES = ("active", "paused", "opted_out", "left")
CHANNELS = ("sms", "voice")


class Member(Base):
    """A member: E.164 phone unique within the community, a language, a channel and a status."""

    __tablename__ = "members"
    __table_args__ = (
        UniqueConstraint("community_id", "phone"),
        # The clock's pass every second: paused members whose pause has run out (`consent.end_pauses`).
        Index("ix_members_status_paused_until", "status", "paused_until"),
        one_of("status", STATUSES),
        one_of("channel", CHANNELS),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("communities.id"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    phone: Mapped[str] = mapped_column(String(20), index=True)
    language: Mapped[str | None] = mapped_column(String(16))
    channel: Mapped[str] = mapped_column(String(8), default="sms")
    status: Mapped[str] = mapped_column(String(16), default="active")
    consent_at: Mapped[datetime | None]
    opted_out_at: Mapped[datetime | None]
    paused_until: Mapped[datetime | None]
    fields: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime]

    community: Mapped["Community"] = relationship(back_populates="members")  # noqa: F821

    @property
    def reachable(self) -> bool:
        """True unless the member opted out or left: the only states nothing may be sent in."""
        return self.status not in ("opted_out", "left")
