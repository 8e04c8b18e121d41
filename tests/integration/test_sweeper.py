"""The sweeper re-enqueues due rows with no live job, so a flushed Redis loses nothing."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from rq.job import Job
from rq.serializers import JSONSerializer

from service.outbox import queue_message
from tests.support import sweep_now
from workers.queues import batch_job_id, queue, send_job_id


def queued_ids(redis, name="replies"):
    return queue(name, redis).job_ids


def test_commit_enqueues_a_due_row_with_its_deterministic_id(session, member, redis):
    row = queue_message(session, key="a", to=member.phone, body="hi", kind="reply", member=member)
    session.commit()
    assert queued_ids(redis) == [send_job_id(row.id)]


def test_rollback_enqueues_nothing(session, member, redis):
    queue_message(session, key="a", to=member.phone, body="hi", kind="reply", member=member)
    session.rollback()
    assert queued_ids(redis) == []


def test_a_second_row_with_the_same_key_is_the_first(session, member):
    first = queue_message(session, key="same", to=member.phone, body="hi", kind="reply", member=member)
    second = queue_message(session, key="same", to=member.phone, body="hi again", kind="reply", member=member)
    assert first.id == second.id


def test_after_a_flush_the_sweeper_enqueues_what_is_pending(session, member, redis):
    rows = [queue_message(session, key=f"k{i}", to=member.phone, body="hi", kind="broadcast", member=member)
            for i in range(5)]
    session.commit()
    redis.flushdb()
    assert sweep_now(session, redis) == 5
    assert queued_ids(redis, "bulk") == [batch_job_id([r.id for r in rows])]  # one recipient's: one job, in order
    assert sweep_now(session, redis) == 0, "a live job is not enqueued twice"


def test_the_sweeper_batches_what_it_enqueues_and_replaces_a_dead_batch(session, member, redis):
    rows = [queue_message(session, key=f"k{i}", to=f"+4477009003{i:02d}", body="hi", kind="broadcast", member=member)
            for i in range(30)]  # one row to each of 30 recipients
    session.commit()
    [first, second] = queued_ids(redis, "bulk")
    queue("bulk", redis).remove(first)  # a worker died holding the first batch: its hash stays, in no queue
    assert Job.exists(first, connection=redis)
    assert sweep_now(session, redis) == 25
    assert queued_ids(redis, "bulk") == [second, first]


def test_rows_not_yet_due_wait(session, member, redis, clock):
    queue_message(session, key="later", to=member.phone, body="hi", kind="broadcast", member=member,
                  due_at=clock.now.replace(hour=20))  # 20:00, before the community's quiet hours
    session.commit()
    assert queued_ids(redis, "bulk") == []
    assert sweep_now(session, redis) == 0
    clock.advance(hours=11)
    assert sweep_now(session, redis) == 1


def test_a_job_taken_off_its_queue_by_a_worker_that_died_is_replaced(session, member, redis):
    row = queue_message(session, key="a", to=member.phone, body="hi", kind="reply", member=member)
    session.commit()
    # What a worker killed between dequeue and start leaves: the job's hash, in no queue.
    queue("replies", redis).remove(send_job_id(row.id))
    assert Job.exists(send_job_id(row.id), connection=redis)
    assert sweep_now(session, redis) == 1
    assert queued_ids(redis) == [send_job_id(row.id)]


def test_bulk_rows_committed_together_go_in_batches_the_sweeper_counts_as_live(session, member, redis):
    from workers.queues import BULK_BATCH, row_ids

    rows = [queue_message(session, key=f"b{i}", to=f"+4477009002{i:02d}", body="hi", kind="broadcast", member=member)
            for i in range(BULK_BATCH + 3)]  # one row to each of 28 recipients
    session.commit()
    jobs = queued_ids(redis, "bulk")
    assert [len(row_ids(job)) for job in jobs] == [BULK_BATCH, 3]
    assert sorted(r for job in jobs for r in row_ids(job)) == sorted(r.id for r in rows)
    assert sweep_now(session, redis) == 0, "rows in a waiting batch have a live job"


def test_a_lost_job_behind_a_backlog_of_live_ones_is_found(session, member, redis, clock):
    """A broadcast's rows, all with live jobs, come first by due time: the lost one after them is
    still enqueued in the same sweep."""
    from datetime import timedelta

    backlog = [queue_message(session, key=f"b{i}", to=member.phone, body="hi", kind="broadcast", member=member,
                             due_at=clock.now - timedelta(minutes=5)) for i in range(7)]
    lost = queue_message(session, key="lost", to=member.phone, body="hi", kind="reply", member=member)
    session.commit()
    queue("replies", redis).remove(send_job_id(lost.id))
    Job.fetch(send_job_id(lost.id), connection=redis, serializer=JSONSerializer).delete()
    assert len(backlog) == 7 and len(queue("bulk", redis).job_ids) == 1  # the backlog's one batch job, waiting
    assert sweep_now(session, redis, limit=3) == 1  # pages of 3: the lost row is in the third
    assert queued_ids(redis) == [send_job_id(lost.id)]


def test_one_recipients_rows_on_two_pages_of_a_sweep_go_in_one_job(session, member, redis):
    from workers.queues import enqueue_sends

    other = queue_message(session, key="o", to="+447700900999", body="other", kind="flow", member=member)
    first = queue_message(session, key="a1", to=member.phone, body="first", kind="flow", member=member)
    second = queue_message(session, key="a2", to=member.phone, body="second", kind="flow", member=member)
    session.commit()
    redis.flushdb()
    enqueue_sends(redis, [(other.id, "replies", other.to_number)])  # its job is live again
    assert sweep_now(session, redis, limit=2) == 2  # pages of two: [other, first], then [second]
    assert queued_ids(redis) == [send_job_id(other.id), batch_job_id([first.id, second.id])]


def test_a_batch_that_reports_between_sends_is_live_however_long_ago_it_started(session, member, redis, clock):
    """A batch waiting on the rate limit or the carrier can run past the lease: what counts is when
    it was last heard of."""
    from rq.executions import Execution

    from workers.queues import row_ids

    rows = [queue_message(session, key=f"b{i}", to=f"+4477009002{i:02d}", body="hi", kind="broadcast", member=member)
            for i in range(3)]
    session.commit()
    [job_id] = queued_ids(redis, "bulk")
    # A worker took the batch 5 minutes ago, and the job last reported 5 seconds ago.
    bulk = queue("bulk", redis)
    bulk.remove(job_id)
    job = bulk.fetch_job(job_id)
    job.started_at = clock.now - timedelta(minutes=5)
    job.save()
    with redis.pipeline() as pipeline:
        Execution.create(job, 600, pipeline)
        pipeline.execute()
    job.heartbeat(clock.now - timedelta(seconds=5), 600)
    assert sweep_now(session, redis) == 0
    job.heartbeat(clock.now - timedelta(minutes=2), 600)  # not heard of for longer than the lease
    assert sweep_now(session, redis) == 3
    assert sorted(r for j in queued_ids(redis, "bulk") for r in row_ids(j)) == sorted(r.id for r in rows)


def test_a_batch_reports_itself_alive_between_sends_and_sees_urgent_jobs(session, member, redis):
    from workers.jobs import _between_sends

    for i in range(2):
        queue_message(session, key=f"b{i}", to=f"+4477009002{i:02d}", body="hi", kind="broadcast", member=member)
    session.commit()
    job = queue("bulk", redis).fetch_job(queued_ids(redis, "bulk")[0])
    long_ago = datetime(2026, 1, 1, tzinfo=timezone.utc)

    def heard():
        heartbeat = Job.fetch(job.id, connection=redis, serializer=JSONSerializer).last_heartbeat
        return heartbeat.replace(tzinfo=timezone.utc) if heartbeat else None

    give_way = _between_sends(job)
    job.heartbeat(long_ago, 600)
    assert give_way() is False
    assert heard() > long_ago
    queue_message(session, key="alert", to="+447700900999", body="alert", kind="alert", community_id=member.community_id)
    session.commit()
    job.heartbeat(long_ago, 600)
    assert give_way() is True
    assert heard() > long_ago


def test_a_heartbeat_after_the_job_record_is_gone_leaves_nothing_that_blocks_its_id(session, member, redis):
    """Redis flushed under a running batch: its next report must not write a record of its own (one
    holding only the heartbeat, never expiring, would make its id look taken for good)."""
    from workers.jobs import _between_sends
    from workers.queues import _enqueue

    rows = [queue_message(session, key=f"b{i}", to=f"+4477009002{i:02d}", body="hi", kind="broadcast", member=member)
            for i in range(2)]
    session.commit()
    job = queue("bulk", redis).fetch_job(queued_ids(redis, "bulk")[0])
    redis.flushdb()
    _between_sends(job)()
    assert not redis.exists(job.key)
    assert _enqueue(redis, "bulk", [r.id for r in rows], replace_dead=True) == 2


def test_rows_a_batch_hands_back_while_the_sweeper_reads_are_live(session, member, redis, clock, monkeypatch):
    """A batch that gives way puts its last rows on the queue as a new job, then ends: a sweep whose
    look at the started jobs came before that, and its look at the queues after, still sees them."""
    from rq.executions import Execution
    from rq.job import JobStatus

    import workers.queues as queues

    rows = [queue_message(session, key=f"b{i}", to=f"+4477009002{i:02d}", body="hi", kind="broadcast", member=member)
            for i in range(3)]
    session.commit()
    ids = [r.id for r in rows]
    bulk = queue("bulk", redis)
    [job_id] = bulk.job_ids
    bulk.remove(job_id)  # a worker has taken the batch
    job = bulk.fetch_job(job_id)
    job.started_at = clock.now
    job.set_status(JobStatus.STARTED)
    job.save()
    with redis.pipeline() as pipeline:
        Execution.create(job, 600, pipeline)
        pipeline.execute()
    real, looks = queues._snapshot, []

    def snapshot(connection, late):
        looked = real(connection, late)
        if not looks:  # just after the first look, the batch gives way and ends
            queues.hand_back(redis, "bulk", ids[1:])
            job.delete()
        looks.append(looked)
        return looked

    monkeypatch.setattr(queues, "_snapshot", snapshot)
    assert set(ids[1:]) <= queues.live_send_rows(redis, started_after=clock.now - timedelta(seconds=60))
    assert job_id in looks[0][1] and not redis.exists(job.key)  # it was running at the first look, then gone


def test_rows_a_run_holds_to_enqueue_together_are_not_given_jobs_by_the_sweeper_meanwhile(app, runner, community,
                                                                                         session, redis):
    """`flows start` (and a scheduled run) commits member by member and enqueues their sends a
    batch at a time. A sweep between two commits must not give the committed rows jobs of their
    own: each row would have two, and one member's rows could go in two jobs, out of order."""
    import threading
    from collections import Counter

    from sqlalchemy import event, select

    from service.database import db
    from service.directory import add_member
    from service.dispatch import HELD
    from service.models import OutboundMessage
    from workers.queues import PRIORITY, row_ids

    for n in range(4):
        add_member(session, community, f"M{n}", f"07700 900{n + 300:03d}", welcome=False)
    session.commit()
    swept = []

    def the_clock_sweeps_once(committed):
        if HELD in committed.info and committed.info[HELD] and not swept and not committed.in_nested_transaction():
            def run():
                with app.app_context():
                    swept.append(sweep_now(db.session, app.extensions["hearth_redis"]))
            thread = threading.Thread(target=run)
            thread.start()
            thread.join()

    factory = app.extensions["hearth_db"].session.session_factory
    event.listen(factory, "after_commit", the_clock_sweeps_once)
    try:
        result = runner.invoke(args=["flows", "start", "vote", "--community", "Oak House", "--param",
                                     "question=Film night?", "--param", "options=Yes,No"])
    finally:
        event.remove(factory, "after_commit", the_clock_sweeps_once)
    assert result.exit_code == 0, result.output
    assert swept == [0]  # it looked while the run held a committed row, and left it
    rows = session.scalars(select(OutboundMessage.id)).all()
    jobs = Counter(row for name in PRIORITY for job_id in queue(name, redis).job_ids for row in row_ids(job_id))
    assert len(rows) == 4 and all(jobs[row] == 1 for row in rows), dict(jobs)
    assert redis.zcard("hearth-held-sends") == 0  # the marks are gone with the run


def test_a_run_stops_asking_redis_once_it_has_failed_and_leaves_its_rows_to_the_sweeper(config, clock, community,
                                                                                       session, redis):
    """An unreachable Redis can make each call wait seconds: a run over a community must not ask
    it again for every member. The rows are committed; the sweeper enqueues them when it can."""
    import dataclasses
    import socket
    import threading

    from sqlalchemy import func, select

    from service import create_app
    from service.database import db
    from service.directory import add_member
    from service.models import OutboundMessage

    for n in range(30):
        add_member(session, community, f"M{n}", f"07700 900{n + 300:03d}", welcome=False)
    session.commit()
    refused, stop = [], threading.Event()
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)

    def refuse():  # a "Redis" that hangs up on every connection, and counts them
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            refused.append(1)
            conn.close()

    thread = threading.Thread(target=refuse)
    thread.start()
    broken = create_app(dataclasses.replace(config, redis_url=f"redis://127.0.0.1:{server.getsockname()[1]}/0"),
                        overrides={"CLOCK": clock})
    try:
        with broken.app_context():
            result = broken.test_cli_runner().invoke(args=["flows", "start", "vote", "--community", "Oak House",
                                                           "--param", "question=Film?", "--param", "options=Yes,No"])
            calls_during_the_run = len(refused)
    finally:
        stop.set()
        thread.join()
        server.close()
        broken.extensions["hearth_db"].engine.dispose()
    assert result.exit_code == 0, result.output
    assert 0 < calls_during_the_run < 10, calls_during_the_run  # not one (or more) per member
    session.expire_all()
    assert session.scalar(select(func.count(OutboundMessage.id)).where(OutboundMessage.state == "pending")) == 30
    assert sweep_now(db.session, redis) == 30  # the sweeper, with Redis back, gives them their jobs


def _partial_record(redis, job_id: str, heard: datetime) -> None:
    """What a worker leaves when the job's record was deleted (by a sweep's `_forget`, or a flush)
    just as it took the job: the fields it writes as it starts, and no job data."""
    from rq.utils import utcformat

    redis.delete(Job.key_for(job_id))
    redis.hset(Job.key_for(job_id), mapping={"last_heartbeat": utcformat(heard), "started_at": utcformat(heard),
                                             "status": "started", "worker_name": "w1"})


def test_a_job_record_without_its_data_stops_no_sweep(session, member, redis, clock):
    """A batch running on such a record is live; the reply whose job was lost meanwhile is found.
    Before, every sweep failed reading it (NoSuchJobError) for as long as the batch ran."""
    clock.now = datetime.now(timezone.utc)  # the worker's heartbeat is the real time
    batch = queue_message(session, key="c", to=member.phone, body="check-in", kind="checkin", member=member)
    reply = queue_message(session, key="r", to="+447700900456", body="a reply", kind="reply", member=member)
    session.commit()
    [batch_job] = queue("bulk", redis).job_ids
    redis.flushdb()  # as the worker took the batch
    redis.zadd(queue("bulk", redis).started_job_registry.key, {f"{batch_job}:an-execution": 9_999_999_999})
    _partial_record(redis, batch_job, datetime.now(timezone.utc))
    assert sweep_now(session, redis) == 1
    assert queued_ids(redis) == [send_job_id(reply.id)]
    assert queued_ids(redis, "bulk") == [], f"row {batch.id}'s batch runs: it is not enqueued again"


def test_a_job_record_without_its_data_left_by_a_worker_that_stopped_is_replaced(session, member, redis, clock):
    """Its row was blocked for good: the sweeper could neither read the record to delete it nor
    enqueue a job over it."""
    clock.now = datetime.now(timezone.utc)
    row = queue_message(session, key="r", to=member.phone, body="hello", kind="reply", member=member)
    session.commit()
    [job_id] = queued_ids(redis)
    queue("replies", redis).empty()
    _partial_record(redis, job_id, clock.now - timedelta(hours=1))  # it stopped an hour ago
    assert sweep_now(session, redis) == 1
    assert queued_ids(redis) == [send_job_id(row.id)]
    assert Job.fetch(job_id, connection=redis, serializer=JSONSerializer).args == [row.id]


def test_after_a_flush_the_sweeper_enqueues_an_alert_before_the_broadcast_due_before_it(session, member, redis):
    """A page of 5 here (500 in production): the alert written after 12 broadcast rows goes on the
    first sweep, not the third."""
    for i in range(12):
        queue_message(session, key=f"c{i}", to=f"+4477009001{i:02d}", body="hi", kind="broadcast", member=member)
    session.commit()
    alert = queue_message(session, key="alert", to="+447700900999", body="alert", kind="alert",
                          community_id=member.community_id)
    session.commit()
    redis.flushdb()
    sweep_now(session, redis, limit=5)
    assert send_job_id(alert.id) in queued_ids(redis, "crisis")


def test_a_row_is_given_a_new_job_only_once_two_sweeps_apart_found_it_without_one(session, member, redis, clock):
    """A worker takes a job off its queue a moment before RQ records it as started: a sweep in
    between sees the row without a job. Only a second sweep, `CONFIRM` later, that finds it so
    too gives it one; before, that sweep gave it a second job, whose run skipped the back-off of
    a failed send and counted two of its tries."""
    from service.sweeper import CONFIRM, FORGET, HOST, UNSEEN, sweep

    row = queue_message(session, key="a", to=member.phone, body="hi", kind="reply", member=member)
    session.commit()
    queue("replies", redis).remove(send_job_id(row.id))  # taken off its queue, not yet started
    assert sweep(session, redis) == 0
    assert 0 < redis.ttl(f"{UNSEEN}:{HOST}") <= FORGET.total_seconds()  # gone once no sweep has found it for FORGET
    clock.advance(seconds=1)
    assert sweep(session, redis) == 0
    clock.advance(seconds=CONFIRM.total_seconds() - 1)
    assert sweep(session, redis) == 1, "no worker started it: it was lost"
    assert queued_ids(redis) == [send_job_id(row.id)]
    assert sweep(session, redis) == 0


def test_a_row_seen_with_a_job_between_two_sweeps_starts_its_wait_afresh(session, member, redis, clock):
    from service.sweeper import CONFIRM, sweep

    row = queue_message(session, key="a", to=member.phone, body="hi", kind="reply", member=member)
    session.commit()
    replies = queue("replies", redis)
    replies.remove(send_job_id(row.id))
    assert sweep(session, redis) == 0  # found without a job
    clock.advance(seconds=1)
    replies.enqueue_job(Job.fetch(send_job_id(row.id), connection=redis, serializer=JSONSerializer))
    assert sweep(session, redis) == 0  # its job is there: the first finding is forgotten
    replies.remove(send_job_id(row.id))
    clock.advance(seconds=CONFIRM.total_seconds())
    assert sweep(session, redis) == 0, "found without a job once, not twice CONFIRM apart"
    clock.advance(seconds=CONFIRM.total_seconds())
    assert sweep(session, redis) == 1


def test_a_row_waiting_for_an_earlier_one_with_a_live_job_is_left_to_wait(app, session, member, redis, clock):
    """A member's second reply, whose job found their first waiting out a retry and left it: the
    sweeper gives it no job while the first has one, then gives it one when the first is sent."""
    from sqlalchemy import update

    from service.models import OutboundMessage

    first = queue_message(session, key="r1", to=member.phone, body="first", kind="reply", member=member)
    session.commit()
    second = queue_message(session, key="r2", to=member.phone, body="second", kind="reply", member=member)
    session.commit()
    queue("replies", redis).remove(send_job_id(second.id))  # its job ran and ended
    assert queued_ids(redis) == [send_job_id(first.id)]
    assert sweep_now(session, redis) == 0
    session.execute(update(OutboundMessage).where(OutboundMessage.id == first.id).values(state="sent"))
    session.commit()
    assert sweep_now(session, redis) == 1
    assert send_job_id(second.id) in queued_ids(redis)


def test_rows_that_lost_their_jobs_go_in_the_order_written_whatever_their_due_times(session, member, redis, clock):
    """A reminder written first but due a minute after a reply written later: the reply waits for
    it (it is the earlier row), so the sweeper puts the two in one job, the reminder first."""
    reminder = queue_message(session, key="m", to=member.phone, body="reminder", kind="reminder", member=member,
                             due_at=clock.now + timedelta(minutes=1))
    session.commit()
    clock.advance(minutes=1)
    reply = queue_message(session, key="r", to=member.phone, body="reply", kind="reply", member=member,
                          due_at=clock.now - timedelta(minutes=1))
    session.commit()
    redis.flushdb()
    assert sweep_now(session, redis) == 2
    assert queued_ids(redis) == [batch_job_id([reminder.id, reply.id])]


def test_the_clock_sweeps_while_a_long_scheduled_run_goes_on(app, session, member, redis, clock):
    """A scheduled run over a large community can take minutes. The sweep has a thread of its own,
    so a row whose job was lost meanwhile gets one without waiting for the run to end: before,
    the sweep waited its turn after the run, every tick."""
    import threading
    import time

    from service.sweeper import CONFIRM, HOST, UNSEEN
    from workers.clock import serve

    row = queue_message(session, key="a", to=member.phone, body="hi", kind="reply", member=member)
    session.commit()
    queue("replies", redis).remove(send_job_id(row.id))  # lost
    run_goes_on, stopping = threading.Event(), []

    def a_long_scheduled_run(_session):
        run_goes_on.wait(timeout=60)
        return {}

    app.extensions["hearth_clock_tasks"] = [a_long_scheduled_run]
    clock_process = threading.Thread(target=serve, args=(app, stopping, 0.01))
    clock_process.start()
    try:
        def within(seconds, condition):
            deadline = time.monotonic() + seconds
            while not condition() and time.monotonic() < deadline:
                time.sleep(0.01)
            return condition()

        assert within(20, lambda: redis.zscore(f"{UNSEEN}:{HOST}", str(row.id)) is not None), "no sweep found it"
        clock.advance(seconds=CONFIRM.total_seconds())
        assert within(20, lambda: send_job_id(row.id) in queued_ids(redis)), "no sweep during the run gave it a job"
        assert not run_goes_on.is_set()
    finally:
        stopping.append(True)
        run_goes_on.set()
        clock_process.join(timeout=30)


def test_two_sweepers_whose_clocks_differ_still_wait_for_a_second_finding(session, member, redis, clock,
                                                                          monkeypatch):
    """Two clocks run, one host's time a few seconds behind the other's: a row found without a job
    (its job in a worker's hands, not yet recorded as started) by one is not given a job by the
    other a moment later; each waits to find it so twice, `CONFIRM` apart."""
    from service import sweeper
    from service.sweeper import sweep

    row = queue_message(session, key="a", to=member.phone, body="hi", kind="reply", member=member)
    session.commit()
    queue("replies", redis).remove(send_job_id(row.id))  # taken off its queue, not yet started
    clock.advance(seconds=10)
    monkeypatch.setattr(sweeper, "HOST", "behind")
    assert sweep(session, redis) == 0  # the clock 10 s behind
    clock.advance(seconds=10.5)
    monkeypatch.setattr(sweeper, "HOST", "ahead")
    assert sweep(session, redis) == 0, "the other clock, half a second later: found once"


def test_two_sweepers_whose_clocks_differ_by_more_than_a_minute_give_a_lost_row_a_job(session, member, redis,
                                                                                      clock, monkeypatch):
    from service import sweeper
    from service.sweeper import sweep

    row = queue_message(session, key="a", to=member.phone, body="hi", kind="reply", member=member)
    session.commit()
    redis.flushdb()
    clock.advance(minutes=5)
    swept = 0
    for _ in range(10):  # each sweeps every second, one host's time 90 s behind the other's
        clock.advance(seconds=-90)
        monkeypatch.setattr(sweeper, "HOST", "behind")
        swept += sweep(session, redis)
        clock.advance(seconds=90.5)
        monkeypatch.setattr(sweeper, "HOST", "ahead")
        swept += sweep(session, redis)
        clock.advance(seconds=0.5)
    assert swept == 1
    assert queued_ids(redis) == [send_job_id(row.id)]


def test_a_row_that_had_a_job_while_no_sweep_looked_at_it_starts_its_wait_afresh(session, member, redis, clock):
    """A row found without a job (a worker had just taken it), then behind an earlier message to
    the same number being sent (so no sweep looks at it) while its job waits on its queue: once
    that message is sent, a sweep that finds the row without a job (a worker taking it again) does
    not give it a second one at once."""
    from sqlalchemy import update

    from service.models import OutboundMessage
    from service.sweeper import CONFIRM, sweep

    earlier = queue_message(session, key="r", to=member.phone, body="reply", kind="reply", member=member,
                            due_at=clock.now + timedelta(hours=1))
    row = queue_message(session, key="a", to=member.phone, body="hi", kind="broadcast", member=member)
    session.commit()
    [job_id] = queued_ids(redis, "bulk")
    bulk = queue("bulk", redis)
    bulk.remove(job_id)
    assert sweep(session, redis) == 0  # found without a job
    bulk.enqueue_job(Job.fetch(job_id, connection=redis, serializer=JSONSerializer))  # it had one after all
    session.execute(update(OutboundMessage).where(OutboundMessage.id == earlier.id)
                    .values(state="sending", claimed_at=clock.now, due_at=clock.now))
    session.commit()
    for _ in range(3):
        clock.advance(seconds=1)
        assert sweep(session, redis) == 0  # behind the message being sent: not looked at
    session.execute(update(OutboundMessage).where(OutboundMessage.id == earlier.id).values(state="sent"))
    session.commit()
    bulk.remove(job_id)  # a worker takes it
    assert sweep(session, redis) == 0, "found without a job once, not twice CONFIRM apart"
    clock.advance(seconds=CONFIRM.total_seconds())
    assert sweep(session, redis) == 1


def test_a_retry_no_scheduler_moves_is_replaced_once_it_is_a_lease_late(app, session, member, redis):
    """A job's retry waits in its queue's scheduled registry for a worker's scheduler to move it at its
    time. With none doing so (the worker holding RQ's scheduler lock was killed, and the others look
    for the lock every ten minutes; Redis failed under the scheduler's process, which ended), the row
    would wait as long, its job counted live. A retry late by less than a lease is left to the
    scheduler; one later than that is replaced by a job on the queue."""
    row = queue_message(session, key="a", to=member.phone, body="hi", kind="alert", member=member)
    session.commit()
    crisis = queue("crisis", redis)
    job_id = send_job_id(row.id)
    crisis.remove(job_id)
    job = Job.fetch(job_id, connection=redis, serializer=JSONSerializer)
    lease = timedelta(seconds=app.config["HEARTH"].send_lease)
    crisis.schedule_job(job, datetime.now(timezone.utc) - lease + timedelta(seconds=10))  # as RQ's Retry does
    assert sweep_now(session, redis) == 0, "a retry a little late is the scheduler's"
    crisis.schedule_job(job, datetime.now(timezone.utc) - lease - timedelta(seconds=10))
    assert sweep_now(session, redis) == 1
    assert queued_ids(redis, "crisis") == [job_id]
    assert crisis.scheduled_job_registry.get_job_ids() == []
