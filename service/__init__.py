"""Hearth's Flask service: the app factory."""

from __future__ import annotations

import logging
import sys
from typing import Any

from flask import Flask
from redis import Redis

from .config import Config
from .database import db
from .dispatch import enqueue_after_commit
from .runtime import Runtime


def create_app(config: Config | None = None, overrides: dict[str, Any] | None = None) -> Flask:
    """Build the app from `config` (default: the environment); nothing is built at import time."""
    config = config or Config.from_env()
    if config.transport == "twilio" and not config.public_base_url:
        logging.getLogger("hearth").warning(
            "PUBLIC_BASE_URL is not set: no delivery callbacks are asked for (a STOP the carrier reports"
            " is not heard), and webhook signatures are checked against the URL each request arrives at,"
            " which behind a proxy that ends TLS is not the one Twilio signed: every text would be refused")
    if config.send_lease < 30:
        logging.getLogger("hearth").warning(
            "HEARTH_SEND_LEASE is %g s: a send in progress can take 30 s (the carrier's answer, then its"
            " record), and one whose claim lapses first may be sent twice", config.send_lease)
    app = Flask(__name__, instance_relative_config=False)
    # Twilio's forms are a few kilobytes (a 1600-character text; a 10,000-character one, percent-
    # encoded, is at most 120 KB): anything larger is refused (413) before it is read.
    app.config.update(SECRET_KEY=config.secret_key, HEARTH=config, MAX_CONTENT_LENGTH=256 * 1024)
    app.config.update(overrides or {})
    bound = db.init_app(app)
    app.extensions["hearth_redis"] = Redis.from_url(config.redis_url, socket_timeout=5, socket_connect_timeout=2)
    app.extensions["hearth_runtime"] = Runtime(config, app.extensions["hearth_redis"])
    enqueue_after_commit(bound.session.session_factory, app.extensions["hearth_redis"])

    from . import health, webhooks
    from .consent import end_pauses
    from .converse import converse
    from .flow_library import FlowLibrary
    from .schedules import run_schedules
    from .timers import fire_due_timers

    app.extensions["hearth_flows"] = FlowLibrary(config.flows_dir)
    app.extensions["hearth_converse"] = converse
    app.extensions["hearth_clock_tasks"] = [end_pauses, fire_due_timers, run_schedules]
    from .cli import register_cli

    app.register_blueprint(health.bp)
    app.register_blueprint(webhooks.bp)
    register_cli(app)
    return app


def app_for(process: str) -> Flask:
    """The app a process of the Procfile runs (web, worker, clock), from the environment.

    A setting that cannot be used (every one the factory refuses raises ValueError naming it)
    ends the process with that one line and status 1, not a traceback an operator must read.
    """
    try:
        return create_app()
    except ValueError as exc:
        sys.stderr.write(f"hearth {process}: cannot start: {exc}\n")
        raise SystemExit(1) from None
