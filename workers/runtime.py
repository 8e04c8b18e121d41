"""The app a worker process runs jobs in: built on first use, once per process."""

from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=1)
def worker_app():
    """The Flask app for this worker, from the environment."""
    from service import create_app

    return create_app()
