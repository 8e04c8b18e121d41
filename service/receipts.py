"""What the carrier took while the database could not record it, kept in Redis until it can.

Once Twilio has accepted a message, the outbox row must say so, or the row is claimed again when
its lease runs out and the member gets the message twice. The sender waits ~15 s for a database
that has gone away; a receipt covers a longer outage: it is written the moment the first attempt
to record the send fails, and a later claim of the row reads it and records the send instead of
sending again. In the normal path nothing is written to Redis.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime

from redis import Redis, RedisError

log = logging.getLogger(__name__)

KEEP_SECONDS = 7 * 86400  # far longer than a send's retries (~15 min) and its lease


class Receipts:
    """Receipts by outbox row id, in Redis (`hearth:carrier-took:<id>`)."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    @staticmethod
    def key(outbox_id: int) -> str:
        return f"hearth:carrier-took:{outbox_id}"

    def keep(self, outbox_id: int, key: str, sent: dict) -> None:
        """Remember that the carrier took the row (its idempotency `key`): sid, segments, status, when."""
        value = json.dumps({**sent, "sent_at": sent["sent_at"].isoformat(), "key": key})
        try:
            self.redis.set(self.key(outbox_id), value, ex=KEEP_SECONDS)
        except RedisError:
            log.warning("the carrier took outbox row %s and neither the database nor Redis can record it;"
                        " it may be sent again once its lease runs out", outbox_id, exc_info=True)

    def taken(self, outbox_id: int, key: str) -> dict | None:
        """The receipt kept for the row, or None. Redis being away reads as none: better twice than never.

        A receipt names the row's idempotency key as well as its id: after a database restored from
        a backup, a new row may have an old one's id, and must not be taken for sent.
        """
        try:
            value = self.redis.get(self.key(outbox_id))
        except RedisError:
            log.warning("cannot look for a receipt of outbox row %s; sending it", outbox_id, exc_info=True)
            return None
        if value is None:
            return None
        sent = json.loads(value)
        if sent.pop("key", None) != key:
            return None
        return {**sent, "sent_at": datetime.fromisoformat(sent["sent_at"])}

    def forget(self, outbox_id: int) -> None:
        try:
            self.redis.delete(self.key(outbox_id))
        except RedisError:
            pass  # it expires on its own
