"""Queue names in priority order, and enqueueing a send with its deterministic id."""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta, timezone
from functools import lru_cache

from redis import Redis
from rq import Queue, Retry
from rq.exceptions import DuplicateJobError, NoSuchJobError
from rq.job import Job
from rq.serializers import JSONSerializer
from rq.utils import now, utcformat, utcparse

log = logging.getLogger(__name__)

CRISIS, REPLIES, BULK = "crisis", "replies", "bulk"
PRIORITY = (CRISIS, REPLIES, BULK)  # a worker listens in this order
SEND_RETRY_INTERVALS = [2, 5, 15, 60, 180, 600]
JOB_TIMEOUT = 30
# Bulk rows committed together go out in jobs of about this many (more when one recipient has
# more: their rows are never split): RQ's own cost per job (~4 ms) would otherwise be a third of
# each send. On the other queues each recipient's rows have a job of their own.
BULK_BATCH = 25


def send_job_id(outbox_id: int) -> str:
    """The one id a send job for an outbox row can have."""
    return f"send-{outbox_id}"


def batch_job_id(outbox_ids: list[int]) -> str:
    """A batch's id names its rows, so the sweeper can tell which rows have a live job."""
    return "send-" + "_".join(map(str, outbox_ids))


def row_ids(job_id: str) -> list[int]:
    """The outbox rows a send job (single or batch) is for."""
    if not job_id.startswith("send-"):
        return []
    return [int(part) for part in job_id[5:].split("_") if part.isdigit()]


def queue(name: str, connection: Redis) -> Queue:
    """An RQ queue with Hearth's JSON serializer."""
    return Queue(name, connection=connection, serializer=JSONSerializer)


def enqueue_sends(connection: Redis, staged: list[tuple[int, str, str]], *, replace_dead: bool = False) -> int:
    """Enqueue rows committed together, given as (outbox id, queue, recipient) in the order written;
    returns how many rows were given a job.

    One recipient's rows on a queue go in one job, in that order: in separate jobs, two workers
    could deliver a turn's second message before its first. Bulk recipients are packed into
    batches of about BULK_BATCH rows; on the other queues each recipient has a job of their own,
    so one facilitator's alert does not wait behind another's. `replace_dead` (the sweeper, for
    rows it knows have no live job) first removes any record of a dead job with the same id.
    """
    enqueued = 0
    for name in PRIORITY:
        groups: dict[str, list[int]] = {}
        for outbox_id, queue_name, recipient in staged:
            if queue_name == name:
                groups.setdefault(recipient, []).append(outbox_id)
        for ids in _batches(list(groups.values())) if name == BULK else groups.values():
            enqueued += _enqueue(connection, name, ids, replace_dead)
    return enqueued


def _batches(groups: list[list[int]]) -> list[list[int]]:
    """Recipients' rows packed into batches of up to BULK_BATCH rows, never splitting one recipient's."""
    batches: list[list[int]] = []
    for ids in groups:
        if batches and len(batches[-1]) + len(ids) <= BULK_BATCH:
            batches[-1].extend(ids)
        else:
            batches.append(list(ids))
    return batches


def report_and_look_ahead(job: Job) -> int:
    """What a running batch does between two sends, in one round trip: record that `job` runs now
    (only while its record is there: RQ's own heartbeat would write a record for a job Redis lost,
    one that holds nothing else, never expires, and makes its id look taken for good), and count
    the jobs waiting on the queues ahead of its own."""
    ahead = PRIORITY[:PRIORITY.index(job.origin)] if job.origin in PRIORITY else ()
    keys = [job.key, *(Queue.redis_queue_namespace_prefix + name for name in ahead)]
    return _report_and_look_ahead(job.connection)(keys=keys, args=[utcformat(now())])


@lru_cache(maxsize=4)
def _report_and_look_ahead(connection: Redis):
    """The script, loaded once per connection (a worker has one)."""
    return connection.register_script(_REPORT_AND_LOOK_AHEAD)


_REPORT_AND_LOOK_AHEAD = """
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HSET', KEYS[1], 'last_heartbeat', ARGV[1]) end
local waiting = 0
for i = 2, #KEYS do waiting = waiting + redis.call('LLEN', KEYS[i]) end
return waiting
"""


def hand_back(connection: Redis, queue_name: str, ids: list[int]) -> int:
    """Put rows a job gave way with back at the front of its queue, as one job: they keep their
    place ahead of what was queued after them, and their order."""
    return _enqueue(connection, queue_name, ids, replace_dead=False, at_front=True) if ids else 0


def _enqueue(connection: Redis, queue_name: str, ids: list[int], replace_dead: bool, at_front: bool = False) -> int:
    """One job for `ids` (`send-<id>`, or a batch's `send-<id>_<id>...`); the rows it took, 0 when a
    job with its id is already waiting or running."""
    single = len(ids) == 1
    job_id = send_job_id(ids[0]) if single else batch_job_id(ids)
    if replace_dead:
        _forget(connection, job_id)
    try:
        queue(queue_name, connection).enqueue(
            "workers.jobs.send_message" if single else "workers.jobs.send_messages", ids[0] if single else ids,
            job_id=job_id, unique=True, retry=Retry(max=len(SEND_RETRY_INTERVALS), interval=SEND_RETRY_INTERVALS),
            job_timeout=JOB_TIMEOUT if single else JOB_TIMEOUT * max(len(ids), BULK_BATCH), result_ttl=0,
            failure_ttl=7 * 86400, at_front=at_front,
        )
    except DuplicateJobError:
        return 0
    return len(ids)


# Rows committed by a run that holds its sends to enqueue them together (`dispatch.sends_held`),
# each until a time (epoch seconds): the sweeper counts them live, as if their job were queued.
HELD_ROWS = "hearth-held-sends"


def hold_rows(connection: Redis, ids: list[int], until: float) -> None:
    """Mark rows as about to be enqueued by the run that committed them, until `until`."""
    if ids:
        connection.zadd(HELD_ROWS, {str(i): until for i in ids})


def release_rows(connection: Redis, ids: list[int]) -> None:
    """The rows have their jobs now (or the run is over): no longer held."""
    if ids:
        with connection.pipeline(transaction=False) as pipeline:
            pipeline.zrem(HELD_ROWS, *[str(i) for i in ids])
            pipeline.zremrangebyscore(HELD_ROWS, "-inf", time.time())  # marks of runs that died
            pipeline.execute()


def live_send_rows(connection: Redis, started_after: datetime, late: timedelta | None = None) -> set[int]:
    """Outbox rows whose job will still run: waiting in a queue, scheduled (a retry) for a time less
    than `late` ago, or running: started, or last heard of (a batch reports between its sends), after
    `started_after`; and rows a run holds to enqueue together (`HELD_ROWS`), until their mark runs out.

    A job a killed worker had taken off its queue is in none of these (or was last heard of long
    ago), so the sweeper replaces it; so is a retry no scheduler has moved for `late` after its time
    (the worker holding RQ's scheduler lock died, and the others look for the lock every ten minutes).
    """
    waiting, started, held = _snapshot(connection, late)
    live = set(waiting)
    started_ids = sorted(started)
    for job_id, heard in zip(started_ids, _last_heard(connection, started_ids)):
        if heard is not None and _aware(heard) > started_after:
            live.add(job_id)
    # A job that ended while those were read may have put its rows on a queue first (a batch that
    # gives way): what waits now, and what was taken since, is live too.
    waiting_now, started_now, held_now = _snapshot(connection, late)
    live |= waiting_now | (started_now - started)
    return {row for job_id in live for row in row_ids(job_id)} | held | held_now


def _snapshot(connection: Redis, late: timedelta | None) -> tuple[set[str], set[str], set[int]]:
    """The ids of the jobs waiting (on a queue, or scheduled for a retry at a time less than `late`
    ago) and of those started, on every queue, and the rows held by a run, read in one transaction: a
    job a worker takes meanwhile is seen in one or the other, and a held row once its job is queued
    in one or the other."""
    queues = [queue(name, connection) for name in PRIORITY]
    # A scheduled job's score is its time, in the clock of the worker that scheduled it.
    scheduled_since = "-inf" if late is None else time.time() - late.total_seconds()
    with connection.pipeline(transaction=True) as pipeline:
        for q in queues:
            pipeline.lrange(q.key, 0, -1)
            pipeline.zrangebyscore(q.scheduled_job_registry.key, scheduled_since, "+inf")
            pipeline.zrange(q.started_job_registry.key, 0, -1)
        pipeline.zrangebyscore(HELD_ROWS, time.time(), "+inf")
        *read, held = pipeline.execute()
    waiting: set[str] = set()
    started: set[str] = set()
    for q, (queued, scheduled, running) in zip(queues, zip(*[iter(read)] * 3)):
        waiting.update(entry.decode() for entry in queued + scheduled)
        started.update(q.started_job_registry.parse_job_id(entry.decode()) for entry in running)
    return waiting, started, {int(entry) for entry in held}


def _last_heard(connection: Redis, job_ids: list[str]) -> list[datetime | None]:
    """When each started job last reported (its heartbeat, else its start), read from its record's
    two fields: a record that is only those fields (the job's data deleted by `_forget` or a flush
    as a worker took it, which then wrote them) is read as well as a whole one."""
    with connection.pipeline(transaction=False) as pipeline:
        for job_id in job_ids:
            pipeline.hmget(Job.key_for(job_id), "last_heartbeat", "started_at")
        found = pipeline.execute()
    return [_moment(beat or start) for beat, start in found]


def _moment(stamp: bytes | None) -> datetime | None:
    try:
        return utcparse(stamp.decode()) if stamp else None
    except ValueError:
        return None


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _forget(connection: Redis, job_id: str) -> None:
    """Remove a dead job's record, so its id can be used afresh; one RQ cannot read (only the fields
    a worker writes as it starts a job, with no job data) is deleted outright."""
    try:
        Job.fetch(job_id, connection=connection, serializer=JSONSerializer).delete()
    except NoSuchJobError:
        connection.delete(Job.key_for(job_id))
