"""Database connections that die between uses (a PostgreSQL restart): nothing fails in front of a caller.

Each test ends every other connection to the test database, as a restart would, then goes on.
"""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import func, make_url, select, text
from sqlalchemy.exc import DBAPIError

import service.database
from service.database import make_engine, normalise_url
from service.models import InboundMessage, Member, OutboundMessage
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


def send_one(app, session, member, carrier, key: str) -> tuple[str, int]:
    """Queue one reply to the member and deliver it through `carrier`: (its state, its row id)."""
    row = queue_message(session, key=key, to=member.phone, body="hi", kind="reply", member=member)
    session.commit()
    runtime = app.extensions["hearth_runtime"]
    state = deliver(session, row.id, transport=carrier, limiter=runtime.limiter, receipts=runtime.receipts,
                    sender="+441632960000", final_attempt=False)
    return state, row.id


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
        def send(self, to, body, status_callback, from_number=None):
            end_other_connections(database_url)  # the database restarts while Twilio answers
            return SendResult(sid="SM" + "c" * 32, status="queued", segments=1)

    state, row_id = send_one(app, session, member, Carrier(), "k-restart")
    assert state == "sent"
    session.expire_all()
    assert session.get(OutboundMessage, row_id).provider_sid == "SM" + "c" * 32


def test_an_opt_out_from_the_carrier_is_kept_though_the_connection_died_before_its_commit(
        app, session, member, database_url, trust_pooled_connections, monkeypatch):
    import service.consent
    from service.exceptions import PermanentSendError
    from service.transports.twilio import OPTED_OUT

    real_opt_out, restarts = service.consent.opt_out, []

    def opt_out_then_restart(*args, **kwargs):
        changed = real_opt_out(*args, **kwargs)
        if not restarts:  # once, before the commit that would keep it
            restarts.append(end_other_connections(database_url))
        return changed

    monkeypatch.setattr(service.consent, "opt_out", opt_out_then_restart)

    class Carrier:
        def send(self, to, body, status_callback, from_number=None):
            raise PermanentSendError("opted out at the carrier", code=OPTED_OUT)

    state, row_id = send_one(app, session, member, Carrier(), "k-21610")
    assert state == "failed"
    session.expire_all()
    assert session.get(Member, member.id).status == "opted_out"


def test_a_message_the_carrier_took_waits_for_a_database_that_is_coming_back(
        app, session, member, database_url, trust_pooled_connections, monkeypatch):
    import service.sending

    monkeypatch.setattr(service.sending, "SENT_WAITS", (0.0, 0.5, 0.5, 1.0, 2.0, 4.0))
    receipts, kept = app.extensions["hearth_runtime"].receipts, []
    real_keep = receipts.keep
    monkeypatch.setattr(receipts, "keep",
                        lambda outbox_id, *rest: (kept.append(outbox_id), real_keep(outbox_id, *rest)))
    url = make_url(normalise_url(database_url))
    name = url.database
    admin_engine = make_engine(url.set(database="postgres").render_as_string(hide_password=False))
    admin = admin_engine.connect().execution_options(isolation_level="AUTOCOMMIT")
    reopen = threading.Timer(1.0, lambda: admin.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')))

    class Carrier:
        def send(self, to, body, status_callback, from_number=None):
            # The database goes down while Twilio answers, and stays down for a second.
            admin.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'))
            admin.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :name"
                               " AND backend_type = 'client backend'"), {"name": name})
            reopen.start()
            return SendResult(sid="SM" + "d" * 32, status="queued", segments=1)

    try:
        state, row_id = send_one(app, session, member, Carrier(), "k-down")
    finally:
        reopen.join(timeout=10)
        admin.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
        admin.close()
        admin_engine.dispose()
    assert state == "sent"
    session.expire_all()
    assert session.get(OutboundMessage, row_id).provider_sid == "SM" + "d" * 32
    assert kept == [row_id]  # kept once, at the first failed try...
    assert not receipts.redis.exists(receipts.key(row_id))  # ...and forgotten once the send was recorded


@pytest.fixture
def database_switch(database_url):
    """Turn connections to the test database off (ending those open, as a crash would) and on again."""
    url = make_url(normalise_url(database_url))
    name = url.database
    admin_engine = make_engine(url.set(database="postgres").render_as_string(hide_password=False))
    admin = admin_engine.connect().execution_options(isolation_level="AUTOCOMMIT")

    def switch(on: bool) -> None:
        admin.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {"true" if on else "false"}'))
        if not on:
            admin.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :name"
                               " AND backend_type = 'client backend'"), {"name": name})

    yield switch
    switch(True)
    admin.close()
    admin_engine.dispose()


def test_a_message_the_carrier_took_during_a_long_outage_is_not_sent_again(
        app, session, member, clock, database_switch, trust_pooled_connections, monkeypatch):
    import service.sending

    monkeypatch.setattr(service.sending, "SENT_WAITS", (0.0, 0.2))  # gives up well before the database is back
    runtime = app.extensions["hearth_runtime"]
    how = dict(limiter=runtime.limiter, receipts=runtime.receipts, sender="+441632960000", final_attempt=False)

    class Carrier:
        def __init__(self) -> None:
            self.sent = []

        def send(self, to, body, status_callback, from_number=None):
            self.sent.append(body)
            if len(self.sent) == 1:
                database_switch(False)  # the database goes down while Twilio answers
            return SendResult(sid=f"SM{len(self.sent):032d}", status="queued", segments=1)

    carrier = Carrier()
    row = queue_message(session, key="k-outage", to=member.phone, body="hi", kind="reply", member=member)
    session.commit()
    row_id = row.id
    with pytest.raises(DBAPIError):
        deliver(session, row_id, transport=carrier, **how)
    session.rollback()
    database_switch(True)
    assert deliver(session, row_id, transport=carrier, **how) == "skipped"  # the job's retry: still leased
    clock.advance(seconds=app.config["HEARTH"].send_lease + 1)
    assert deliver(session, row_id, transport=carrier, **how) == "sent"  # the sweeper's job, after the lease
    assert carrier.sent == ["hi"]
    session.expire_all()
    sent = session.get(OutboundMessage, row_id)
    assert (sent.state, sent.provider_sid, sent.attempts) == ("sent", "SM" + "1".rjust(32, "0"), 2)
    assert not runtime.redis.exists(runtime.receipts.key(row_id))  # recorded: the receipt is gone


def test_a_failed_ping_replaces_every_pooled_connection(app, database_url, monkeypatch):
    monkeypatch.setattr(service.database, "PING_AFTER_IDLE", 0.5)
    engine = app.extensions["hearth_db"].engine
    first, second = engine.connect(), engine.connect()
    for conn in (first, second):
        conn.execute(text("SELECT 1"))
    first.close()
    time.sleep(0.7)  # the first rests long enough to be pinged; the second comes back just now
    second.close()
    end_other_connections(database_url)
    with engine.connect() as a, engine.connect() as b:  # one is pinged, fails, and takes the pool with it
        assert a.execute(text("SELECT 1")).scalar() == b.execute(text("SELECT 1")).scalar() == 1



def test_the_clock_goes_on_when_the_database_and_redis_restart_as_a_task_runs(app, session, member, database_url,
                                                                            trust_pooled_connections, monkeypatch):
    """The host of PostgreSQL and Redis restarts while a sweep is between its read and its look at the
    queues: Redis refuses, and rolling back the read finds its connection gone too. The failure is
    logged and the tick goes on to the other tasks; the next tick sweeps (before, the rollback's error
    left the tick, and ended the sweeper's thread for good)."""
    import service.sweeper
    from redis.exceptions import ConnectionError as RedisConnectionError

    from workers.clock import tick

    queue_message(session, key="k-clock", to=member.phone, body="hi", kind="reply", member=member)
    session.commit()
    live_send_rows = service.sweeper.live_send_rows

    def restarting(redis, started_after):
        end_other_connections(database_url)
        raise RedisConnectionError("Connection refused")

    monkeypatch.setattr(service.sweeper, "live_send_rows", restarting)
    assert set(tick(app)) == {"pauses_ended", "timers", "scheduled_starts"}  # the sweep failed; the rest ran
    monkeypatch.setattr(service.sweeper, "live_send_rows", live_send_rows)
    assert tick(app)["swept"] == 0  # the row's job, queued at its commit, is live
