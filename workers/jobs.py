"""RQ jobs: thin functions of ids that call the service layer inside an app context."""

from __future__ import annotations

from rq import get_current_job

from .runtime import worker_app


def send_message(outbox_id: int) -> str:
    """Send one outbox row (job id `send-<id>`)."""
    from service.database import db
    from service.sending import deliver

    app = worker_app()
    job = get_current_job()
    final = job is None or not job.retries_left
    with app.app_context():
        runtime = app.extensions["hearth_runtime"]
        return deliver(db.session, outbox_id, transport=runtime.transport, limiter=runtime.limiter,
                       sender=app.config["HEARTH"].sender, final_attempt=final)
