"""Re-enqueue outbox rows that are due and have no live job, so a flushed Redis loses nothing."""

from __future__ import annotations

from redis import Redis
from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from workers.queues import enqueue_sends, live_send_rows

from .clock import now
from .models import OutboundMessage
from .sending import claimable, lease

BATCH = 500
PAGES = 20  # rows looked at in one sweep: up to PAGES x BATCH, so a backlog of live jobs hides none


def sweep(session: Session, redis: Redis, limit: int = BATCH) -> int:
    """Enqueue due rows whose job is missing or dead; return how many were enqueued.

    Rows are read oldest due first, the crisis queue's before the rest, a page at a time: a
    broadcast's thousands of rows with live jobs ahead of a row whose job was lost must not hide
    it. Two sweeps at once are harmless: job ids are unique and a send claims its row first. The
    rows a sweep finds are enqueued as rows committed together are (`enqueue_sends`): bulk ones in
    batches, one recipient's in one job (a recipient's rows can be split only where a sweep stops,
    after `limit` rows).
    """
    at = now()
    live: set[int] | None = None
    missing = []
    # The crisis queue's rows first: after a flush an alert must not wait for a broadcast's rows
    # due before it, nor be hidden behind more of them than a sweep looks at.
    for group in (_OUTBOX.c.queue == "crisis", _OUTBOX.c.queue != "crisis"):
        after = None
        for _ in range(PAGES):
            query = select(_OUTBOX.c.id, _OUTBOX.c.queue, _OUTBOX.c.to_number, _OUTBOX.c.due_at).where(
                claimable(at), group)
            if after is not None:
                due, last = after
                query = query.where(or_(_OUTBOX.c.due_at > due, and_(_OUTBOX.c.due_at == due, _OUTBOX.c.id > last)))
            rows = session.execute(query.order_by(_OUTBOX.c.due_at, _OUTBOX.c.id).limit(limit)).all()
            session.rollback()
            if not rows:
                break
            if live is None:
                live = live_send_rows(redis, started_after=at - lease())
            missing += [(row.id, row.queue, row.to_number) for row in rows if row.id not in live]
            if len(missing) >= limit or len(rows) < limit:
                break
            after = (rows[-1].due_at, rows[-1].id)
        if len(missing) >= limit:
            break
    # Enqueued together, as at commit: held bulk rows (an import's welcomes) go in batches.
    return enqueue_sends(redis, missing, replace_dead=True)


_OUTBOX = OutboundMessage.__table__
