"""Fixtures over real parts: a migrated SQLite or PostgreSQL database and a real Redis, flushed around each test."""

from __future__ import annotations

import os
import shutil
from datetime import datetime, timezone

import pytest
from redis import Redis
from sqlalchemy import text

from service import create_app
from service.config import Config
from service.database import db, make_engine
from service.migrations import upgrade
from service.models import Base

from tests.support import FakeClock, sign

REDIS_URL = os.environ.get("HEARTH_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
DATABASE = os.environ.get("HEARTH_TEST_DATABASE_URL", "sqlite")
AUTH_TOKEN = "test-auth-token-0123456789abcdef"
ACCOUNT_SID = "AC" + "1" * 32


def pytest_configure(config):
    """Tests stay on this machine: a connection from the test process to any address but loopback
    (a Twilio client left pointing at api.twilio.com, say) fails the test that made it."""
    import ipaddress
    import socket

    def loopback(host: str) -> bool:
        try:
            ip = ipaddress.ip_address(host.partition("%")[0])
        except ValueError:  # a name, which connect resolves itself
            return host == "localhost"
        return ip.is_loopback or bool(getattr(ip, "ipv4_mapped", None) and ip.ipv4_mapped.is_loopback)

    def guarded(connect):
        def to_loopback_only(sock, address):
            if sock.family in (socket.AF_INET, socket.AF_INET6) and not loopback(address[0]):
                raise OSError(f"a test tried to reach {address[0]}: tests talk to this machine only")
            return connect(sock, address)
        return to_loopback_only

    socket.socket.connect = guarded(socket.socket.connect)
    socket.socket.connect_ex = guarded(socket.socket.connect_ex)


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/unit" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.dbfree)


@pytest.fixture(scope="session")
def _migrated(tmp_path_factory):
    """Migrate once per run: a template SQLite file, or the PostgreSQL database itself."""
    if DATABASE == "sqlite":
        template = tmp_path_factory.mktemp("db") / "template.db"
        upgrade(f"sqlite:///{template}")
        return template
    engine = make_engine(DATABASE)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    engine.dispose()
    upgrade(DATABASE)
    return None


@pytest.fixture
def database_url(_migrated, tmp_path):
    """A migrated, empty database for one test."""
    if DATABASE == "sqlite":
        path = tmp_path / "hearth.db"
        shutil.copy(_migrated, path)
        return f"sqlite:///{path}"
    engine = make_engine(DATABASE)
    names = ", ".join(t.name for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        # The audit log's triggers refuse even TRUNCATE; a superuser's session can set them aside.
        conn.execute(text("SET LOCAL session_replication_role = replica"))
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    engine.dispose()
    return DATABASE


@pytest.fixture
def redis():
    """The test Redis database, empty before and after."""
    conn = Redis.from_url(REDIS_URL)
    conn.flushdb()
    yield conn
    conn.flushdb()
    conn.close()


@pytest.fixture
def clock():
    """A clock the test moves by hand."""
    return FakeClock(datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc))


@pytest.fixture
def config(database_url, redis):
    """The configuration a test app runs with (console transport unless a test says otherwise)."""
    return Config(database_url=database_url, redis_url=REDIS_URL, secret_key="test",
                  public_base_url="https://hearth.example.org", twilio_account_sid=ACCOUNT_SID,
                  twilio_auth_token=AUTH_TOKEN, twilio_from_number="+441632960000", transport="console",
                  send_rate=0)


@pytest.fixture
def app(config, clock):
    app = create_app(config, overrides={"TESTING": True, "CLOCK": clock})
    yield app
    app.extensions["hearth_db"].engine.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def session(app):
    with app.app_context():
        yield db.session


@pytest.fixture
def post_signed(client):
    """POST a form to a /twilio/* route signed as Twilio would sign it."""

    def post(path: str, form: dict, *, token: str = AUTH_TOKEN, url: str | None = None):
        signature = sign(url or "https://hearth.example.org" + path, form, token)
        return client.post(path, data=form, headers={"X-Twilio-Signature": signature})

    return post
