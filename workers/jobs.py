"""RQ jobs: thin functions of ids that call the service layer inside an app context."""

from __future__ import annotations

import logging

from redis.exceptions import RedisError
from rq import get_current_job

from .queues import SEND_RETRY_INTERVALS, hand_back, report_and_look_ahead
from .runtime import STOPPING, worker_app

log = logging.getLogger(__name__)


def send_message(outbox_id: int) -> str:
    """Send one outbox row (job id `send-<id>`)."""
    return send_messages([outbox_id])[0]


def send_messages(outbox_ids: list[int]) -> list[str]:
    """Send outbox rows in turn (job id `send-<id>_<id>...`); a row already sent is skipped.

    A batch gives way to more urgent queues: when a job is waiting on one between two sends, the
    rows not yet tried go back to the front of this queue as a job of their own, and this job
    ends, so the worker takes the urgent one next. It gives way the same when its worker has been
    asked to stop (a deploy), so that another worker sends the rest.
    """
    from service.database import db
    from service.sending import DEFERRED, deliver_batch

    app = worker_app()
    job = get_current_job()
    give_way = _between_sends(job) if job is not None and len(outbox_ids) > 1 else None
    with app.app_context():
        runtime = app.extensions["hearth_runtime"]
        states = deliver_batch(db.session, outbox_ids, give_way=give_way, transport=runtime.transport,
                               limiter=runtime.limiter, receipts=runtime.receipts,
                               sender=app.config["HEARTH"].sender, final_attempt=not job or not job.retries_left)
    rest = [outbox_id for outbox_id, state in zip(outbox_ids, states) if state == DEFERRED]
    if rest:
        try:
            taken = hand_back(job.connection, job.origin, rest)
        except RedisError as exc:
            taken, why = 0, str(exc)
        else:
            why = "a job with their id is on record"
        if taken < len(rest):  # they stay pending: the sweeper gives them a job
            log.warning("outbox rows %s were not handed back (%s); the sweeper will", rest, why)
    return states


def _between_sends(job):
    """What a batch does between two sends: it reports itself alive (the sweeper takes a job not
    heard of for a lease for a dead worker's: a batch waiting on the rate limit or the carrier can
    run longer than that), and asks whether a job waits on a queue ahead of its own.

    A retry does not give way: the row that failed may lie ahead, and handed back in a new job it
    would start its tries and their back-off afresh. Without Redis, the batch goes on.
    """
    first_run = job.retries_left is None or job.retries_left >= len(SEND_RETRY_INTERVALS)

    def give_way() -> bool:
        if STOPPING.is_set():
            return True  # the worker is stopping: the rows not tried go to another, retry or not
        try:
            return report_and_look_ahead(job) > 0 and first_run
        except RedisError:
            return False
    return give_way
