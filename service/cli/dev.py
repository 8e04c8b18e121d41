"""`hearth dev`: the whole service on its embedded defaults (web, worker, clock) with a demo community."""

from __future__ import annotations

import os
import signal
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlparse

import click
from flask import Flask, current_app
from flask.cli import with_appcontext
from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy import make_url

from service.config import is_loopback, shown_url
from service.database import db
from service.demo import DEMO_FACILITATOR, DEMO_MEMBERS, seed_demo
from service.migrations import revisions, upgrade

from .db_commands import newer_than_this_code
from .errors import clear_errors

ROOT = Path(__file__).resolve().parents[2]


@click.command("dev")
@click.option("--port", type=click.IntRange(1, 65535), default=lambda: os.environ.get("PORT") or 5000,
              show_default="$PORT, else 5000")
@with_appcontext
def dev_command(port: int) -> None:
    """Migrate, seed the demo community, make sure Redis answers, then run the Procfile."""
    config = current_app.config["HEARTH"]
    _port_free(port)
    with clear_errors(schema=False):  # it upgrades the schema itself
        _upgrade(config.database_url)
        if seed_demo(db.session):
            click.echo("Seeded 'Demo Community' with members " + ", ".join(f"{n} {p}" for n, p in DEMO_MEMBERS)
                       + f", and facilitator {DEMO_FACILITATOR[0]} {DEMO_FACILITATOR[1]}.")
    # This process only waits for honcho from here on: it must hold no connection, least of all
    # an open SQLite transaction, which would keep every other process from writing.
    db.session.remove()
    current_app.extensions["hearth_db"].engine.dispose()
    private_redis = _ensure_redis(config.redis_url)
    # Local use prints what would be sent: Twilio credentials in the shell must not make the demo
    # send real texts (its numbers are Ofcom's drama range) at the account's cost.
    env = {**os.environ, "PORT": str(port), "REDIS_URL": config.redis_url,
           "DATABASE_URL": _from_anywhere(config.database_url),
           "HEARTH_TRANSPORT": "console", "PYTHONUNBUFFERED": "1",
           "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")}
    click.secho(f"Hearth is starting on http://127.0.0.1:{port} (console transport: messages are printed,"
                " not sent).", bold=True)
    hearth = os.path.relpath(Path(sys.executable).parent / "hearth")
    click.echo(f"In another terminal: {hearth} simulate --phone '{DEMO_MEMBERS[0][1]}'")
    with tempfile.TemporaryDirectory() as tmp:
        procfile = Path(tmp) / "Procfile"
        procfile.write_text(local_procfile((ROOT / "Procfile").read_text()))
        # Run from the checkout, as the Procfile's lines expect (gunicorn.conf.py, the packages).
        honcho = subprocess.Popen([sys.executable, "-m", "honcho", "-f", str(procfile), "-d", str(ROOT), "start"],
                                  env=env, cwd=ROOT)
        try:
            failed = _wait_through_ctrl_c(honcho)
        finally:
            if private_redis is not None:
                private_redis.terminate()
                private_redis.wait(timeout=10)
    if failed:
        raise click.ClickException(f"a process of the service stopped (honcho exited {failed}): see its output above")


def _upgrade(url: str) -> None:
    """Migrate to this code's newest revision; a database a newer Hearth migrated (which `hearth db
    upgrade` leaves as it is) is refused in one line: this code would run on a schema it does not know."""
    from alembic.util import CommandError

    try:
        upgrade(url)
    except CommandError as exc:
        newer = newer_than_this_code()
        if newer is None:
            raise click.ClickException(f"cannot upgrade the database: {exc}") from None
        raise click.ClickException(f"the database is at {newer}, newer than this code's newest migration"
                                   f" ({revisions()[-1]}): a newer Hearth migrated it. Run that Hearth on it,"
                                   " or set DATABASE_URL to another database") from None


def _from_anywhere(url: str) -> str:
    """The URL with a relative SQLite path made absolute: the Procfile's processes run from the
    checkout, and must open the database this command migrated and seeded, not one of their own."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database and not Path(parsed.database).is_absolute():
        return parsed.set(database=str(Path(parsed.database).resolve())).render_as_string(hide_password=False)
    return url


def _port_free(port: int) -> None:
    """Refuse at once when something listens on the port already (a Hearth started before, say)."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
    except OSError:
        return
    raise click.ClickException(f"something already listens on 127.0.0.1:{port} (is Hearth running already?):"
                               " stop it, or choose another port with --port or PORT")


def _wait_through_ctrl_c(process: subprocess.Popen) -> int:
    """Wait for honcho to end; its exit status, or 0 when Ctrl-C (SIGINT) or SIGTERM ended it. Ctrl-C
    reaches it too, and a SIGTERM to this process is passed on to it: it stops web, worker and
    clock (a worker may finish its job first); only then is this process done, and a private
    Redis stopped. Without either honcho ends only when one of its processes did (the web server
    could not start, say): that is a failure."""
    stopped = []

    def stop(*_) -> None:
        stopped.append(True)
        process.send_signal(signal.SIGTERM)

    def interrupted(*_) -> None:
        stopped.append(True)  # Ctrl-C reaches honcho too, from the terminal's process group

    # Set even when SIGINT came in ignored (a script's background job, which a signal to its process
    # group still stops through honcho): that stop is then this command's own, not a failure.
    previous = signal.signal(signal.SIGTERM, stop), signal.signal(signal.SIGINT, interrupted)
    try:
        while True:
            try:
                code = process.wait()
                return 0 if stopped else code or 1
            except KeyboardInterrupt:
                stopped.append(True)
    finally:
        signal.signal(signal.SIGTERM, previous[0])
        signal.signal(signal.SIGINT, previous[1])


def local_procfile(text: str) -> str:
    """The Procfile with its web server bound to loopback only.

    A deployment's web process listens on every interface; a laptop's need not: local texts come
    from `hearth simulate`, in its own process, and nothing outside should reach the demo.
    """
    return text.replace("--bind 0.0.0.0:", "--bind 127.0.0.1:")


def _ensure_redis(url: str) -> subprocess.Popen | None:
    """None when Redis answers at `url`; else start a private redis-server there, or say what to install."""
    try:
        Redis.from_url(url, socket_connect_timeout=1).ping()
        return None
    except RedisError:
        pass
    shown = shown_url(url)
    parsed = urlparse(url)
    if parsed.scheme != "redis" or not is_loopback(parsed.hostname) or parsed.username or parsed.password:
        # A private redis-server listens here, without TLS or a password: it could never answer this URL.
        raise click.ClickException(
            f"no Redis answers at {shown}: start it, or set REDIS_URL to a Redis you have (a private one is"
            " started only for a redis:// URL on this machine without a password, as the default is)")
    server = shutil.which("redis-server")
    if server is None:
        raise click.ClickException(
            f"no Redis answers at {shown} and redis-server is not installed. "
            "Install it (Debian/Ubuntu: sudo apt-get install redis-server; macOS: brew install redis) "
            "or set REDIS_URL to a Redis you have."
        )
    port = str(parsed.port or 6379)
    click.echo(f"No Redis at {shown}: starting a private one on port {port} for this run (it keeps nothing on disk).")
    process = subprocess.Popen(
        [server, "--port", port, "--bind", parsed.hostname or "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", tempfile.gettempdir()],
        stdout=subprocess.DEVNULL,
        start_new_session=True,  # Ctrl-C stops the service first; this Redis is stopped after it
    )
    for _ in range(100):
        try:
            Redis.from_url(url, socket_connect_timeout=1).ping()
            return process
        except RedisError:
            time.sleep(0.05)
    process.terminate()
    raise click.ClickException(f"started redis-server but it does not answer at {shown}")


def register(app: Flask) -> None:
    """Add `hearth dev`."""
    app.cli.add_command(dev_command)
