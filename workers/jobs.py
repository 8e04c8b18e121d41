"""RQ jobs: thin functions of ids that call the service layer inside an app context."""

from __future__ import annotations

from rq import get_current_job

from .runtime import worker_app


def send_message(outbox_id: int) -> str:
    """Send one outbox row (job id `send-<id>`)."""
    return send_messages([outbox_id])[0]


def send_messages(outbox_ids: list[int]) -> list[str]:
    """Send outbox rows in turn (job id `send-<id>_<id>...`); a row already sent is skipped."""
    from service.database import db
    from service.sending import deliver_batch

    app = worker_app()
    job = get_current_job()
    with app.app_context():
        runtime = app.extensions["hearth_runtime"]
        return deliver_batch(db.session, outbox_ids, transport=runtime.transport, limiter=runtime.limiter,
                             receipts=runtime.receipts, sender=app.config["HEARTH"].sender,
                             final_attempt=job is None or not job.retries_left)
