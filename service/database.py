"""The SQLAlchemy engine and session, attached to the app with `init_app`."""

from __future__ import annotations

from pathlib import Path

from flask import current_app
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, scoped_session, sessionmaker


class Bound:
    """One app's engine and scoped session."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.session: scoped_session[Session] = scoped_session(sessionmaker(engine, expire_on_commit=False))


class Database:
    """The engine and session of the current app; each app gets its own in `init_app`."""

    def init_app(self, app) -> Bound:
        """Build the engine for the app's DATABASE_URL and remove the session after each request."""
        bound = Bound(make_engine(app.config["HEARTH"].database_url))
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


def make_engine(url: str) -> Engine:
    """An engine for `url`; SQLite gets WAL, foreign keys and a busy timeout so processes can share it."""
    url = normalise_url(url)
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record) -> None:
            # pysqlite's own BEGIN is deferred; a deferred reader that later writes fails at once
            # with "database is locked" when another process wrote meanwhile. Begin IMMEDIATE instead.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin_immediate(conn) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)


db = Database()
