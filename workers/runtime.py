"""The app a worker process runs jobs in, built once per process; the worker class that builds it first."""

from __future__ import annotations

import threading
from functools import lru_cache

from rq.worker import SimpleWorker

# Set once this process's worker has been asked to stop (SIGTERM, as a deploy sends it): a batch
# under way ends at its next gap between two sends, handing back the rows it has not tried (`workers.jobs`).
STOPPING = threading.Event()


@lru_cache(maxsize=1)
def worker_app():
    """The Flask app for this worker, from the environment (`service.app_for`)."""
    from service import app_for

    return app_for("worker")


class Worker(SimpleWorker):
    """RQ's SimpleWorker (jobs run in the worker's own process, which keeps the app, its database
    pool and its flows from job to job), which builds the app as it starts: a setting that cannot
    be used, or a host clock far from the database's and Redis's, stops it at once with one line,
    rather than failing every job (or taking live workers' claims) while it looks alive. The clock
    is looked at again before a job once a minute has gone by (`host_clock.Watch`)."""

    def __init__(self, *args, **kwargs) -> None:
        from service import host_clock

        host_clock.check(worker_app(), "worker")
        super().__init__(*args, **kwargs)
        self.clock_watch = host_clock.Watch(worker_app(), "worker")

    def request_stop(self, signum, frame) -> None:
        """A stop that lets the job in hand end (RQ's warm shutdown), but not a whole batch: it ends
        after the send in hand, so the process is gone before a deploy's grace runs out and its
        SIGKILL cuts a send short (a message that may go twice, and rows left to the lease)."""
        STOPPING.set()
        super().request_stop(signum, frame)

    def execute_job(self, job, queue) -> None:
        """Run a job, unless this host's clock has gone off since the last look: then the worker
        stops as its start would have, and the job, not begun, goes back to the front of its queue."""
        try:
            self.clock_watch()
        except SystemExit:
            queue.intermediate_queue.remove(job.id)
            queue.push_job_id(job.id, at_front=True)
            raise
        super().execute_job(job, queue)
