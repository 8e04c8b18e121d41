"""Receipts: what the carrier took, kept in Redis while the database cannot record it."""

from __future__ import annotations

from datetime import datetime, timezone

from redis import Redis

from service.receipts import KEEP_SECONDS, Receipts

SENT = dict(provider_sid="SM" + "a" * 32, segments=2, delivery_status="queued",
            sent_at=datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc))


def test_a_receipt_reads_back_as_it_was_kept_and_expires_on_its_own(redis):
    receipts = Receipts(redis)
    assert receipts.taken(7, "reply:SM1") is None
    receipts.keep(7, "reply:SM1", SENT)
    assert receipts.taken(7, "reply:SM1") == SENT
    assert 0 < redis.ttl(Receipts.key(7)) <= KEEP_SECONDS
    receipts.forget(7)
    assert receipts.taken(7, "reply:SM1") is None


def test_a_receipt_is_for_its_row_only_not_a_later_row_with_the_same_id(redis):
    """A database restored from a backup hands out an old id again; that new row was never sent."""
    receipts = Receipts(redis)
    receipts.keep(7, "reply:SM1", SENT)
    assert receipts.taken(7, "welcome:42") is None


def test_redis_away_loses_no_send(caplog):
    """Nothing to read counts as not sent (the row is sent again rather than never); nothing raises."""
    receipts = Receipts(Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2))
    receipts.keep(7, "reply:SM1", SENT)
    assert receipts.taken(7, "reply:SM1") is None
    receipts.forget(7)
    assert "may be sent again" in caplog.text and "sending it" in caplog.text
