"""`hearth dev`: the whole service on its embedded defaults (web, worker, clock) with a demo community."""

from __future__ import annotations

import os
import shutil
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

from service.database import db
from service.demo import DEMO_MEMBERS, seed_demo
from service.migrations import upgrade

ROOT = Path(__file__).resolve().parents[2]


@click.command("dev")
@click.option("--port", default=5000, show_default=True)
@with_appcontext
def dev_command(port: int) -> None:
    """Migrate, seed the demo community, make sure Redis answers, then run the Procfile."""
    config = current_app.config["HEARTH"]
    upgrade(config.database_url)
    if seed_demo(db.session):
        click.echo("Seeded 'Demo Community' with members " + ", ".join(f"{n} {p}" for n, p in DEMO_MEMBERS) + ".")
    private_redis = _ensure_redis(config.redis_url)
    env = {**os.environ, "PORT": str(port), "REDIS_URL": config.redis_url, "DATABASE_URL": config.database_url,
           "HEARTH_TRANSPORT": config.transport, "PYTHONUNBUFFERED": "1",
           "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")}
    click.secho(f"Hearth is starting on http://127.0.0.1:{port} ({config.transport} transport).", bold=True)
    click.echo(f"In another terminal: hearth simulate --phone '{DEMO_MEMBERS[0][1]}'")
    try:
        subprocess.run([sys.executable, "-m", "honcho", "-f", str(ROOT / "Procfile"), "-d", str(ROOT), "start"],
                       env=env, check=False)
    except KeyboardInterrupt:
        pass
    finally:
        if private_redis is not None:
            private_redis.terminate()
            private_redis.wait(timeout=10)


def _ensure_redis(url: str) -> subprocess.Popen | None:
    """None when Redis answers at `url`; else start a private redis-server there, or say what to install."""
    try:
        Redis.from_url(url, socket_connect_timeout=1).ping()
        return None
    except RedisError:
        pass
    server = shutil.which("redis-server")
    if server is None:
        raise click.ClickException(
            f"no Redis answers at {url} and redis-server is not installed. "
            "Install it (Debian/Ubuntu: sudo apt-get install redis-server; macOS: brew install redis) "
            "or set REDIS_URL to a Redis you have."
        )
    parsed = urlparse(url)
    port = str(parsed.port or 6379)
    click.echo(f"No Redis at {url}: starting a private one on port {port} for this run (it keeps nothing on disk).")
    process = subprocess.Popen(
        [server, "--port", port, "--bind", parsed.hostname or "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", tempfile.gettempdir()],
        stdout=subprocess.DEVNULL,
    )
    for _ in range(100):
        try:
            Redis.from_url(url, socket_connect_timeout=1).ping()
            return process
        except RedisError:
            time.sleep(0.05)
    process.terminate()
    raise click.ClickException(f"started redis-server but it does not answer at {url}")


def register(app: Flask) -> None:
    """Add `hearth dev`."""
    app.cli.add_command(dev_command)
