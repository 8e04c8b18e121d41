"""Alembic environment: migrates the database the Hearth configuration names."""

from alembic import context
from sqlalchemy import text

from service.database import make_engine
from service.models import Base

config = context.config
url = config.get_main_option("sqlalchemy.url")


def run_migrations_offline() -> None:
    context.configure(url=url, target_metadata=Base.metadata, literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connectable = config.attributes.get("connection")
    if connectable is not None:
        _run(connectable)
        return
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            _run(connection)
    finally:  # a failed upgrade too: its connection would stay open in the pool until collected
        engine.dispose()


# Two `hearth db upgrade`s at once (each replica's release step) take turns on PostgreSQL: the
# second waits, then finds the schema at head.
UPGRADE_LOCK = 0x4845415254480001


def _run(connection) -> None:
    # SQLite's DDL is transactional, though Alembic treats it as not and commits each migration on
    # its own: another upgrade could then take the write lock between two of them, run the rest,
    # and leave this one to fail on a migration already applied. In one transaction the whole
    # upgrade holds the write lock, and the other waits for it (BEGIN IMMEDIATE), then finds head.
    context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True,
                      transactional_ddl=True)
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": UPGRADE_LOCK})
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
