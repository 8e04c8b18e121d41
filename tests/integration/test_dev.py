"""`hearth dev`'s parts: the demo community, the local Procfile, and clear errors from the command line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from service.cli.dev import local_procfile
from service.demo import DEMO_COMMUNITY, seed_demo
from service.models import Community, Member

ROOT = Path(__file__).resolve().parents[2]


def test_the_demo_is_seeded_once_and_a_second_run_leaves_no_transaction_open(session):
    assert seed_demo(session) is not None
    assert seed_demo(session) is None
    # On SQLite every transaction holds the write lock (BEGIN IMMEDIATE): one left open by `hearth
    # dev`, which then waits for its web, worker and clock, would lock all three out.
    assert not session().in_transaction()
    demo = session.scalar(select(Community).where(Community.name == DEMO_COMMUNITY))
    assert session.scalar(select(func.count(Member.id)).where(Member.community_id == demo.id)) == 3
    # HELP names someone to contact, as the menu's "HELP for contact details" promises.
    assert demo.render(demo.help_text).startswith("Demo Community: staff on 01632 960111")


def test_the_local_procfile_serves_on_loopback_only():
    procfile = (ROOT / "Procfile").read_text()
    assert "--bind 0.0.0.0:${PORT:-5000}" in procfile
    local = local_procfile(procfile)
    assert "--bind 127.0.0.1:${PORT:-5000}" in local and "0.0.0.0" not in local
    assert local.splitlines()[1:] == procfile.splitlines()[1:]


def hearth(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "from service.cli import main; main()", *args], cwd=ROOT,
                          env={**os.environ, "REDIS_URL": "redis://127.0.0.1:1/0", **env},
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(("url", "args", "says"), [
    ("nonsense", ["community", "create", "Foo"], "Error: DATABASE_URL must be a PostgreSQL URL"),
    ("nosuchdriver://x/y", ["db", "upgrade"], "Error: DATABASE_URL must be a PostgreSQL URL"),
    ("mysql://root@localhost/hearth", ["db", "upgrade"], "not mysql://"),
    ("sqlite:///{tmp}/h.db", ["db", "upgrade", "no-such-revision"], "Error: cannot upgrade to 'no-such-revision'"),
    ("sqlite:///{tmp}/empty.db", ["community", "create", "Foo"],
     "Error: the database refused this (no such table: communities); is DATABASE_URL (sqlite:///{tmp}/empty.db) the"
     " database you meant? if so, run `hearth db upgrade` first"),
])
def test_command_line_errors_are_one_clear_line(tmp_path, url, args, says):
    (tmp_path / "empty.db").touch()  # a database with no tables: an empty file is one to SQLite
    done = hearth(*args, DATABASE_URL=url.format(tmp=tmp_path))
    assert done.returncode == 1
    assert says.format(tmp=tmp_path) in done.stderr.replace("\n", " ") and "Traceback" not in done.stderr + done.stdout


def test_dev_on_a_port_in_use_says_so_at_once(tmp_path):
    import socket

    with socket.create_server(("127.0.0.1", 0)) as taken:  # a Hearth started before, say
        port = taken.getsockname()[1]
        done = hearth("dev", "--port", str(port), DATABASE_URL=f"sqlite:///{tmp_path}/h.db")
    assert done.returncode == 1
    assert f"something already listens on 127.0.0.1:{port} (is Hearth running already?)" in done.stderr
    assert not (tmp_path / "h.db").exists()  # refused before anything was made


def test_dev_fails_when_the_service_it_runs_stops(tmp_path, config):
    """A port bound but not listening passes the first look; gunicorn then cannot bind it, and
    honcho stops worker and clock with it: `hearth dev` (and so `bin/dev`) must not exit 0."""
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        done = hearth("dev", "--port", str(port), DATABASE_URL=f"sqlite:///{tmp_path}/h.db",
                      REDIS_URL=config.redis_url, TWILIO_ACCOUNT_SID="AC" + "1" * 32, TWILIO_AUTH_TOKEN="t")
    assert done.returncode == 1, (done.stdout[-800:], done.stderr[-800:])
    assert "a process of the service stopped" in done.stderr
    # Twilio credentials in the shell do not make the local demo send real texts.
    assert "(console transport: messages are printed, not sent)" in done.stdout


def _unused_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize(("url", "says"), [
    ("redis://redis.invalid:{port}/0", "no Redis answers at redis://redis.invalid:{port}/0"),
    ("redis://:sekret@127.0.0.1:{port}/0", "no Redis answers at redis://:***@127.0.0.1:{port}/0"),
    ("rediss://127.0.0.1:{port}/0", "no Redis answers at rediss://127.0.0.1:{port}/0"),
])
def test_dev_starts_a_private_redis_only_where_it_can_serve_the_url(tmp_path, url, says):
    """A private redis-server listens on this machine, without TLS or a password: for a Redis elsewhere,
    or one the URL logs in to, it would never answer. The password is not printed."""
    port = _unused_port()
    done = hearth("dev", "--port", str(_unused_port()), DATABASE_URL=f"sqlite:///{tmp_path}/h.db",
                  REDIS_URL=url.format(port=port))
    assert done.returncode == 1, (done.stdout[-800:], done.stderr[-800:])
    output = done.stdout + done.stderr
    assert says.format(port=port) in output.replace("\n", " ")
    assert "starting a private one" not in output and "started redis-server" not in output
    assert "set REDIS_URL to a Redis you have" in output.replace("\n", " ")
    assert "sekret" not in output


def test_dev_refuses_a_port_that_cannot_be(tmp_path):
    done = hearth("dev", "--port", "99999", DATABASE_URL=f"sqlite:///{tmp_path}/h.db")
    assert done.returncode == 2 and "99999 is not in the range 1<=x<=65535" in done.stderr


def test_a_command_on_a_database_migrated_part_of_the_way_says_to_upgrade(tmp_path):
    url = f"sqlite:///{tmp_path}/h.db"
    assert hearth("db", "upgrade", "0004", DATABASE_URL=url).returncode == 0
    done = hearth("community", "create", "Oak House", DATABASE_URL=url)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "the database is at 0004, and this code needs" in done.stderr and "hearth db upgrade" in done.stderr


@pytest.mark.parametrize("url, stop", [("sqlite:///{tmp}/h.db", "sigterm"), ("sqlite:///h.db", "sigterm"),
                                       ("sqlite:///{tmp}/h.db", "sigint to a background job's group")])
def test_dev_runs_from_any_folder_and_a_sigterm_stops_all_of_it(tmp_path, config, url, stop):
    """Started from outside the checkout (the Procfile's lines run from it all the same, on the
    database the command migrated, even named relative to where it ran), then stopped as a service
    manager stops it, or as a script stops the background job it started (SIGINT to its process
    group, which a background job's Python otherwise ignores): web, worker and clock go with it,
    it exits 0, and the port is free."""
    import signal
    import socket

    import requests

    from tests.e2e.stack import free_port, wait_until

    port = free_port()
    dev = subprocess.Popen([sys.executable, "-c", "from service.cli import main; main()", "dev", "--port", str(port)],
                           cwd=tmp_path, env={**os.environ, "DATABASE_URL": url.format(tmp=tmp_path),
                                              "REDIS_URL": config.redis_url},
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
                           preexec_fn=(lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if stop != "sigterm"
                           else None)

    def healthy() -> bool:
        assert dev.poll() is None, dev.communicate()[0][-2000:]
        try:
            return requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
        except requests.RequestException:
            return False
    try:
        wait_until(healthy, timeout=60, what="hearth dev's /healthz")
        if stop == "sigterm":
            dev.send_signal(signal.SIGTERM)
        else:
            os.killpg(dev.pid, signal.SIGINT)
        output = dev.communicate(timeout=30)[0]
    finally:
        if dev.poll() is None:  # the test failed: nothing it started is left behind
            os.killpg(dev.pid, signal.SIGKILL)
            dev.wait()
        (ROOT / "h.db").unlink(missing_ok=True)  # where a relative path would have put a second database
    assert dev.returncode == 0, output[-2000:]
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    assert (tmp_path / "h.db").exists()


def test_dev_on_a_database_a_newer_hearth_migrated_says_so_and_stops(tmp_path):
    """`hearth db upgrade` leaves such a database as it is; `hearth dev`, which migrates first, says
    the same in one line and runs nothing on a schema this code does not know."""
    import sqlite3

    url = f"sqlite:///{tmp_path}/h.db"
    assert hearth("db", "upgrade", DATABASE_URL=url).returncode == 0
    with sqlite3.connect(tmp_path / "h.db") as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999'")
    done = hearth("dev", "--port", str(_unused_port()), DATABASE_URL=url)
    assert done.returncode == 1 and "Traceback" not in done.stderr + done.stdout, done.stderr[-2000:]
    assert "Error: the database is at 9999, newer than this code's newest migration" in done.stderr
    assert "Hearth is starting" not in done.stdout


@pytest.mark.parametrize("args", [["community", "create", "Foo"], ["members", "list", "--community", "Foo"],
                                  ["flows", "start", "vote", "--community", "Foo"]])
def test_a_command_on_a_sqlite_file_that_is_not_there_names_it_and_makes_nothing(tmp_path, args):
    """A mistyped DATABASE_URL is named; only `hearth db upgrade` (and `hearth dev`) make a database."""
    url = f"sqlite:///{tmp_path}/instnace/hearht.db"
    done = hearth(*args, DATABASE_URL=url)
    assert done.returncode == 1 and "Traceback" not in done.stderr + done.stdout, done.stderr[-2000:]
    assert (f"Error: there is no database at {tmp_path}/instnace/hearht.db: is DATABASE_URL ({url}) the one you"
            " meant? `hearth db upgrade` makes one there") in done.stderr.replace("\n", " ")
    assert list(tmp_path.iterdir()) == []

    assert hearth("db", "upgrade", DATABASE_URL=url).returncode == 0
    assert (tmp_path / "instnace" / "hearht.db").exists()
