"""A community, its staff and the settings its messages are made from."""

from __future__ import annotations

from datetime import datetime, time, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint, exists
from sqlalchemy.orm import Mapped, column_property, mapped_column, relationship

from flows.schedule import local_to_utc

from .base import Base

UK_CRISIS_CONTACTS: list[dict[str, str]] = [
    {"name": "Samaritans", "how": "call 116 123", "when": "free, 24/7"},
    {"name": "Shout", "how": "text SHOUT to 85258", "when": "free, 24/7"},
    {"name": "NHS 111", "how": "call 111, mental health option", "when": "24/7"},
    {"name": "Emergency", "how": "call 999 or go to A&E", "when": "if a life is at risk"},
]

MAX_CRISIS_CONTACTS = 6

# The community's texts may say {community} (its name) and {crisis} (its first crisis contact,
# `contact_line`), so a community that changes its crisis line changes every text naming it.
DEFAULT_HELP_TEXT = (
    "{community} check-ins. Text MENU for options, PAUSE 7 for a break, STOP to stop. "
    "Need to talk now? {crisis}."
)
DEFAULT_WELCOME_TEXT = (
    "Welcome to {community} check-ins. We'll text now and then to ask how you are. "
    "Reply HELP for help or STOP to stop. {crisis}."
)
DEFAULT_UNKNOWN_REPLY = "Sorry, this service does not know your number. If you need support: {crisis}."
DEFAULT_OPT_OUT_REPLY = "You will get no more messages from {community}. Text START to join again."
DEFAULT_OPT_IN_REPLY = "Welcome back to {community}. Reply HELP for help or STOP to stop."


def contact_line(contact: dict[str, str]) -> str:
    """A crisis contact as a text says it: "Samaritans, call 116 123 (free, 24/7)"."""
    when = contact.get("when")
    return f"{contact['name']}, {contact['how']}" + (f" ({when})" if when else "")


class Community(Base):
    """A therapeutic community: its clock, language, number and the words it sends."""

    __tablename__ = "communities"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    timezone: Mapped[str] = mapped_column(String(64), default="Europe/London")
    language: Mapped[str] = mapped_column(String(16), default="en")
    region: Mapped[str] = mapped_column(String(2), default="GB")
    phone_number: Mapped[str | None] = mapped_column(String(20), unique=True)
    # Local times; None for none. No column default: one would also fill in a None given on purpose.
    quiet_start: Mapped[time | None]
    quiet_end: Mapped[time | None]
    help_text: Mapped[str] = mapped_column(Text, default=DEFAULT_HELP_TEXT)
    welcome_text: Mapped[str] = mapped_column(Text, default=DEFAULT_WELCOME_TEXT)
    opt_out_reply: Mapped[str] = mapped_column(Text, default=DEFAULT_OPT_OUT_REPLY)
    opt_in_reply: Mapped[str] = mapped_column(Text, default=DEFAULT_OPT_IN_REPLY)
    unknown_reply: Mapped[str | None] = mapped_column(Text, default=DEFAULT_UNKNOWN_REPLY)
    crisis_contacts: Mapped[list[Any]] = mapped_column(default=lambda: list(UK_CRISIS_CONTACTS))
    created_at: Mapped[datetime]

    members: Mapped[list["Member"]] = relationship(back_populates="community")  # noqa: F821

    def render(self, template: str, crisis_line: str | None = None) -> str:
        """Fill `{community}` and `{crisis}` (its crisis line, or `crisis_line`: one about to be
        set) in one of the community's own texts."""
        text = template.replace("{community}", self.name)
        return text.replace("{crisis}", crisis_line or self.crisis_line) if "{crisis}" in text else text

    @property
    def contacts(self) -> list[dict[str, str]]:
        """The crisis contacts texts name; the UK's when none is stored, since a text that
        promises a crisis line must never come out without one."""
        return self.crisis_contacts or UK_CRISIS_CONTACTS

    @property
    def crisis_line(self) -> str:
        """The first crisis contact as members read it."""
        return contact_line(self.contacts[0])

    def quiet_until(self, moment: datetime) -> datetime | None:
        """When the community's quiet hours end, if `moment` falls in them (None if not, or none set)."""
        return quiet_until(moment, self.timezone, self.quiet_start, self.quiet_end)


def quiet_until(moment: datetime, zone_name: str, start: time | None, end: time | None) -> datetime | None:
    """When quiet hours from `start` to `end` (local times in `zone_name`) end, if `moment` falls
    in them; None if not, or none are set. A window such as 21:00-08:00 runs over midnight."""
    if start is None or end is None or start == end:
        return None
    zone = ZoneInfo(zone_name)
    local = moment.astimezone(zone)
    now_, day = local.time(), local.date()
    if start < end:
        quiet = start <= now_ < end
    else:
        quiet = now_ >= start or now_ < end
        if now_ >= start:
            day += timedelta(days=1)  # the evening: quiet until tomorrow's end
    if not quiet:
        return None
    # An end in the hour the clocks skip is the first time after the gap; one in the hour they
    # repeat is its first pass, or the second when `moment` is already past the first.
    ends = local_to_utc(day, (end.hour, end.minute), zone)
    if ends <= moment:
        ends = datetime.combine(day, end, tzinfo=zone).replace(fold=1).astimezone(timezone.utc)
    return ends


class Facilitator(Base):
    """A member of staff (or a member on the rota) who gets alerts and digests."""

    __tablename__ = "facilitators"
    __table_args__ = (UniqueConstraint("community_id", "phone"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("communities.id"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    phone: Mapped[str] = mapped_column(String(20))
    on_call: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime]


# Whether an alert raised in the community reaches anyone (`alerts.notify_facilitators`), read with
# the community in the same statement: a flow tells a member "I've let the team know" only then.
Community.has_team = column_property(exists().where(Facilitator.community_id == Community.id))
