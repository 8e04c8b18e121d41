"""Which conversations are stored: all but a member's one-turn exchange that leaves nothing behind."""

from __future__ import annotations

import dataclasses

import pytest
from sqlalchemy import select

from service import create_app
from service.models import Conversation, InboundMessage, Member
from tests.support import sms_form, twiml_messages

HOP = """\
id: hop
version: 1
description: Says one thing and hands over to the menu.
language: en
triggers:
  keywords:
    en: [hop]
steps:
  - id: say
    type: send
    text: "Over to the menu."
  - id: go
    type: start_flow
    flow: help
    params: {keyword: menu}
"""

COLOUR = """\
id: colour
version: 1
description: Sets a field and says nothing.
language: en
triggers:
  keywords:
    en: [colour]
  facilitator:
    params: []
steps:
  - id: set
    type: set_field
    field: colour
    value: blue
"""


@pytest.fixture
def app(config, clock, tmp_path):
    (tmp_path / "hop.yaml").write_text(HOP)
    (tmp_path / "colour.yaml").write_text(COLOUR)
    app = create_app(dataclasses.replace(config, flows_dir=str(tmp_path)), overrides={"TESTING": True, "CLOCK": clock})
    yield app
    app.extensions["hearth_db"].engine.dispose()


def say(post_signed, body: str) -> list[str]:
    response = post_signed("/twilio/sms", sms_form(body))
    assert response.status_code == 200
    return twiml_messages(response.get_data(as_text=True))


def stored(session) -> list[tuple[str, bool, str | None]]:
    session.expire_all()
    return [(c.flow_id, c.active, c.ended_reason)
            for c in session.scalars(select(Conversation).order_by(Conversation.id))]


def test_a_one_turn_exchange_that_leaves_nothing_is_named_only_in_the_inbound_row(post_signed, member, session):
    assert say(post_signed, "colour") == []
    assert stored(session) == []
    assert session.get(Member, member.id).fields == {"colour": "blue"}
    assert session.scalar(select(InboundMessage.handled_as)) == "flow:colour"


def test_a_hand_over_keeps_both_conversations(post_signed, member, session):
    replies = say(post_signed, "hop")
    assert replies[0] == "Over to the menu." and any("CHECKIN" in r for r in replies)
    assert stored(session) == [("hop", False, "started_flow"), ("help", False, "completed")]


def test_a_one_turn_flow_a_facilitator_starts_is_stored(runner, member, session):
    result = runner.invoke(args=["flows", "start", "colour", "--community", "Oak House"])
    assert result.exit_code == 0, result.output
    assert stored(session) == [("colour", False, "completed")]
