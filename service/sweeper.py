"""Re-enqueue outbox rows that are due and have no live job, so a flushed Redis loses nothing."""

from __future__ import annotations

from redis import Redis
from sqlalchemy import select
from sqlalchemy.orm import Session

from workers.queues import enqueue_send, forget_job, live_send_rows

from .clock import now
from .models import OutboundMessage
from .sending import claimable, lease

BATCH = 500


def sweep(session: Session, redis: Redis, limit: int = BATCH) -> int:
    """Enqueue due rows whose job is missing or dead; return how many were enqueued.

    Two sweeps at once are harmless: job ids are unique and a send claims its row first.
    """
    at = now()
    rows = session.execute(
        select(OutboundMessage.id, OutboundMessage.queue)
        .where(claimable(at))
        .order_by(OutboundMessage.due_at)
        .limit(limit)
    ).all()
    session.rollback()
    if not rows:
        return 0
    live = live_send_rows(redis, started_after=at - lease())
    enqueued = 0
    for outbox_id, queue_name in rows:
        if outbox_id in live:
            continue
        forget_job(redis, outbox_id)
        enqueued += enqueue_send(redis, outbox_id, queue_name)
    return enqueued
