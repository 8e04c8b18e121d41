"""Queue names in priority order, and enqueueing a send with its deterministic id."""

from __future__ import annotations

import logging

from redis import Redis
from rq import Queue, Retry
from rq.exceptions import DuplicateJobError, NoSuchJobError
from rq.job import Job, JobStatus
from rq.serializers import JSONSerializer

log = logging.getLogger(__name__)

CRISIS, REPLIES, BULK = "crisis", "replies", "bulk"
PRIORITY = (CRISIS, REPLIES, BULK)  # a worker listens in this order
SEND_RETRY_INTERVALS = [2, 5, 15, 60, 180, 600]
JOB_TIMEOUT = 30
DEAD_STATUSES = {JobStatus.FINISHED, JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED}


def send_job_id(outbox_id: int) -> str:
    """The one id a send job for an outbox row can have."""
    return f"send-{outbox_id}"


def queue(name: str, connection: Redis) -> Queue:
    """An RQ queue with Hearth's JSON serializer."""
    return Queue(name, connection=connection, serializer=JSONSerializer)


def enqueue_send(connection: Redis, outbox_id: int, queue_name: str) -> bool:
    """Enqueue the send job for a row; False when a job for it is already waiting or running."""
    try:
        queue(queue_name, connection).enqueue(
            "workers.jobs.send_message", outbox_id,
            job_id=send_job_id(outbox_id), unique=True,
            retry=Retry(max=len(SEND_RETRY_INTERVALS), interval=SEND_RETRY_INTERVALS),
            job_timeout=JOB_TIMEOUT, result_ttl=0, failure_ttl=7 * 86400,
        )
    except DuplicateJobError:
        return False
    return True


def job_state(connection: Redis, outbox_id: int) -> tuple[str | None, object]:
    """The status of a row's send job (None when Redis has no such job) and its start time."""
    try:
        job = Job.fetch(send_job_id(outbox_id), connection=connection, serializer=JSONSerializer)
    except NoSuchJobError:
        return None, None
    return job.get_status(refresh=False), job.started_at


def forget_job(connection: Redis, outbox_id: int) -> None:
    """Remove a dead job's record so the row can be enqueued afresh."""
    try:
        Job.fetch(send_job_id(outbox_id), connection=connection, serializer=JSONSerializer).delete()
    except NoSuchJobError:
        pass
