"""Re-enqueue outbox rows that are due and have no live job, so a flushed Redis loses nothing."""

from __future__ import annotations

import socket
from datetime import datetime, timedelta

from redis import Redis
from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from workers.queues import enqueue_sends, live_send_rows

from .clock import now
from .models import OutboundMessage
from .sending import lease, sweepable

BATCH = 500
# Rows looked at in one sweep: up to PAGES x BATCH of the crisis queue's, then as many of the others',
# so a backlog of live jobs hides none.
PAGES = 20
# A row found without a job is given one only when a sweep at least this long before found it so
# too. A worker takes a job off its queue a moment before RQ records it as started: a sweep that
# looked in between would give the row a second job, which skips a failed send's back-off.
CONFIRM = timedelta(seconds=2)
# Rows a sweep found without a job: outbox id -> when first found (epoch seconds, the app's clock),
# one set for each host that sweeps (`HOST`): two hosts' clocks may differ by seconds, and a time
# one wrote is not compared with the other's (the set is gone once its host has not swept for FORGET).
UNSEEN = "hearth-sweep-unseen"
HOST = socket.gethostname()
# A mark older than this is of a row that has had a job since, or was sent.
FORGET = timedelta(minutes=1)


def sweep(session: Session, redis: Redis, limit: int = BATCH, confirm: timedelta = CONFIRM) -> int:
    """Enqueue due rows whose job is missing or dead; return how many were enqueued.

    Rows are read oldest due first, the crisis queue's before the rest, a page at a time: a
    broadcast's thousands of rows with live jobs ahead of a row whose job was lost must not hide
    it. A row waiting for an earlier one to the same number that has a live job waits for it
    (its own job ran, found it ahead, and left it; it is given a job once that one is sent). A row
    is enqueued once two sweeps `confirm` apart found it without a job (`CONFIRM`). Two sweeps at
    once are harmless: job ids are unique and a send claims its row first. The rows a sweep finds
    are enqueued as rows committed together are (`enqueue_sends`), in the order they were
    written: bulk ones in batches, one recipient's in one job (a recipient's rows can be split
    only where a sweep stops, after `limit` rows).
    """
    at = now()
    rule, waits_for = sweepable(at)
    live: set[int] | None = None

    def jobs() -> set[int]:
        """The rows with a live job (a retry a lease past its time is not one)."""
        return live_send_rows(redis, started_after=at - lease(), late=lease())
    missing = []
    # The crisis queue's rows first: after a flush an alert must not wait for a broadcast's rows
    # due before it, nor be hidden behind more of them than a sweep looks at.
    for group in (_OUTBOX.c.queue == "crisis", _OUTBOX.c.queue != "crisis"):
        after = None
        for _ in range(PAGES):
            query = select(_OUTBOX.c.id, _OUTBOX.c.queue, _OUTBOX.c.to_number, _OUTBOX.c.due_at).where(rule, group)
            if after is not None:
                due, last = after
                query = query.where(or_(_OUTBOX.c.due_at > due, and_(_OUTBOX.c.due_at == due, _OUTBOX.c.id > last)))
            rows = session.execute(query.order_by(_OUTBOX.c.due_at, _OUTBOX.c.id).limit(limit)).all()
            if not rows:
                session.rollback()
                break
            if live is None:
                live = jobs()
            without = [row for row in rows if row.id not in live]
            # What each waits for, asked only of rows with no job (a backlog's rows have theirs).
            waiting = dict(session.execute(select(_OUTBOX.c.id, waits_for).where(
                _OUTBOX.c.id.in_([row.id for row in without]))).all()) if without else {}
            session.rollback()
            missing += [(row.id, row.queue, row.to_number) for row in without if waiting.get(row.id) not in live]
            if len(missing) >= limit or len(rows) < limit:
                break
            after = (rows[-1].due_at, rows[-1].id)
        if len(missing) >= limit:
            break
    marks = f"{UNSEEN}:{HOST}"
    if live is None:  # no row to look at: the marks of rows that have had a job since still go
        live = jobs() if redis.exists(marks) else set()
    confirmed = set(_confirmed(redis, marks, [row[0] for row in missing], live, at, confirm))
    # Enqueued together, as at commit: held bulk rows (an import's welcomes) go in batches.
    enqueued = enqueue_sends(redis, sorted(row for row in missing if row[0] in confirmed), replace_dead=True)
    if confirmed:
        redis.zrem(marks, *confirmed)
    return enqueued


def _confirmed(redis: Redis, marks: str, missing: list[int], live: set[int], at: datetime,
               confirm: timedelta) -> list[int]:
    """Of the rows found without a job now, those a sweep at least `confirm` ago found so too;
    the others are marked as found now. Rows that have a job now lose their mark, whether or not
    this sweep looked at them (a row behind another being sent is not looked at, and its job may
    be taken again by a worker as the sweep after looks)."""
    stamp = at.timestamp()
    with redis.pipeline(transaction=False) as pipeline:
        # Marks too old to be of this row's latest finding, and marks from before this host's clock went back.
        pipeline.zremrangebyscore(marks, "-inf", f"({stamp - FORGET.total_seconds()}")
        pipeline.zremrangebyscore(marks, f"({stamp + confirm.total_seconds()}", "+inf")
        pipeline.zrange(marks, 0, -1)
        marked = pipeline.execute()[-1]
    had_a_job = [entry for entry in marked if int(entry) in live]
    with redis.pipeline(transaction=False) as pipeline:
        if had_a_job:
            pipeline.zrem(marks, *had_a_job)
        if missing:
            pipeline.zadd(marks, {str(row): stamp for row in missing}, nx=True)
            pipeline.expire(marks, int(FORGET.total_seconds()))
            for row in missing:  # one ZSCORE each, not ZMSCORE: Redis before 6.2 (Ubuntu 22.04's) has none
                pipeline.zscore(marks, str(row))
        done = pipeline.execute()
    found = done[-len(missing):] if missing else []
    return [row for row, first in zip(missing, found) if first is not None and stamp - first >= confirm.total_seconds()]


_OUTBOX = OutboundMessage.__table__
