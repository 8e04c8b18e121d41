"""After a transaction commits, hand its staged sends to RQ; the sweeper catches any that miss."""

from __future__ import annotations

import logging

from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy import event
from sqlalchemy.orm import Session, sessionmaker

from workers.queues import enqueue_sends

from .outbox import take_staged

log = logging.getLogger(__name__)


def enqueue_after_commit(factory: sessionmaker, redis: Redis) -> None:
    """Listen on `factory`'s sessions: each commit enqueues the rows it staged."""

    @event.listens_for(factory, "after_commit")
    def _enqueue(session: Session) -> None:
        staged = take_staged(session)
        if not staged:
            return
        try:
            enqueue_sends(redis, staged)
        except RedisError as exc:
            # The rows are committed; the clock's sweeper enqueues them when Redis is back.
            log.warning("could not enqueue %d outbox rows now (%s); the sweeper will", len(staged), exc)

    @event.listens_for(factory, "after_rollback")
    def _forget(session: Session) -> None:
        take_staged(session)
