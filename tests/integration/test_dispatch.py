"""Outbox rows become RQ jobs only once the outermost transaction commits, savepoints or not."""

from __future__ import annotations

from service.directory import add_member
from service.outbox import queue_message
from workers.queues import row_ids


def jobs(redis, name: str) -> list[list[int]]:
    """The rows each job waiting on a queue is for, in queue order."""
    return [row_ids(job_id.decode()) for job_id in redis.lrange(f"rq:queue:{name}", 0, -1)]


def broadcast(session, member, key: str):
    return queue_message(session, key=key, to=member.phone, body=key, kind="broadcast", member=member)


def test_a_released_savepoint_waits_for_the_outer_commit(session, member, redis):
    with session.begin_nested():
        first = broadcast(session, member, "first")
    with session.begin_nested():
        second = broadcast(session, member, "second")
    assert jobs(redis, "bulk") == []  # released, but nothing is committed yet
    session.commit()
    assert jobs(redis, "bulk") == [[first.id, second.id]]  # committed together: one batch


def test_a_rolled_back_savepoint_drops_only_its_own_sends(session, member, redis):
    with session.begin_nested():
        kept = broadcast(session, member, "kept")
    savepoint = session.begin_nested()
    with session.begin_nested():  # released into the savepoint that is then rolled back
        broadcast(session, member, "inner")
    broadcast(session, member, "dropped")
    savepoint.rollback()
    also = broadcast(session, member, "also kept")
    session.commit()
    assert jobs(redis, "bulk") == [[kept.id, also.id]]


def test_an_outer_rollback_enqueues_nothing(session, member, redis):
    with session.begin_nested():
        broadcast(session, member, "gone")
    session.rollback()
    session.commit()
    assert jobs(redis, "bulk") == []


def test_one_recipients_messages_of_a_turn_go_in_one_job_in_order_and_each_recipient_has_their_own(
        session, community, member, redis):
    other = add_member(session, community, "Bea", "07700 900124", welcome=False)
    with session.begin_nested():
        one = queue_message(session, key="a", to=member.phone, body="a", kind="flow", member=member)
    elsewhere = queue_message(session, key="c", to=other.phone, body="c", kind="flow", member=other)
    two = queue_message(session, key="b", to=member.phone, body="b", kind="flow", member=member)
    session.commit()
    assert jobs(redis, "replies") == [[one.id, two.id], [elsewhere.id]]


def test_a_bulk_batch_never_splits_one_recipients_rows(session, community, redis):
    members = [add_member(session, community, f"M{i}", f"07700 900{i:03d}", welcome=False) for i in range(13)]
    rows = [broadcast(session, m, f"{m.name}-{part}") for m in members for part in (1, 2)]  # 26 rows
    session.commit()
    batches = jobs(redis, "bulk")
    assert [len(batch) for batch in batches] == [24, 2]  # 12 members, then the 13th whole
    assert [row_id for batch in batches for row_id in batch] == [row.id for row in rows]


def test_a_savepoint_rolled_back_with_one_still_open_inside_drops_both(session, member, redis):
    kept = broadcast(session, member, "kept")
    outer = session.begin_nested()
    session.begin_nested()  # never ended itself: rolling back `outer` closes it
    broadcast(session, member, "gone")
    outer.rollback()
    session.commit()
    assert jobs(redis, "bulk") == [[kept.id]]


def test_a_session_closed_without_commit_leaves_nothing_for_its_next_commit(app, member, redis):
    session = app.extensions["hearth_db"].session.session_factory()
    try:
        broadcast(session, session.merge(member), "never committed")
        session.close()
        real = broadcast(session, session.merge(member), "real")
        session.commit()
        assert jobs(redis, "bulk") == [[real.id]]
    finally:
        session.close()
