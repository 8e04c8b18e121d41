"""Migrations applied to a database that already holds members and their messages, not only to an empty one."""

from __future__ import annotations

import os
from datetime import datetime, timezone

import pytest
from alembic import command
from sqlalchemy import MetaData, create_engine, insert, inspect, make_url, select, text

from service.database import make_engine, normalise_url
from service.migrations import alembic_config, upgrade

from tests.conftest import DATABASE

EARLIER = datetime(2026, 11, 20, 9, 0, tzinfo=timezone.utc)
LATER = datetime(2026, 11, 20, 18, 30, tzinfo=timezone.utc)


@pytest.fixture
def empty_url(tmp_path):
    """A database of its own (the suite's stays at head)."""
    if DATABASE == "sqlite":
        yield f"sqlite:///{tmp_path / 'migrations.db'}"
        return
    url = make_url(normalise_url(DATABASE))
    name = f"{url.database}_migrations_{os.getpid()}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield url.set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _oak_house(conn, t) -> None:
    """The community row the seeds' other rows refer to, in the columns every revision has."""
    conn.execute(insert(t["communities"]).values(
        id=1, name="Oak House", timezone="Europe/London", language="en", region="GB", help_text="help",
        welcome_text="welcome", opt_out_reply="bye", opt_in_reply="hello", crisis_contacts=[], created_at=EARLIER))


def _seed_at_0002(url: str) -> None:
    """A community, a member who has texted twice, and a conversation: rows that refer to the member."""
    engine = make_engine(url)
    tables = MetaData()
    tables.reflect(engine)
    t = tables.tables
    with engine.begin() as conn:
        _oak_house(conn, t)
        conn.execute(insert(t["members"]).values(
            id=1, community_id=1, name="Sam", phone="+447700900123", channel="sms", status="active", fields={},
            created_at=EARLIER, last_inbound_at=LATER))
        for n, at in ((1, EARLIER), (2, LATER)):
            conn.execute(insert(t["inbound_messages"]).values(
                sid=f"SM{n}", community_id=1, member_id=1, from_number="+447700900123", to_number="+441632960000",
                body="hello", handled_as="flow:menu", response="<Response/>", received_at=at))
        conn.execute(insert(t["flow_versions"]).values(
            digest="d" * 64, flow_id="checkin", version=1, source_path="checkin.yaml", source_text="id: checkin",
            loaded_at=EARLIER))
        conn.execute(insert(t["conversations"]).values(
            member_id=1, flow_id="checkin", flow_digest="d" * 64, active=True, started_at=EARLIER, updated_at=EARLIER))
        # What refers to the conversation: a downgrade must not rebuild (drop) the table under it.
        conn.execute(insert(t["results"]).values(conversation_id=1, member_id=1, flow_id="checkin", name="mood",
                                                 value="2", saved_at=EARLIER))
        conn.execute(insert(t["timers"]).values(conversation_id=1, token="expire", kind="expiry", due_at=LATER))
    engine.dispose()


def test_0003_keeps_every_member_and_message_and_downgrades_with_the_last_text_time(empty_url):
    upgrade(empty_url, "0002")
    _seed_at_0002(empty_url)

    upgrade(empty_url)
    engine = make_engine(empty_url)
    inspector = inspect(engine)
    assert "last_inbound_at" not in {c["name"] for c in inspector.get_columns("members")}
    assert {i["name"]: i["column_names"] for i in inspector.get_indexes("inbound_messages")}[
        "ix_inbound_messages_member_received"] == ["member_id", "received_at"]
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM members")).scalar() == 1
        assert conn.execute(text("SELECT count(*) FROM inbound_messages WHERE member_id = 1")).scalar() == 2
        assert conn.execute(text("SELECT count(*) FROM conversations WHERE member_id = 1")).scalar() == 1
    engine.dispose()

    command.downgrade(alembic_config(empty_url), "0002")  # through every downgrade, the rows that refer kept
    engine = make_engine(empty_url)
    tables = MetaData()
    tables.reflect(engine)
    with engine.connect() as conn:
        last = conn.execute(select(tables.tables["members"].c.last_inbound_at)).scalar()
    engine.dispose()
    if isinstance(last, str):  # SQLite reflected without the model's type
        last = datetime.fromisoformat(last)
    assert last.replace(tzinfo=last.tzinfo or timezone.utc) == LATER  # the newest of the member's texts
    with engine.connect() as conn:
        assert [conn.execute(text(f"SELECT count(*) FROM {table}")).scalar()
                for table in ("conversations", "results", "timers")] == [1, 1, 1]
    engine.dispose()

    upgrade(empty_url)  # and back up again


def test_0004_downgrades_with_a_text_a_flow_of_a_long_id_handled(empty_url):
    """`handled_as` is "flow:" and a flow's id, up to 45 characters: going back to 32 wide keeps the row."""
    upgrade(empty_url)
    engine = make_engine(empty_url)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO inbound_messages (sid, from_number, to_number, body, handled_as, response,"
                          " received_at) VALUES ('SM1', '+447700900123', '+441632960000', 'hi', :handled, '', :at)"),
                     {"handled": "flow:" + "a" * 40, "at": EARLIER})
    engine.dispose()

    command.downgrade(alembic_config(empty_url), "0003")
    engine = make_engine(empty_url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT handled_as FROM inbound_messages")).scalars().all() == [
            "flow:" + "a" * 27]
    engine.dispose()


def test_the_audit_log_refuses_update_and_delete_on_every_database(session):
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    from service import audit

    audit.record(session, "cli:jo", "community.updated", community_id=None)
    session.commit()
    statements = ["UPDATE audit_log SET actor = 'someone else'", "DELETE FROM audit_log"]
    if session.get_bind().dialect.name == "postgresql":  # SQLite has no TRUNCATE
        statements += ["TRUNCATE audit_log", "TRUNCATE members CASCADE"]
    for statement in statements:
        with pytest.raises(DBAPIError, match="audit_log is append-only"):
            session.execute(text(statement))
        session.rollback()
    assert session.execute(text("SELECT actor FROM audit_log")).scalars().all() == ["cli:jo"]


def test_the_audit_log_refuses_a_row_written_over_an_existing_one(session):
    """An insert that names a row already there replaces nothing: SQLite's REPLACE deletes the old
    row without firing the DELETE trigger, and an upsert would update it."""
    from sqlalchemy.exc import DBAPIError

    from service import audit

    event = audit.record(session, "cli:jo", "member.added", community_id=None)
    session.commit()
    values = "(:id, :at, 'someone else', 'nothing happened', '{}')"
    statements = [f"INSERT INTO audit_log (id, at, actor, action, details) VALUES {values}"
                  " ON CONFLICT (id) DO UPDATE SET actor = 'someone else'"]
    if session.get_bind().dialect.name == "sqlite":
        statements += [f"INSERT OR REPLACE INTO audit_log (id, at, actor, action, details) VALUES {values}",
                       f"REPLACE INTO audit_log (id, at, actor, action, details) VALUES {values}"]
    for statement in statements:
        with pytest.raises(DBAPIError, match="audit_log is append-only"):
            session.execute(text(statement), {"id": event.id, "at": "2026-11-20 09:00:00.000000"})
        session.rollback()
    assert session.execute(text("SELECT actor, action FROM audit_log")).all() == [("cli:jo", "member.added")]


def test_0011_names_the_crisis_line_in_hearth_s_own_texts_and_leaves_a_community_s_own(empty_url):
    """Texts still as Hearth wrote them say {crisis}; a community's own words are not touched."""
    old_help = ("{community} check-ins. Reply MENU for what you can text, PAUSE 7 for a break, STOP to stop."
                " Need to talk now? Samaritans 116 123 (free, 24/7).")
    old_unknown = "Sorry, this service does not know your number. If you need support, call Samaritans on 116 123."
    old_welcome = ("Welcome to {community} check-ins. We will text you now and then to ask how you are. Reply HELP for"
                   " help or STOP to stop. Samaritans 116 123 (free, 24/7).")
    upgrade(empty_url, "0010")
    engine = make_engine(empty_url)
    tables = MetaData()
    tables.reflect(engine)
    communities = tables.tables["communities"]
    with engine.begin() as conn:
        for n, help_text, welcome in ((1, old_help, old_welcome), (2, "Oak: Samaritans 116 123.", "STOP, HELP")):
            conn.execute(insert(communities).values(
                id=n, name=f"C{n}", timezone="Europe/London", language="en", region="GB", help_text=help_text,
                welcome_text=welcome, opt_out_reply="bye", opt_in_reply="hello",
                unknown_reply=old_unknown, crisis_contacts=[], created_at=EARLIER))
    engine.dispose()

    def texts():
        engine = make_engine(empty_url)
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT help_text, welcome_text, unknown_reply FROM communities ORDER BY id"))
            found = [tuple(row) for row in rows]
        engine.dispose()
        return found

    upgrade(empty_url)
    from service.models.community import DEFAULT_HELP_TEXT, DEFAULT_UNKNOWN_REPLY, DEFAULT_WELCOME_TEXT
    assert texts() == [(DEFAULT_HELP_TEXT, DEFAULT_WELCOME_TEXT, DEFAULT_UNKNOWN_REPLY),
                       ("Oak: Samaritans 116 123.", "STOP, HELP", DEFAULT_UNKNOWN_REPLY)]

    # A text of the community's own that says {crisis}, which the code before 0011 would send as it is.
    engine = make_engine(empty_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE communities SET welcome_text = 'STOP, HELP. {crisis}.',"
                          " crisis_contacts = :contacts WHERE id = 2"),
                     {"contacts": '[{"name": "Night line", "how": "call 01632 960999"}]'})
    engine.dispose()
    command.downgrade(alembic_config(empty_url), "0010")
    assert texts() == [(old_help, old_welcome, old_unknown),
                       ("Oak: Samaritans 116 123.", "STOP, HELP. Night line, call 01632 960999.", old_unknown)]


@pytest.mark.skipif(DATABASE == "sqlite", reason="SQLite's writers take turns already")
def test_two_upgrades_at_once_take_turns(empty_url):
    """Each replica's release step runs `hearth db upgrade`: the two wait for one lock, then one
    migrates and the other finds the schema at head (without it, both create the same tables)."""
    import subprocess
    import sys
    import time
    from pathlib import Path

    from service.migrations import current, revisions

    env = {**os.environ, "DATABASE_URL": empty_url, "REDIS_URL": "redis://127.0.0.1:1/0"}
    holder = make_engine(empty_url)
    with holder.connect() as held:
        held.execute(text("SELECT pg_advisory_lock(:key)"), {"key": 0x4845415254480001})
        upgrades = [subprocess.Popen([sys.executable, "-c", "from service.cli import main; main()", "db", "upgrade"],
                                     cwd=Path(__file__).resolve().parents[2], env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True) for _ in range(2)]
        deadline = time.monotonic() + 30
        while True:  # the lock is the session's: each look is a transaction of its own, so it sees anew
            waiting = held.scalar(text("SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'advisory'"
                                       " AND datname = current_database()"))
            held.commit()
            if waiting == 2:
                break
            if time.monotonic() > deadline or any(upgrade.poll() is not None for upgrade in upgrades):
                for upgrade in upgrades:
                    upgrade.kill()
                raise AssertionError(f"the upgrades never waited for the lock: {upgrades[0].communicate()[0]}")
            time.sleep(0.05)
        held.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": 0x4845415254480001})
        held.commit()
    holder.dispose()
    outputs = [upgrade.communicate(timeout=120)[0] for upgrade in upgrades]
    assert [upgrade.returncode for upgrade in upgrades] == [0, 0], outputs
    assert current(empty_url) == revisions()[-1]


@pytest.mark.skipif(DATABASE != "sqlite", reason="PostgreSQL's upgrades take turns on an advisory lock")
def test_two_upgrades_at_once_on_sqlite_take_turns_for_the_whole_upgrade(empty_url):
    """One upgrade holds the write lock from its first migration to its last: another that starts
    between two of them waits, rather than running the rest first and leaving the first to fail on
    a migration already applied."""
    import subprocess
    import sys
    import time
    from pathlib import Path

    from service.migrations import current, revisions

    # A process slow to begin each transaction (a busy host): before the fix, the gap after each
    # migration's commit let the other upgrade in.
    slow = ("import sys, time\nfrom sqlalchemy import event\nfrom sqlalchemy.engine import Engine\n"
            "event.listen(Engine, 'begin', lambda conn: time.sleep(float(sys.argv[2])))\n"
            "from service.migrations import upgrade\nupgrade(sys.argv[1])\n")
    root = Path(__file__).resolve().parents[2]

    def start(pause: float) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-c", slow, empty_url, str(pause)], cwd=root,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    first = start(0.5)
    time.sleep(1.2)  # the first is some way through its migrations
    second = start(0.0)
    outputs = [upgrade.communicate(timeout=120)[0] for upgrade in (first, second)]
    assert [first.returncode, second.returncode] == [0, 0], outputs
    assert current(empty_url) == revisions()[-1]


def test_the_migrations_build_the_schema_the_models_declare(empty_url):
    """What `hearth db upgrade` builds is what the models say (their tables, columns, indexes and
    constraints, as Alembic's autogenerate compares them): a model's new index with no migration,
    or a migration the models do not follow, fails here. SQLite keeps the string widths 0004 and
    0009 leave alone there (it does not enforce them)."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from service.models import Base

    upgrade(empty_url)
    engine = make_engine(empty_url)
    try:
        with engine.connect() as conn:
            differences = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    finally:
        engine.dispose()
    if DATABASE == "sqlite":
        differences = [d for d in differences if not (isinstance(d, list) and d[0][0] == "modify_type")]
    assert differences == []


def _checks(inspector_or_metadata) -> dict[tuple[str, str], list[str]]:
    """Each CHECK constraint by (table, name), as the values it lets through."""
    import re

    from sqlalchemy import CheckConstraint

    def values(sqltext) -> list[str]:
        return sorted(re.findall(r"'([^']*)'", str(sqltext)))

    if isinstance(inspector_or_metadata, MetaData):
        return {(table.name, check.name): values(check.sqltext) for table in inspector_or_metadata.tables.values()
                for check in table.constraints if isinstance(check, CheckConstraint)}
    inspector = inspector_or_metadata
    return {(table, check["name"]): values(check["sqltext"]) for table in inspector.get_table_names()
            for check in inspector.get_check_constraints(table)}


def test_the_migrations_build_the_checks_the_models_declare(empty_url):
    """Alembic's comparison leaves CHECK constraints out: each one the models declare is built, with
    the same values, and no other."""
    from service.models import Base

    upgrade(empty_url)
    engine = make_engine(empty_url)
    try:
        built = _checks(inspect(engine))
    finally:
        engine.dispose()
    declared = _checks(Base.metadata)
    assert ("members", "ck_members_status") in declared
    assert built == declared


def test_the_checks_let_through_every_value_the_code_writes():
    from flows.flow_schema import build_schema
    from flows.sms import measure
    from service.models.conversation import TIMER_KINDS
    from service.models.messages import ENCODINGS, KINDS, QUEUES
    from service.outbox import QUEUE_FOR_KIND
    from workers.queues import PRIORITY

    assert set(QUEUE_FOR_KIND) == set(KINDS) and set(QUEUE_FOR_KIND.values()) == set(QUEUES) == set(PRIORITY)
    assert {measure("hello").name, measure("hello 😀").name} == set(ENCODINGS)
    assert set(build_schema()["$defs"]["turn"]["properties"]["timeout"]["enum"]) == set(TIMER_KINDS)


@pytest.mark.parametrize(("statement", "check"), [
    ("UPDATE members SET status = 'opted-out'", "ck_members_status"),
    ("UPDATE members SET channel = 'whatsapp'", "ck_members_channel"),
    ("UPDATE outbound_messages SET state = 'sent ok'", "ck_outbound_messages_state"),
    ("UPDATE outbound_messages SET queue = 'default'", "ck_outbound_messages_queue"),
    ("UPDATE outbound_messages SET kind = 'digest'", "ck_outbound_messages_kind"),
    ("UPDATE outbound_messages SET via = 'rest'", "ck_outbound_messages_via"),
    ("UPDATE outbound_messages SET encoding = 'UTF-8'", "ck_outbound_messages_encoding"),
    ("INSERT INTO alerts (community_id, severity, summary, created_at) VALUES (1, 'urgent', 'x', :at)",
     "ck_alerts_severity"),
    ("INSERT INTO timers (conversation_id, token, kind, due_at) VALUES (1, 't', 'expire', :at)", "ck_timers_kind"),
])
def test_the_database_refuses_a_value_outside_a_column_s_set(session, member, statement, check):
    from sqlalchemy.exc import IntegrityError

    from service.outbox import queue_message

    queue_message(session, key="welcome:1", to=member.phone, body="Welcome", kind="welcome", member=member)
    session.execute(text("INSERT INTO flow_versions (digest, flow_id, version, source_path, source_text, loaded_at)"
                         " VALUES ('d', 'checkin', 1, 'checkin.yaml', 'id: checkin', :at)"), {"at": EARLIER})
    session.execute(text("INSERT INTO conversations (member_id, flow_id, flow_digest, active, started_at, updated_at)"
                         " VALUES (:member, 'checkin', 'd', false, :at, :at)"), {"member": member.id, "at": EARLIER})
    session.commit()
    with pytest.raises(IntegrityError, match=check if DATABASE != "sqlite" else "CHECK constraint failed"):
        session.execute(text(statement), {"at": EARLIER})
    session.rollback()


def test_0018_stops_at_a_value_its_checks_would_refuse_and_changes_nothing(empty_url):
    """A row written outside the code (by hand, or by a script) stops `hearth db upgrade` with the
    table, column and value named, before any migration of the run has changed anything."""
    import subprocess
    import sys
    from pathlib import Path

    from service.migrations import current, revisions

    upgrade(empty_url, "0016")
    engine = make_engine(empty_url)
    tables = MetaData()
    tables.reflect(engine)
    t = tables.tables
    with engine.begin() as conn:
        _oak_house(conn, t)
        for n, status in ((1, "active"), (2, "opted-out"), (3, "opted-out")):
            conn.execute(insert(t["members"]).values(
                id=n, community_id=1, name="Sam", phone=f"+44770090012{n}", channel="sms", status=status, fields={},
                created_at=EARLIER))
    engine.dispose()

    def hearth_db_upgrade() -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-c", "from service.cli import main; main()", "db", "upgrade"],
                              cwd=Path(__file__).resolve().parents[2], capture_output=True, text=True, timeout=120,
                              env={**os.environ, "DATABASE_URL": empty_url, "REDIS_URL": "redis://127.0.0.1:1/0"})

    done = hearth_db_upgrade()
    assert done.returncode == 1 and "Traceback" not in done.stderr + done.stdout, done.stderr
    assert ("members.status holds 'opted-out' in 2 row(s), not one of active, paused, opted_out, left"
            in done.stderr.replace("\n", " "))
    assert "Nothing was changed" in done.stderr
    assert current(empty_url) == "0016"  # 0017, which ran before 0018 in the same upgrade, was rolled back too
    engine = make_engine(empty_url)
    assert "ix_members_status_paused_until" not in {i["name"] for i in inspect(engine).get_indexes("members")}
    with engine.begin() as conn:
        conn.execute(text("UPDATE members SET status = 'opted_out' WHERE status = 'opted-out'"))
    engine.dispose()

    done = hearth_db_upgrade()
    assert done.returncode == 0, done.stderr
    assert current(empty_url) == revisions()[-1]


def test_0018_keeps_every_row_that_refers_to_a_member_and_downgrades(empty_url):
    """On SQLite the checks rebuild `members`, which every other table's rows refer to."""
    upgrade(empty_url, "0002")
    _seed_at_0002(empty_url)
    upgrade(empty_url, "0017")
    engine = make_engine(empty_url)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO alerts (community_id, member_id, conversation_id, severity, summary, created_at)"
                          " VALUES (1, 1, 1, 'high', 'x', :at)"), {"at": EARLIER})
        conn.execute(text("INSERT INTO audit_log (at, actor, action, community_id, member_id, details)"
                          " VALUES (:at, 'cli:jo', 'member.added', 1, 1, '{}')"), {"at": EARLIER})
        conn.execute(text("INSERT INTO outbound_messages (idempotency_key, community_id, member_id, to_number, body,"
                          " kind, queue, state, due_at, attempts, segments, encoding, created_at, updated_at)"
                          " VALUES ('welcome:1', 1, 1, '+447700900123', 'Welcome', 'welcome', 'replies', 'pending',"
                          " :at, 0, 1, 'GSM-7', :at, :at)"), {"at": EARLIER})
    engine.dispose()
    referring = ("members", "conversations", "results", "timers", "alerts", "audit_log", "inbound_messages",
                 "outbound_messages")

    def counts() -> list[int]:
        engine = make_engine(empty_url)
        with engine.connect() as conn:
            found = [conn.execute(text(f"SELECT count(*) FROM {table}")).scalar() for table in referring]
            if DATABASE == "sqlite":
                assert conn.execute(text("PRAGMA foreign_key_check")).all() == []
            assert conn.execute(text("SELECT name, status, phone FROM members")).all() == [
                ("Sam", "active", "+447700900123")]
        engine.dispose()
        return found

    upgrade(empty_url)
    assert counts() == [1, 1, 1, 1, 1, 1, 2, 1]
    command.downgrade(alembic_config(empty_url), "0017")
    assert counts() == [1, 1, 1, 1, 1, 1, 2, 1]
    engine = make_engine(empty_url)
    assert _checks(inspect(engine)) == {}
    engine.dispose()
    upgrade(empty_url)
    assert counts() == [1, 1, 1, 1, 1, 1, 2, 1]


def test_an_alert_is_found_by_its_conversation_through_an_index(session):
    """When a text ends a conversation, the webhook asks whether it raised an alert
    (`converse._raised_an_alert`): by index, not by reading every alert."""
    from sqlalchemy import exists

    from service.models import Alert

    indexes = {i["name"]: i["column_names"] for i in inspect(session.get_bind()).get_indexes("alerts")}
    assert indexes.get("ix_alerts_conversation_id") == ["conversation_id"]
    if DATABASE == "sqlite":
        query = select(exists().where(Alert.conversation_id == 1)).compile(
            session.get_bind(), compile_kwargs={"literal_binds": True})
        plan = " ".join(str(row[-1]) for row in session.execute(text(f"EXPLAIN QUERY PLAN {query}")))
        assert "USING INDEX ix_alerts_conversation_id" in plan, plan
