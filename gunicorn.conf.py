"""gunicorn settings for Hearth's web process (the Procfile passes `--config gunicorn.conf.py`).

Bind address, worker count and logging stay on the Procfile's command line; this file holds what
a command line cannot say.
"""

import gc


def post_worker_init(worker) -> None:
    """Once a worker has built the app, keep the garbage collector out of what it built.

    The app, its flows, SQLAlchemy's mappers and the libraries are about 130,000 objects that live
    as long as the worker. Left where they are, every full collection walks all of them: 40 ms or
    more with the worker stopped, a stall that shows at the top of the latency distribution.
    `gc.freeze()` moves them to a generation the collector never scans; what requests allocate is
    collected as before. A collection first, so no garbage from start-up is kept for good.
    """
    gc.collect()
    gc.freeze()


def on_starting(server) -> None:
    """Before any worker starts, Hearth's settings are read once: one that cannot be used stops
    gunicorn with one line naming it, where each worker would otherwise print a traceback.

    Only for Hearth's app (the benchmarks serve their baselines with these settings too).
    """
    if getattr(server.app, "app_uri", "").startswith("service:"):
        from service import app_for

        app_for("web")
