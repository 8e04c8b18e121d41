"""A member's run through a flow, the results it saved, the alerts it raised, its timers."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from flows.steps.alert import SEVERITIES

from .base import Base, one_of

# What a timer is for: an ask's reminder and no-answer, a wait step's end, the flow's expiry.
TIMER_KINDS = ("reminder", "no_answer", "wait", "expiry")


class FlowVersion(Base):
    """A flow's source as it was when a conversation started, kept so the conversation can finish on it."""

    __tablename__ = "flow_versions"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    flow_id: Mapped[str] = mapped_column(String(64), index=True)
    version: Mapped[int]
    source_path: Mapped[str] = mapped_column(Text)
    source_text: Mapped[str] = mapped_column(Text)
    loaded_at: Mapped[datetime]


class Conversation(Base):
    """The engine's JSON state for one member in one flow."""

    __tablename__ = "conversations"
    __table_args__ = (
        Index("ix_conversations_member_active", "member_id", "active"),
        Index("ix_conversations_member_origin", "member_id", "origin"),
        # One conversation in progress per member, whatever races the processes run.
        Index("uq_conversations_one_active", "member_id", unique=True,
              postgresql_where=text("active"), sqlite_where=text("active")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    flow_id: Mapped[str] = mapped_column(String(64))
    flow_digest: Mapped[str] = mapped_column(ForeignKey("flow_versions.digest"))
    state: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    active: Mapped[bool] = mapped_column(default=True)
    # Set while it waits behind a flow started over it (`conversations.start_flow`): not active,
    # not ended; it resumes when that flow ends.
    suspended_at: Mapped[datetime | None]
    ended_reason: Mapped[str | None] = mapped_column(String(32))
    # What started it: "schedule:<id>:<slot>:<member>", "facilitator:...", "reply:<MessageSid>", a
    # hand-over's origin with its depth. A scheduled run started again (a second clock, a crash
    # half-way) skips the members it started already.
    origin: Mapped[str | None] = mapped_column(String(200))
    started_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Result(Base):
    """A value a flow saved; saving the same name again in a conversation overwrites it."""

    __tablename__ = "results"
    __table_args__ = (UniqueConstraint("conversation_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id"))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), index=True)
    flow_id: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(64))
    value: Mapped[str | None] = mapped_column(Text)
    category: Mapped[str | None] = mapped_column(String(64))
    saved_at: Mapped[datetime]


class Alert(Base):
    """Something a facilitator should look at."""

    __tablename__ = "alerts"
    __table_args__ = (one_of("severity", SEVERITIES),)

    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("communities.id"), index=True)
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"), index=True)
    # Looked up when a text ends a conversation: did it raise an alert (`converse._raised_an_alert`).
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversations.id"), index=True)
    severity: Mapped[str] = mapped_column(String(8))
    summary: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]
    acknowledged_at: Mapped[datetime | None]
    acknowledged_by: Mapped[int | None] = mapped_column(ForeignKey("facilitators.id"))


class Timer(Base):
    """A conversation's wait (reminder, no answer, expiry): the clock resumes the flow when due."""

    __tablename__ = "timers"
    __table_args__ = (UniqueConstraint("conversation_id", "token"), Index("ix_timers_due", "fired_at", "due_at"),
                      one_of("kind", TIMER_KINDS))

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id"))
    token: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    due_at: Mapped[datetime]
    fired_at: Mapped[datetime | None]


class Schedule(Base):
    """When a scheduled flow next starts for a community; the clock advances it under a row lock."""

    __tablename__ = "schedules"
    __table_args__ = (UniqueConstraint("community_id", "flow_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("communities.id"))
    flow_id: Mapped[str] = mapped_column(String(64))
    next_due_at: Mapped[datetime]
    last_run_at: Mapped[datetime | None]
    # Set while a run waits to try again for members who were busy (`schedules.RETRY_EVERY`).
    retry_at: Mapped[datetime | None]
