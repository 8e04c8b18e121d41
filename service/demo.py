"""A small demo community, so a newcomer can text Hearth at once with `hearth simulate`."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from .directory import add_facilitator, add_member, create_community
from .models import Community

DEMO_COMMUNITY = "Demo Community"
DEMO_NUMBER = "+441632960000"  # Ofcom's drama range: never a real line
DEMO_MEMBERS = [("Alex", "07700 900001"), ("Sam", "07700 900002"), ("Priya", "07700 900003")]
DEMO_FACILITATOR = ("Jo", "07700 900100")


DEMO_HELP_TEXT = ("{community}: staff on 01632 960111, 9am-5pm weekdays. Text MENU for options, STOP to stop."
                  " Need to talk now? {crisis}.")


def seed_demo(session: Session) -> Community | None:
    """Create the demo community unless it exists; returns it when it was created."""
    if session.scalar(select(Community.id).where(Community.name == DEMO_COMMUNITY)):
        session.rollback()  # end the transaction that read it: on SQLite an open one blocks other writers
        return None
    community = create_community(session, DEMO_COMMUNITY, "Europe/London", phone_number=DEMO_NUMBER, actor="demo")
    # What HELP and the menu's "HELP for contact details" promise: the staff, then the crisis line.
    community.help_text = DEMO_HELP_TEXT
    for name, phone in DEMO_MEMBERS:
        add_member(session, community, name, phone, welcome=False, actor="demo")
    add_facilitator(session, community, *DEMO_FACILITATOR, on_call=True, actor="demo")
    session.commit()
    return community
