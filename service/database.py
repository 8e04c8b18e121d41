"""The SQLAlchemy engine and session, attached to the app with `init_app`."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Callable, TypeVar
from urllib.parse import quote

from flask import current_app
from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.exc import DBAPIError, InvalidatePoolError, OperationalError
from sqlalchemy.orm import Session, scoped_session, sessionmaker

T = TypeVar("T")
log = logging.getLogger(__name__)


class Bound:
    """One app's engine and scoped session."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.session: scoped_session[Session] = scoped_session(sessionmaker(engine, expire_on_commit=False))


class Database:
    """The engine and session of the current app; each app gets its own in `init_app`."""

    def init_app(self, app) -> Bound:
        """Build the engine for the app's DATABASE_URL and remove the session after each request.

        With `HEARTH_MAKE_DATABASE` False (the command line) a SQLite file that is not there is not made.
        """
        bound = Bound(make_engine(app.config["HEARTH"].database_url, make=app.config.get("HEARTH_MAKE_DATABASE", True)))
        app.extensions["hearth_db"] = bound

        @app.teardown_appcontext
        def _remove_session(exc: BaseException | None) -> None:
            bound.session.remove()

        return bound

    @property
    def session(self) -> scoped_session[Session]:
        """The current app's scoped session."""
        return current_app.extensions["hearth_db"].session

    @property
    def engine(self) -> Engine:
        """The current app's engine."""
        return current_app.extensions["hearth_db"].engine


def normalise_url(url: str) -> str:
    """Use psycopg 3 for plain `postgres://` and `postgresql://` URLs."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


# How long a connection to PostgreSQL may take to be made.
CONNECT_SECONDS = 5

# How long a SQLite writer waits for another: well inside gunicorn's 30 s worker timeout, so a
# request that cannot get the lock gets a handled answer rather than a killed worker.
SQLITE_BUSY_SECONDS = 10


def make_engine(url: str, make: bool = True) -> Engine:
    """An engine for `url`; SQLite gets WAL, foreign keys and a busy timeout so processes can share it.

    Its errors never carry a statement's values: they are members' texts and numbers, and errors
    go to the log. With `make` False, a SQLite file that is not there (a mistyped path) is not
    made, nor its folder: connecting fails instead.
    """
    url = normalise_url(url)
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if make and path and path != ":memory:":
            folder = Path(path).parent
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ValueError(f"DATABASE_URL: the folder {str(folder)!r} cannot be made ({exc.strerror})") from None
        engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_SECONDS}, hide_parameters=True)

        if not make and path and path != ":memory:":
            @event.listens_for(engine, "do_connect")
            def _open_only(_dialect, _record, cargs, cparams) -> None:
                cargs[0] = "file:" + quote(cargs[0]) + "?mode=rw"  # read-write, never create
                cparams["uri"] = True

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record) -> None:
            # pysqlite's own BEGIN is deferred; a deferred reader that later writes fails at once
            # with "database is locked" when another process wrote meanwhile. Begin IMMEDIATE instead.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_SECONDS * 1000}")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin_immediate(conn) -> None:
            if conn.get_execution_options().get("isolation_level") != "AUTOCOMMIT":  # a lone read (/healthz)
                conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    # A database that takes the connection and never answers must not hold a request (or the health
    # probe) past gunicorn's 30 s timeout: the attempt fails after CONNECT_SECONDS.
    # One the operator gave (`?connect_timeout=` in DATABASE_URL, PGCONNECT_TIMEOUT) stands.
    given = "connect_timeout" in make_url(url).query or os.environ.get("PGCONNECT_TIMEOUT")
    engine = create_engine(url, pool_size=10, max_overflow=10, hide_parameters=True,
                           connect_args={} if given else {"connect_timeout": CONNECT_SECONDS})
    _ping_when_idle(engine)
    return engine


# A pooled connection unused for this long is checked before it is handed out (it may have been
# closed by a database restart or an idle timeout). One used a moment ago is trusted: checking
# every time (pool_pre_ping) costs a round trip per checkout, which is three for every message sent.
PING_AFTER_IDLE = 5.0


def _ping_when_idle(engine: Engine) -> None:
    @event.listens_for(engine, "checkin")
    def _resting(_dbapi_conn, record) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _check_if_rested(dbapi_conn, record, _proxy) -> None:
        since = record.info.get("idle_since")
        if since is None or time.monotonic() - since < PING_AFTER_IDLE:
            return
        try:
            engine.dialect.do_ping(dbapi_conn)
        except Exception as exc:  # the database went away: every pooled connection is stale
            raise InvalidatePoolError("a pooled database connection has gone") from exc


def missing_table(exc: DBAPIError) -> bool:
    """Whether the database lacks a table Hearth uses: it has not been migrated (this far)."""
    return (getattr(exc.orig, "sqlstate", None) == "42P01"  # PostgreSQL: undefined_table
            or "no such table" in str(exc.orig))  # SQLite


# PostgreSQL's "try the transaction again": deadlock_detected, serialization_failure.
RUN_AGAIN = frozenset({"40P01", "40001"})


def conflict(exc: BaseException) -> bool:
    """Whether PostgreSQL rolled this transaction back as a deadlock's victim or a serialization
    failure: the other side goes on, and a second run finds the way clear."""
    return isinstance(exc, DBAPIError) and getattr(exc.orig, "sqlstate", None) in RUN_AGAIN


def running_again(exc: DBAPIError) -> None:
    """Log a conflict's work being run again: it means two paths take locks in different orders."""
    log.warning("running again after a conflict: %s", str(exc.orig).splitlines()[0])


def rerun_if_disconnected(session: Session, work: Callable[[], T], *, waits: tuple[float, ...] = (0.0,),
                          failed: Callable[[], None] | None = None) -> T:
    """Run `work`, and again if its connection turned out dead or PostgreSQL made it a deadlock's victim.

    A connection can die between uses without a ping noticing (the database restarted a moment
    ago). SQLAlchemy then replaces the pool's connections, so the next run gets a live one. A
    deadlock's victim is rolled back whole while the other side goes on, so a second run finds the
    way clear; each is logged, since it means two paths take locks in different orders. With
    `waits` (seconds before each further try) the work also outlasts a database that is still
    coming back: then any OperationalError counts, a failed connect included.
    `failed` is called each time a run fails, before the error is raised or the work run again.
    Only for work that is rolled back whole when it fails: one transaction, or idempotent steps.
    """
    for attempt in range(len(waits) + 1):
        try:
            return work()
        except DBAPIError as exc:
            if failed is not None:
                failed()
            conflicted = conflict(exc)
            retry = exc.connection_invalidated or conflicted or (len(waits) > 1 and isinstance(exc, OperationalError))
            if not retry or attempt == len(waits):
                raise
            if conflicted:
                running_again(exc)
            session.rollback()
            time.sleep(waits[attempt])
    raise AssertionError("unreachable")


db = Database()
