"""Alembic migrations, applied with `hearth db upgrade`."""

from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.script import ScriptDirectory

HERE = Path(__file__).parent


def alembic_config(database_url: str) -> AlembicConfig:
    """An Alembic configuration for `database_url`, without an ini file."""
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(HERE))
    cfg.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return cfg


def upgrade(database_url: str, revision: str = "head") -> None:
    """Apply migrations up to `revision`."""
    command.upgrade(alembic_config(database_url), revision)


def current(database_url: str) -> str | None:
    """The revision the database is at (None: not under Hearth's migrations)."""
    from alembic.runtime.migration import MigrationContext

    from service.database import make_engine

    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


@cache
def revisions() -> tuple[str, ...]:
    """This code's migrations, oldest first; the last is the schema the code expects."""
    scripts = ScriptDirectory.from_config(alembic_config("sqlite://"))
    return tuple(reversed([script.revision for script in scripts.walk_revisions()]))
