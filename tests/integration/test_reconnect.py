"""Database connections that die between uses (a PostgreSQL restart): nothing fails in front of a caller.

Each test ends every other connection to the test database, as a restart would, then goes on.
"""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

import service.database
from service.database import make_engine
from service.models import InboundMessage, OutboundMessage
from service.outbox import queue_message
from service.sending import deliver
from service.transports.base import SendResult
from tests.conftest import DATABASE
from tests.support import sms_form

pytestmark = pytest.mark.skipif(DATABASE == "sqlite", reason="a SQLite file has no connections to lose")


def end_other_connections(database_url: str) -> int:
    engine = make_engine(database_url)
    with engine.begin() as conn:
        ended = conn.scalar(text(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'"))
    engine.dispose()
    return ended


@pytest.fixture
def trust_pooled_connections(monkeypatch):
    """No idle check before a pooled connection is used: what dies is found only by using it."""
    monkeypatch.setattr(service.database, "PING_AFTER_IDLE", 3600.0)


def test_a_text_after_the_database_restarted_is_answered(post_signed, member, session, database_url,
                                                         trust_pooled_connections):
    assert post_signed("/twilio/sms", sms_form("hello")).status_code == 200
    assert end_other_connections(database_url) >= 1
    answer = post_signed("/twilio/sms", sms_form("HELP"))
    assert answer.status_code == 200 and "Samaritans" in answer.get_data(as_text=True)
    assert session.scalar(select(func.count(InboundMessage.id))) == 2


def test_a_connection_left_idle_is_checked_before_use(app, session, database_url, monkeypatch):
    engine = app.extensions["hearth_db"].engine
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    end_other_connections(database_url)
    monkeypatch.setattr(service.database, "PING_AFTER_IDLE", 3600.0)
    with pytest.raises(DBAPIError), engine.connect() as conn:  # trusted, and dead
        conn.execute(text("SELECT 1"))
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    end_other_connections(database_url)
    monkeypatch.setattr(service.database, "PING_AFTER_IDLE", 0.0)
    with engine.connect() as conn:  # checked, found dead, replaced
        assert conn.execute(text("SELECT 1")).scalar() == 1


def test_a_message_the_carrier_took_is_recorded_sent_though_the_connection_died_meanwhile(
        app, session, member, database_url, trust_pooled_connections):
    class Carrier:
        def send(self, to, body, status_callback):
            end_other_connections(database_url)  # the database restarts while Twilio answers
            return SendResult(sid="SM" + "c" * 32, status="queued", segments=1)

    row = queue_message(session, key="k-restart", to=member.phone, body="hi", kind="reply", member=member)
    session.commit()
    state = deliver(session, row.id, transport=Carrier(), limiter=app.extensions["hearth_runtime"].limiter,
                    sender="+441632960000", final_attempt=False)
    assert state == "sent"
    session.expire_all()
    assert session.get(OutboundMessage, row.id).provider_sid == "SM" + "c" * 32
