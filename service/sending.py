"""Sending one outbox row: claim it, respect the rate limit, hand it to the transport, record the answer."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Callable

from flask import current_app
from redis.exceptions import RedisError
from rq.timeouts import JobTimeoutException
from sqlalchemy import ColumnElement, bindparam, case, exists, func, literal_column, or_, select, update
from sqlalchemy.orm import Session

from workers.queues import SEND_RETRY_INTERVALS

from .clock import missed, now
from .database import rerun_if_disconnected
from .consent import carrier_refused
from .exceptions import PermanentSendError, RateLimitedSendError, SetupSendError, TransientSendError
from .models import Community, Member, OutboundMessage, StatusEvent
from .models.messages import UNSENT
from .models.community import quiet_until
from .outbox import QUIET_KINDS, TIMELY_KINDS, URGENT_KINDS
from .ratelimit import GaveUp
from .receipts import Receipts
from .status import catch_up

log = logging.getLogger(__name__)


def lease() -> timedelta:
    """How old a claim must be to count as a dead worker's (HEARTH_SEND_LEASE, default 60 s > job timeout)."""
    return timedelta(seconds=current_app.config["HEARTH"].send_lease)


# A row's own sends before a transient failure counts as final: its job's first run and its
# retries. A try the carrier refused for Hearth's account is not one (`refusals`).
TRIES = 1 + len(SEND_RETRY_INTERVALS)

# How often a row's claim may be taken over from a worker that stopped while it held it (killed,
# its host gone: it may have sent the message) before the row is failed rather than sent again: a
# message that stops every worker that sends it must not be sent for ever. A worker waiting for
# the rate limit keeps its claim fresh, so only a stopped or stalled worker loses one.
CUT_OFF_LIMIT = 3

# How long a message waits, once its job has used its tries, when the carrier refused Hearth's
# account or sender: the sweeper then gives it a new job, and it goes once the settings are fixed.
SETUP_WAIT = timedelta(minutes=10)
# ...for at most this long from when it was written: then it is failed, as a message is never tried for ever.
SETUP_GIVE_UP = timedelta(days=2)
# Refusals of the sender that may be of one destination only: the From cannot send to that number
# (a country it is not allowed to text). Failed when other messages from the sender went through.
DESTINATION_REFUSED = {21606, 21659}

# The send path runs three statements per message: they are Core statements on the tables, which
# skip the ORM's bulk-update machinery (nothing in the session needs to know of these rows).
_OUTBOX = OutboundMessage.__table__
_EARLIER = _OUTBOX.alias("earlier")  # another row to the same number (ix_outbound_unsent_to)
# The partial index's own condition, written out rather than bound, so that both databases use the
# index whatever plan they keep for the statement.
_UNSENT_EARLIER = _EARLIER.c.state.in_([literal_column(f"'{state}'") for state in UNSENT])
_BEFORE = (_EARLIER.c.to_number == _OUTBOX.c.to_number) & (_EARLIER.c.id < _OUTBOX.c.id)
_MEMBERS = Member.__table__
_COMMUNITIES = Community.__table__
# A community with a number of its own texts from it (its members reply to it, and it has its own
# rate limit); the rest from the configured sender.
_COMMUNITY = select(_COMMUNITIES).where(_COMMUNITIES.c.id == _OUTBOX.c.community_id)
# The number a row is sent from: its community's own; None, the configured sender. Tied to the
# outer statement's row even inside the claim's look at earlier rows (`_SAME_THREAD`).
_SENT_FROM = _COMMUNITY.with_only_columns(_COMMUNITIES.c.phone_number).correlate(_OUTBOX).scalar_subquery()
_COMMUNITY_NUMBER = _SENT_FROM.label("community_number")
# The number an earlier row to the same number is sent from (None: the configured sender, which a
# community may also have as its own number, so a row from it keeps its order with every other).
_EARLIER_FROM = (select(_COMMUNITIES.c.phone_number).where(_COMMUNITIES.c.id == _EARLIER.c.community_id)
                 .scalar_subquery())
# The earlier row and this one are texts in one thread on the phone: not from two communities' own numbers.
_SAME_THREAD = or_(_EARLIER.c.community_id == _OUTBOX.c.community_id, _EARLIER_FROM.is_(None), _SENT_FROM.is_(None),
                   _EARLIER_FROM == _SENT_FROM)
# What a send must know of the community's quiet hours, read in the same statement as the claim.
_COMMUNITY_QUIET = tuple(_COMMUNITY.with_only_columns(column).scalar_subquery().label(f"community_{column.name}")
                         for column in (_COMMUNITIES.c.timezone, _COMMUNITIES.c.quiet_start, _COMMUNITIES.c.quiet_end))


def claimable(at: datetime) -> ColumnElement[bool]:
    """Rows a send may take at `at` (`_claimable`)."""
    return _claimable(at, at - lease())


def sweepable(at: datetime) -> tuple[ColumnElement[bool], ColumnElement[int | None]]:
    """Rows the sweeper may give a job at `at`: `_claimable`'s, and also those that wait only for
    an earlier row on their queue that is due (`_waiting`); and for each, the first row it waits
    for (None for none). The sweeper gives a waiting row a job only when that row has none either:
    then they go in one job, in the order written."""
    live = at - lease()
    waits_for = select(func.min(_EARLIER.c.id)).where(_BEFORE, _UNSENT_EARLIER, _waiting(at)).scalar_subquery()
    return _open(at, live) & ~exists().where(_BEFORE, _UNSENT_EARLIER, _in_flight(live)), waits_for


def _claimable(at, live) -> ColumnElement[bool]:
    """Rows due at `at` and pending, or claimed by a worker before `live` (so long ago it must be
    dead); and not behind an earlier row to the same number that must go first:

    - one a live claim is sending (two jobs for one row, after a flushed Redis or a sweep as it was
      enqueued: "Next question?" before "Voting has closed"). An urgent row (an alert to a
      facilitator who is also a member) waits only behind another urgent one, not for a check-in;
    - one on the same queue that is due and not yet sent: queued in an earlier job (a member's two
      texts answered by two workers at once), put back for a retry after the carrier failed it (a
      second reply must not arrive while the first waits out its back-off), or a stopped worker's.
      A reply does not wait for a check-in that is not being sent, nor an urgent row for any.
    """
    must_go_first = exists().where(_BEFORE, _UNSENT_EARLIER, or_(_in_flight(live), _waiting(at)))
    return _open(at, live) & ~must_go_first


def _open(at, live) -> ColumnElement[bool]:
    """Due at `at`, and pending or claimed by a worker before `live`."""
    return (_OUTBOX.c.due_at <= at) & or_(
        _OUTBOX.c.state == "pending",
        (_OUTBOX.c.state == "sending") & (_OUTBOX.c.claimed_at < live),
    )


def _in_flight(live) -> ColumnElement[bool]:
    """The earlier row is being sent by a live claim (an urgent row waits only for an urgent one)."""
    return ((_EARLIER.c.state == "sending") & (_EARLIER.c.claimed_at >= live)
            & or_(_OUTBOX.c.kind.not_in(URGENT_KINDS), _EARLIER.c.kind.in_(URGENT_KINDS)))


def _waiting(at) -> ColumnElement[bool]:
    """The earlier (unsent) row is on the same queue, from the same number, and due; urgent rows
    do not wait for one (an alert goes while an earlier alert to the same facilitator waits out a
    back-off). Texts from two communities' own numbers are two threads on the phone: one does not
    wait for the other's retry (`_EARLIER_FROM`)."""
    return ((_EARLIER.c.queue == _OUTBOX.c.queue) & (_EARLIER.c.due_at <= at) & _OUTBOX.c.kind.not_in(URGENT_KINDS)
            & _SAME_THREAD)


def deliver(session: Session, outbox_id: int, *, transport, limiter, sender: str, final_attempt: bool,
            receipts: Receipts | None = None) -> str:
    """Send one row at most once per claim; returns the row's state afterwards.

    It goes from its community's own number when it has one (and is rate-limited as that sender),
    else from the configured `sender`.

    No transaction is held while waiting for the rate limit or the carrier. A claim is the row's
    attempt number while it is `sending`: every write after the claim names it, so a worker whose
    claim lapsed (it stalled past the lease, and another worker took the row) writes nothing and
    sends nothing; a wait for the rate limit keeps the claim fresh. A row whose worker stopped
    `CUT_OFF_LIMIT` times while it held the claim is failed, not sent again. Raises
    TransientSendError when the carrier may accept it later and the row has tries left
    (`TRIES`), however `final_attempt` its job is. With
    `receipts`, a send the database could not record is remembered in Redis, and a later claim
    records it instead of sending it again.
    """
    claim = _claim(session, outbox_id)
    if claim is None:
        return "skipped"
    attempt = claim.attempts
    from_number = claim.community_number
    sender_key = from_number or sender  # what the rate limit is kept for
    if receipts is not None and attempt > 1:
        sent = receipts.taken(outbox_id, claim.idempotency_key)
        if sent is not None:
            return _record_sent(session, outbox_id, attempt, claim.idempotency_key, sent, receipts, receipted=True)
    if claim.cut_off >= CUT_OFF_LIMIT:
        log.error("outbox row %s: the worker sending it stopped %s times; it is failed, not sent again",
                  outbox_id, claim.cut_off)
        return _settle(session, outbox_id, attempt, "failed", error_code=None, error_message=CUT_OFF)
    not_now = _not_now(claim)
    if not_now is not None:
        state, values = not_now
        settled = _settle(session, outbox_id, attempt, state, **values)
        return "held" if settled == "pending" else settled
    seen = claim  # the member as the claim found them
    # Whether a transient failure (or a timeout) now is final, on the job's last run: the row has
    # used its own tries, not counting the carrier's refusals of Hearth's account.
    last_try = final_attempt and attempt - claim.refusals >= TRIES
    try:
        if not _blocked(seen, claim.kind) and limiter.acquire(sender_key, cost=claim.segments,
                                                              alive=_keeping(session, outbox_id, attempt),
                                                              urgent=claim.kind in URGENT_KINDS):
            # After a wait the claim is taken afresh, which starts its lease again for the send, and
            # the member is looked at again: a STOP that arrived meanwhile wins.
            seen = _renew(session, outbox_id, attempt)
            if seen is None:
                log.warning("outbox row %s: its claim lapsed while it waited for the rate limit; left to the"
                            " worker that has it now", outbox_id)
                return "skipped"
        blocked = _blocked(seen, claim.kind)
        if blocked:
            return _settle(session, outbox_id, attempt, "cancelled", error_message=blocked)
        submitted = now()  # a 21610 in the answer reports a STOP from before this, not a START since
        result = _send(transport, claim, from_number, outbox_id)
    except GaveUp:
        log.warning("outbox row %s: its claim was taken over while it waited for the rate limit", outbox_id)
        return "skipped"
    except JobTimeoutException:
        # RQ stops the job (its time is up) while it waits for the rate limit or the carrier: the
        # row is not left `sending` until its lease runs out, but put back now, as after a
        # transient error. The carrier may have taken it: sent again, like a killed worker's
        # message in flight.
        _timed_out(session, outbox_id, attempt, last_try)
        raise
    except TransientSendError as exc:
        setup = isinstance(exc, SetupSendError)
        given_up = _refused_for_good(session, claim, from_number, exc) if setup else None
        if given_up is not None:
            log.error("outbox row %s failed: %s", outbox_id, given_up)
            return _settle(session, outbox_id, attempt, "failed", error_code=exc.code, error_message=given_up)
        # Failed for good only when its own tries are used up: a row held back behind another to
        # the same number is first tried on a late run of the job, and the sweeper gives it a
        # job of its own with its tries still to come.
        failed = last_try and not setup
        if isinstance(exc, RateLimitedSendError):
            _hold(limiter, sender_key, exc.retry_after)
        if setup:
            log.error("outbox row %s waits: %s", outbox_id, exc)
        elif exc.maybe_taken:
            # At least once: sent again, like a message a killed worker had in flight, and counted here.
            log.warning("outbox row %s: %s; %s", outbox_id, exc,
                        "it is recorded as failed" if failed else "it will be sent again")
        why = dict(error_code=exc.code, error_message=str(exc))
        if setup:
            why["refusals"] = _OUTBOX.c.refusals + 1
        if failed:
            return _settle(session, outbox_id, attempt, "failed", **why)
        if final_attempt and setup:
            # Not the message's fault: it is not failed, but waits for the sweeper to try it again.
            return _settle(session, outbox_id, attempt, "pending", claimed_at=None, due_at=_after_setup_wait(claim),
                           **why)
        _settle(session, outbox_id, attempt, "pending", claimed_at=None, **why)
        raise
    except PermanentSendError as exc:
        code = exc.code
        return _settle(session, outbox_id, attempt, "failed", error_code=code, error_message=str(exc),
                       also=lambda: carrier_refused(session, claim.member_id, code, f"twilio:{code}", submitted))
    except Exception as exc:
        # Before the carrier (`_send` classifies what happens there): Redis or the database failed
        # while it waited for its turn. Put back now, for RQ's retry, rather than left `sending`
        # for a lease, after which the takeover would count it cut off.
        log.warning("outbox row %s: its send stopped before the carrier (%s); it will be tried again", outbox_id,
                    type(exc).__name__)
        _put_back(session, outbox_id, attempt, False, f"stopped before the carrier: {type(exc).__name__}")
        raise
    # `sent_at` is when it was handed to the carrier: a 21610 its callbacks report later is judged
    # against it, as the answer's is, so a START taken while the carrier answered stands.
    sent = dict(provider_sid=result.sid, segments=result.segments, sent_at=submitted, delivery_status=result.status)
    try:
        return _record_sent(session, outbox_id, attempt, claim.idempotency_key, sent, receipts)
    except JobTimeoutException:
        _record_cut_short(session, outbox_id, attempt, claim.idempotency_key, sent, receipts)
        raise


def _record_cut_short(session: Session, outbox_id: int, attempt: int, key: str, sent: dict,
                      receipts: Receipts | None) -> None:
    """Record a send the carrier took whose record RQ's timeout cut short (it may have landed in a
    wait for Redis, with the database working): in the row at once, which is the record of truth
    (a receipt alone is lost when Redis is down too, and the claim that takes the row over after
    its lease would send it again); failing that, in a receipt, which that claim records instead."""
    try:
        session.rollback()
        _record_sent(session, outbox_id, attempt, key, sent, receipts, waits=(0.0,))
    except Exception:  # noqa: BLE001 - the timeout is what RQ must see
        log.exception("outbox row %s: the carrier took it and its job's time ran out before it was recorded",
                      outbox_id)
        if receipts is not None:
            receipts.keep(outbox_id, key, sent)


def _refused_for_good(session: Session, claim, from_number: str | None, exc: SetupSendError) -> str | None:
    """Why a message the carrier refused for Hearth's account or sender is failed rather than left
    to wait for the settings to be fixed, or None: the sender's refusal of this destination (21606,
    21659: other messages from it went through since this one was written), or a refusal that has
    lasted `SETUP_GIVE_UP` (a message is never tried for ever)."""
    if exc.code in DESTINATION_REFUSED and _sender_works(session, from_number, claim.created_at):
        return f"{exc} (other messages from this sender went through: it cannot send to this number)"[:500]
    if now() - claim.created_at >= SETUP_GIVE_UP:
        return f"{exc} (refused for {SETUP_GIVE_UP.days} days: not tried again)"[:500]
    return None


def _sender_works(session: Session, from_number: str | None, since) -> bool:
    """Whether the carrier took a message from this sender (a community's number; None, the configured
    one) since `since`."""
    from_here = _SENT_FROM == from_number if from_number else _SENT_FROM.is_(None)
    return session.connection().scalar(select(exists().where(
        _OUTBOX.c.provider_sid.is_not(None), _OUTBOX.c.sent_at >= since, from_here))) or False


def _timed_out(session: Session, outbox_id: int, attempt: int, failed: bool) -> None:
    """Put back a row whose job RQ stopped, or fail it (`failed`: its job's last run, its own tries
    used, as after a transient error); if the database cannot be reached or the stop cut a
    statement short, the row is left to its lease and the sweeper."""
    log.warning("outbox row %s: its job's time ran out while it waited or was sent; %s", outbox_id,
                "it is recorded as failed" if failed else "it will be sent again")
    _put_back(session, outbox_id, attempt, failed, TIMED_OUT)


def _put_back(session: Session, outbox_id: int, attempt: int, failed: bool, why: str) -> None:
    """Put the row back (pending, unclaimed), or fail it, saying `why`; if the database cannot be
    reached or a stop cut a statement short, the row is left to its lease and the sweeper."""
    try:
        session.rollback()
        _settle(session, outbox_id, attempt, "failed" if failed else "pending", error_code=None,
                error_message=why, **({} if failed else dict(claimed_at=None)))
    except Exception:  # noqa: BLE001 - what stopped the send is what RQ must see
        log.exception("outbox row %s: could not be put back (%s)", outbox_id, why)


TIMED_OUT = "its job's time ran out while it waited for the rate limit or the carrier; it may have been sent"
CUT_OFF = (f"not sent again: the worker sending it stopped {CUT_OFF_LIMIT} times (killed, or its host gone);"
           " it may have been sent")


def _keeping(session: Session, outbox_id: int, attempt: int) -> Callable[[], bool]:
    """What a send asks while it waits for the rate limit (`SendRateLimiter.acquire`'s `alive`):
    every third of a lease it takes its claim afresh, so that the sweeper does not hand the row to
    another worker; False once the claim is not its own any more."""
    renewed = now()

    def alive() -> bool:
        nonlocal renewed
        if now() - renewed < lease() / 3:
            return True
        renewed = now()
        return _renew(session, outbox_id, attempt) is not None
    return alive


def _send(transport, claim, from_number: str | None, outbox_id: int):
    """The transport's send; an error it does not classify (a proxy's HTML page answered 200 where
    the carrier's JSON should be, a bug) counts as a transient one that may have reached the carrier: tried
    again within the job's retries, then recorded as failed, never left `sending` to be sent again
    each time its claim lapses."""
    try:
        return transport.send(claim.to_number, claim.body, _status_callback_url(), from_number)
    except (TransientSendError, PermanentSendError, JobTimeoutException):
        raise  # classified, or the job's own time is up (RQ's, not the carrier's)
    except Exception as exc:
        log.exception("outbox row %s: the send failed in a way the transport does not classify", outbox_id)
        raise TransientSendError(f"unexpected {type(exc).__name__} from the carrier: {exc}"[:500],
                                 maybe_taken=True) from exc


def _not_now(claim) -> tuple[str, dict] | None:
    """Whether a row's time has gone by the time its turn comes (it waited for workers, Redis or
    the carrier), as (state, values) for the row, or None: a welcome or broadcast in quiet hours
    waits for their end again, unless it was due in them on purpose (a welcome sent ahead of a flow
    started then, `outbox.welcome_now`); a check-in or reminder more than `clock.MISSED_AFTER` late
    is set aside, and so is a reminder in quiet hours, as the clock does with a reminder timer."""
    at = now()
    until = None
    if claim.kind in QUIET_KINDS or claim.kind == "reminder":
        until = _quiet_until(claim, at)
        if claim.kind in QUIET_KINDS and until is not None and _quiet_until(claim, claim.due_at) is not None:
            until = None
    if until is not None and claim.kind in QUIET_KINDS:
        return "pending", dict(claimed_at=None, due_at=until)
    if until is not None:
        return "cancelled", dict(error_message="set aside: its turn came in quiet hours")
    # Its time: when it was due, or written if that is sooner (a wait for a refused account moves
    # `due_at` on, never its time, so a check-in that waited all afternoon is not sent at night).
    time_ = min(claim.due_at, claim.created_at)
    if claim.kind in TIMELY_KINDS and missed(time_, at):
        return "cancelled", dict(error_message=f"set aside: its turn came {_minutes(at - time_)} after its time")
    return None


def _minutes(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min"


def _hold(limiter, sender: str, seconds: float) -> None:
    """Every worker waits as long as the carrier asked; without Redis, this one row's retry still waits."""
    try:
        limiter.hold(sender, seconds)
    except RedisError as exc:
        log.warning("could not hold sends from %s for %.1f s (%s)", sender, seconds, exc)


def _after_setup_wait(claim) -> datetime:
    """When a row put back for the settings is tried again: SETUP_WAIT from now, or, for a message
    that waits out quiet hours, their end when that falls in them (a time in them is taken as one it
    was given on purpose, `_not_now`)."""
    at = now() + SETUP_WAIT
    return (_quiet_until(claim, at) or at) if claim.kind in QUIET_KINDS else at


def _quiet_until(claim, moment: datetime) -> datetime | None:
    """When the claimed row's community's quiet hours end, if `moment` falls in them (None if not,
    none are set, or the row has no community)."""
    if not claim.community_timezone:
        return None
    return quiet_until(moment, claim.community_timezone, claim.community_quiet_start, claim.community_quiet_end)


def _record_sent(session: Session, outbox_id: int, attempt: int, key: str, sent: dict, receipts: Receipts | None,
                 receipted: bool = False, waits: tuple[float, ...] | None = None) -> str:
    """Record that the carrier took the row, then apply any status callback that came first.

    With `receipts`, a failed try to record it leaves a receipt (unless it is `receipted`
    already), which is forgotten once a try succeeds. `waits`: `_settle`'s, by default ~15 s.
    """
    kept = receipted

    def keep() -> None:
        nonlocal kept
        if receipts is not None and not kept:
            receipts.keep(outbox_id, key, sent)
            kept = True

    # An earlier try's error no longer describes the row.
    state = _settle(session, outbox_id, attempt, "sent", **sent, error_code=None, error_message=None, failed=keep,
                    waits=waits)
    if receipts is not None and kept:
        receipts.forget(outbox_id)
    # A callback that arrived between the carrier's answer and that commit is applied now.
    if session.connection().scalar(_EARLY_CALLBACK, {"sid": sent["provider_sid"]}) is not None:
        row = session.get(OutboundMessage, outbox_id, populate_existing=True, with_for_update=True)
        catch_up(session, row)
        session.commit()
    else:
        session.rollback()
    return state


_EARLY_CALLBACK = select(StatusEvent.__table__.c.id).where(StatusEvent.__table__.c.sid == bindparam("sid")).limit(1)


def deliver_batch(session: Session, outbox_ids: list[int], *, give_way: Callable[[], bool] | None = None,
                  **how) -> list[str]:
    """`deliver` each row in turn; a transient failure of one does not hold up the others, but for
    the rows after it to the same recipient, which wait with it (a turn's second message must not
    arrive before its first), unless they are from another community's own number.

    The batch then raises that failure so RQ tries it again later, when the rows sent meanwhile
    are skipped by their claim.

    Between every two rows it asks `give_way` whether more urgent messages are waiting (a crisis
    signpost, an alert to a facilitator behind a broadcast), which is also when a job reports that
    it is alive: if so, it stops, and the rows it has not tried are `DEFERRED`, for the caller to
    hand back. It does not stop once a row has failed, as the rows held back behind that row must
    not go before it.
    """
    states, transient, held_back = [], None, set()
    for index, outbox_id in enumerate(outbox_ids):
        if index and give_way is not None and give_way() and transient is None:
            return states + [DEFERRED] * (len(outbox_ids) - index)
        if outbox_id in held_back:
            states.append("retry")
            continue
        try:
            states.append(deliver(session, outbox_id, **how))
        except TransientSendError as exc:
            states.append("retry")
            transient = exc
            held_back |= _to_the_same_recipient(session, outbox_id, outbox_ids[index + 1:])
            session.rollback()  # deliver's writes are committed; this only ends the read
    if transient is not None:
        raise transient
    return states


# What deliver_batch reports for a row it left untried to give way.
DEFERRED = "deferred"


def _to_the_same_recipient(session: Session, outbox_id: int, later: list[int]) -> set[int]:
    """Which of the `later` rows go to the same number as `outbox_id`, in the same thread on the
    phone (`_SAME_THREAD`: another community's own number does not wait for this one's retry)."""
    if not later:
        return set()
    return set(session.connection().scalars(select(_OUTBOX.c.id).where(_OUTBOX.c.id.in_(later), exists().where(
        _EARLIER.c.id == outbox_id, _EARLIER.c.to_number == _OUTBOX.c.to_number, _SAME_THREAD))))


def _claim(session: Session, outbox_id: int):
    """Take the row (pending, or a dead worker's) and return what sending needs, or None."""
    at = now()
    return _take(session, _CLAIM, dict(outbox_id=outbox_id, at=at, live=at - lease()))


def _renew(session: Session, outbox_id: int, attempt: int):
    """Take the claim afresh if it is still this attempt's; the member's status and fields, or None."""
    return _take(session, _RENEW, dict(outbox_id=outbox_id, attempt=attempt, at=now()))


def _member_now(claiming):
    """`claiming` returning the member's status, fields and channel as the UPDATE finds them."""
    member = select(_MEMBERS).where(_MEMBERS.c.id == _OUTBOX.c.member_id)
    return claiming.returning(*(member.with_only_columns(_MEMBERS.c[name]).scalar_subquery().label(f"member_{name}")
                                for name in ("status", "fields", "channel")))


def _take(session: Session, claiming, values: dict):
    """Run a claiming UPDATE and commit it; what it returned, with the member's status and fields."""
    taken = session.connection().execute(claiming, values).first()
    session.commit()
    return taken


def _held(outbox_id: int, attempt: int) -> tuple[ColumnElement[bool], ...]:
    """The row, while the claim of this attempt holds it."""
    return _OUTBOX.c.id == outbox_id, _OUTBOX.c.state == "sending", _OUTBOX.c.attempts == attempt


# Every send runs these: built once (building them cost a third of a millisecond a send).
_AT = bindparam("at", type_=_OUTBOX.c.claimed_at.type)
_CLAIM = _member_now(
    update(_OUTBOX).where(_OUTBOX.c.id == bindparam("outbox_id"),
                          _claimable(_AT, bindparam("live", type_=_OUTBOX.c.claimed_at.type)))
    .values(state="sending", claimed_at=_AT, attempts=_OUTBOX.c.attempts + 1, updated_at=_AT,
            # A claim still `sending` here is a stopped worker's (`_claimable`).
            cut_off=_OUTBOX.c.cut_off + case((_OUTBOX.c.state == "sending", 1), else_=0))
).returning(_OUTBOX.c.to_number, _OUTBOX.c.body, _OUTBOX.c.member_id, _OUTBOX.c.segments, _OUTBOX.c.attempts,
            _OUTBOX.c.refusals, _OUTBOX.c.cut_off, _OUTBOX.c.idempotency_key, _OUTBOX.c.kind, _OUTBOX.c.due_at,
            _OUTBOX.c.created_at, _COMMUNITY_NUMBER, *_COMMUNITY_QUIET)
_RENEW = _member_now(update(_OUTBOX).where(*_held(bindparam("outbox_id"), bindparam("attempt")))
                     .values(claimed_at=_AT, updated_at=_AT))


def _blocked(seen, kind: str) -> str | None:
    """Why the member a claim read (`member_status`, `member_fields`) may not be sent a message of
    this kind now, or None. A pause stops scheduled check-ins, one queued before it too."""
    status, fields_ = seen.member_status, seen.member_fields
    if status in ("opted_out", "left") or (status == "paused" and kind == "checkin"):
        return f"member is {status}"
    if fields_ and fields_.get("phone_error"):
        return f"number refused by the carrier ({fields_['phone_error']})"
    if seen.member_channel == "voice":
        return VOICE_NOT_BUILT
    return None


# A member on the voice channel asked to be called, often on a landline that cannot take texts
# (the carrier would refuse it and mark the number bad); calls are not built yet.
VOICE_NOT_BUILT = "the member takes calls, which Hearth does not place yet"


# How long the record of a message the carrier took waits for a database that is coming back.
SENT_WAITS = (0.0, 1.0, 2.0, 4.0, 8.0)


def _settle(session: Session, outbox_id: int, attempt: int, state: str, *, also=None, failed=None,
            waits: tuple[float, ...] | None = None, **values) -> str:
    """Record how this attempt's send ended (and `also` what follows from it) in one transaction.

    Written only while the attempt's claim holds the row; a claim that lapsed writes nothing
    ("skipped"), except that a message the carrier took is always recorded, and logged, since
    the worker that took the row over may have sent it too. Run again on a fresh connection if
    the one it used has died; a message the carrier took is tried for ~15 s, so that it is not
    left looking unsent (and sent again after the lease), and `failed` is called each time a try
    fails.
    """
    def write() -> str:
        if also is not None:
            also()
        connection = session.connection()
        settled = update(_OUTBOX).values(state=state, updated_at=now(), **values)
        if connection.execute(settled.where(*_held(outbox_id, attempt))).rowcount:
            session.commit()
            return state
        if state != "sent":
            session.commit()  # what `also` learnt of the member still holds
            return "skipped"
        # The claim lapsed (or this is a rerun whose first commit went through unacknowledged).
        # Recorded unless the row is recorded as sent already: that record, and the delivery
        # status its callbacks have moved on since, stand.
        if not connection.execute(settled.where(_OUTBOX.c.id == outbox_id, _OUTBOX.c.state != "sent")).rowcount:
            recorded = connection.scalar(select(_OUTBOX.c.provider_sid).where(_OUTBOX.c.id == outbox_id))
            if recorded != values.get("provider_sid"):
                log.warning("outbox row %s was sent twice: as %s, recorded, and as %s after its claim lapsed",
                            outbox_id, recorded, values.get("provider_sid"))
        else:
            log.warning("outbox row %s: the carrier took it after its claim had lapsed; it may have been sent"
                        " twice", outbox_id)
        session.commit()
        return state
    if waits is None:
        waits = SENT_WAITS if state == "sent" else (0.0,)
    return rerun_if_disconnected(session, write, waits=waits, failed=failed)


def _status_callback_url() -> str | None:
    base = current_app.config["HEARTH"].public_base_url
    return f"{base}/twilio/status" if base else None
