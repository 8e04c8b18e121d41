"""The sweeper's cost with a broadcast's backlog: what the clock pays every second while one is sent.

    .venv/bin/python bench/sweep.py                  # 10,000 rows, PostgreSQL (about 30 s)
    .venv/bin/python bench/sweep.py --rows 2000 --database sqlite

It writes `--rows` pending outbox rows to as many numbers, gives every row its job (as at commit:
bulk batches on the `bulk` queue), and times `sweeper.sweep` in-process, `--sweeps` times after
one warm-up: every row has a live job, so a sweep looks at them all (up to its 10,000) and
enqueues none. Beside it, in the same run, the baseline: the same pages of the same rows read
with nothing but their due time and state (no look for earlier rows, no Redis), the least any
sweep that reads the outbox pays. No goal: a reference for changes to the sweep.
PostgreSQL database `hearth_bench` (wiped first) or --database sqlite; Redis db 14.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._support import (  # noqa: E402
    REDIS_URL, banner, database_url, make_app, reset_database, reset_redis, save_results,
)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--sweeps", type=int, default=5)
    parser.add_argument("--database", choices=("postgres", "sqlite"), default="postgres")
    args = parser.parse_args(argv)
    results = banner("Hearth sweeper benchmark", ["bench/sweep.py", *argv])
    from redis import Redis
    from sqlalchemy import and_, or_, select, text

    from service.database import db
    from service.models import OutboundMessage
    from service.sweeper import BATCH, PAGES, sweep
    from workers.queues import enqueue_sends

    url = database_url(args.database)
    reset_database(url)
    reset_redis()
    redis = Redis.from_url(REDIS_URL)
    outbox = OutboundMessage.__table__
    app = make_app(url)
    at = datetime.now(timezone.utc)
    with app.app_context():
        db.session.execute(outbox.insert(), [
            dict(idempotency_key=f"bench-sweep:{i}", to_number=f"+447700{i:06d}", body="hi", kind="broadcast",
                 queue="bulk", state="pending", due_at=at, attempts=0, refusals=0, cut_off=0, segments=1,
                 encoding="GSM-7", created_at=at, updated_at=at) for i in range(args.rows)])
        db.session.commit()
        db.session.execute(text("ANALYZE"))
        db.session.commit()
        rows = db.session.execute(select(outbox.c.id, outbox.c.queue, outbox.c.to_number)).all()
        db.session.rollback()
        jobs = enqueue_sends(redis, [tuple(row) for row in rows])
        print(f"{args.rows} pending rows to {args.rows} numbers, each with its job ({jobs} rows given jobs)")

        def bare_pages() -> int:
            """The baseline: the pages a sweep reads, by due time and state alone."""
            seen, after = 0, None
            for _ in range(PAGES):
                query = select(outbox.c.id, outbox.c.due_at).where(outbox.c.state == "pending",
                                                                   outbox.c.due_at <= datetime.now(timezone.utc))
                if after is not None:
                    query = query.where(or_(outbox.c.due_at > after[0],
                                            and_(outbox.c.due_at == after[0], outbox.c.id > after[1])))
                page = db.session.execute(query.order_by(outbox.c.due_at, outbox.c.id).limit(BATCH)).all()
                db.session.rollback()
                seen += len(page)
                if len(page) < BATCH:
                    break
                after = (page[-1].due_at, page[-1].id)
            return seen

        figures = {}
        for name, run in (("sweep", lambda: sweep(db.session, redis)), ("baseline", bare_pages)):
            run()  # warm-up
            took = []
            for _ in range(args.sweeps):
                started = time.perf_counter()
                outcome = run()
                took.append(time.perf_counter() - started)
            figures[name] = {"median_ms": statistics.median(took) * 1000, "all_ms": [t * 1000 for t in took],
                             "returned": outcome}
            print(f"  {name:9} median {figures[name]['median_ms']:6.1f} ms over {args.sweeps}"
                  f" ({', '.join(f'{t * 1000:.1f}' for t in took)} ms); returned {outcome}")
    if figures["sweep"]["returned"] != 0:
        print("invalid run: the sweep enqueued rows that had jobs")
        return 2
    print(f"\nthe sweep costs {figures['sweep']['median_ms'] / figures['baseline']['median_ms']:.1f}x the bare"
          " read of its pages (reference, no goal)")
    results.update(rows=args.rows, database=args.database, figures=figures)
    print(f"results: {save_results('sweep', results)}")
    app.extensions["hearth_db"].engine.dispose()
    redis.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
