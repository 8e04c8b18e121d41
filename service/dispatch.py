"""After a transaction commits, hand its staged sends to RQ; the sweeper catches any that miss."""

from __future__ import annotations

import logging
import time
from contextlib import contextmanager

from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy import event
from sqlalchemy.orm import Session, scoped_session, sessionmaker

from workers.queues import BULK_BATCH, enqueue_sends, hold_rows, release_rows

from .outbox import savepoint_rolled_back, take_staged

log = logging.getLogger(__name__)
HELD = "hearth_held_sends"
REDIS_DOWN = "hearth_held_redis_down"
# How long the sweeper leaves a held row to the run that committed it: far longer than the run
# takes to commit a batch's worth of members; a run that died is past it, and the sweeper takes over.
HOLD_FOR = 60.0


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
        held = session.info.get(HELD)
        if held is None:
            if staged:
                _enqueue_committed(redis, staged)
            return
        # Committed: marked held, so the sweeper leaves them, and enqueued a batch at a time. Once
        # Redis has failed a run, the run stops asking it (each try could wait seconds for it) and
        # leaves its rows to the sweeper.
        if session.info.get(REDIS_DOWN):
            return
        try:
            hold_rows(redis, [row for row, _, _ in staged], time.time() + HOLD_FOR)
            held.extend(staged)
            if len(held) >= BULK_BATCH:
                _release(redis, held)
        except RedisError as exc:
            session.info[REDIS_DOWN] = True
            log.warning("Redis failed during a run (%s): its sends are left to the sweeper", exc)

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


def _release(redis: Redis, held: list) -> None:
    """Enqueue the held rows together, then take their marks off; empty the list. Raises
    RedisError if Redis fails (the rows are committed: the sweeper enqueues them)."""
    rows = list(held)
    held.clear()
    enqueue_sends(redis, rows)
    release_rows(redis, [row for row, _, _ in rows])


@contextmanager
def sends_held(session: Session, redis: Redis):
    """Commit as often as needed inside: the sends of the commits are enqueued together, in
    batches of about BULK_BATCH rows, not one job per commit (a run over a community commits
    member by member, and one job a member would cost a worker more than the sends). Meanwhile the
    rows are marked held, so the clock's sweeper does not give them jobs of its own. An exception
    inside still enqueues what was committed before it; a process killed inside leaves that to
    the sweeper once the marks run out."""
    session = session() if isinstance(session, scoped_session) else session
    session.info[HELD] = []
    try:
        yield
    finally:
        held = session.info.pop(HELD)
        down = session.info.pop(REDIS_DOWN, False)
        if held and not down:
            count = len(held)
            try:
                _release(redis, held)
            except RedisError as exc:
                log.warning("could not enqueue %d outbox rows now (%s); the sweeper will", count, exc)
