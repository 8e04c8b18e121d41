"""After a transaction commits, hand its staged sends to RQ; the sweeper catches any that miss."""

from __future__ import annotations

import logging
from contextlib import contextmanager

from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy import event
from sqlalchemy.orm import Session, scoped_session, sessionmaker

from workers.queues import enqueue_sends

from .outbox import savepoint_rolled_back, take_staged

log = logging.getLogger(__name__)
HELD = "hearth_held_sends"


def enqueue_after_commit(factory: sessionmaker, redis: Redis) -> None:
    """Listen on `factory`'s sessions: the outermost commit enqueues the rows its transaction staged.

    SQLAlchemy reports a savepoint's release and rollback as a commit and a rollback too; those
    only settle which staged sends survive, so nothing is enqueued before its row is committed and
    rows committed together (an import, a schedule's run) are enqueued together, in batches.
    """

    @event.listens_for(factory, "after_commit")
    def _enqueue(session: Session) -> None:
        if session.in_nested_transaction():
            return  # a savepoint released: its sends wait for the outermost commit
        staged = take_staged(session)
        if HELD in session.info:
            session.info[HELD].extend(staged)  # committed: enqueued with the rest when the hold ends
        elif staged:
            _enqueue_committed(redis, staged)

    @event.listens_for(factory, "after_rollback")
    def _forget(session: Session) -> None:
        if session.in_nested_transaction():
            savepoint_rolled_back(session)

    @event.listens_for(factory, "after_transaction_end")
    def _ended(session: Session, transaction) -> None:
        if transaction.parent is None:
            # Rolled back or closed without a commit (a commit took its sends already): whatever
            # is still staged was never written, and must not ride on this session's next commit.
            take_staged(session)


def _enqueue_committed(redis: Redis, staged: list) -> None:
    try:
        enqueue_sends(redis, staged)
    except RedisError as exc:
        # The rows are committed; the clock's sweeper enqueues them when Redis is back.
        log.warning("could not enqueue %d outbox rows now (%s); the sweeper will", len(staged), exc)


@contextmanager
def sends_held(session: Session, redis: Redis):
    """Commit as often as needed inside: the sends of every commit are enqueued together, in
    batches, when it ends (a run over a community commits member by member, and one job a member
    would cost a worker more than the sends). An exception inside still enqueues what was
    committed before it; a process killed inside leaves that to the sweeper."""
    session = session() if isinstance(session, scoped_session) else session
    session.info[HELD] = []
    try:
        yield
    finally:
        held = session.info.pop(HELD)
        if held:
            _enqueue_committed(redis, held)
