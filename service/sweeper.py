"""Re-enqueue outbox rows that are due and have no live job, so a flushed Redis loses nothing."""

from __future__ import annotations

from datetime import datetime, timezone

from redis import Redis
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from workers.queues import DEAD_STATUSES, enqueue_send, forget_job, job_state

from .clock import now
from .models import OutboundMessage
from .sending import lease

BATCH = 500


def sweep(session: Session, redis: Redis, limit: int = BATCH) -> int:
    """Enqueue due rows whose job is missing or dead; return how many were enqueued."""
    at, stale = now(), now() - lease()
    rows = session.execute(
        select(OutboundMessage.id, OutboundMessage.queue)
        .where(OutboundMessage.due_at <= at,
               or_(OutboundMessage.state == "pending",
                   (OutboundMessage.state == "sending") & (OutboundMessage.claimed_at < stale)))
        .order_by(OutboundMessage.due_at)
        .limit(limit)
    ).all()
    session.rollback()
    enqueued = 0
    for outbox_id, queue_name in rows:
        status, started_at = job_state(redis, outbox_id)
        if status is not None and not _dead(status, started_at, stale):
            continue
        if status is not None:
            forget_job(redis, outbox_id)
        enqueued += enqueue_send(redis, outbox_id, queue_name)
    return enqueued


def _dead(status, started_at: datetime | None, stale: datetime) -> bool:
    if status in DEAD_STATUSES:
        return True
    if status == "started":
        # A worker killed mid-job leaves its job "started" for good.
        started = started_at.replace(tzinfo=timezone.utc) if started_at and started_at.tzinfo is None else started_at
        return started is None or started < stale
    return False
