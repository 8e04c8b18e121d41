"""Running a member's flows: start, resume, and turning the engine's events into rows."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

import flows
from flows.clock import to_datetime
from flows import Expire, FlowEnded, RaiseAlert, SaveResult, Send, SetField, StartFlow, Timeout, WaitUntil

from . import audit
from .clock import now
from .directory import language_code
from .exceptions import HearthError
from .flow_library import FlowLibrary
from .models import Alert, Community, Conversation, Member, Result, Timer
from .models.community import contact_line
from .alerts import notify_facilitators
from .outbox import queue_message

log = logging.getLogger("hearth.conversations")
# start_flow may hand over to another flow, but not forever. Loading refuses a chain that can
# come back to a flow without waiting for the member; a longer chain than this one is cut, and logged.
MAX_CHAIN = 3


@dataclass
class Turn:
    """What one call into the engine produced for the host."""

    sent: list[str] = field(default_factory=list)
    saved: list[tuple[str, object]] = field(default_factory=list)
    alerts: list[str] = field(default_factory=list)
    # The time the turn's messages belong to, when not now: a scheduled check-in's slot, a timer's
    # due time. A message more than an hour late by it is set aside when its turn to go comes.
    due_at: datetime | None = None
    # False when the flow did not take the input (a text during a wait, or one a listening vote
    # cannot read): nothing about the conversation changed, not even when it was last active.
    taken: bool = True


def active_conversation(session: Session, member: Member) -> Conversation | None:
    """The member's conversation in progress, if any (one at a time); read it with the member held."""
    return session.scalar(_ACTIVE, {"member_id": member.id})


_ACTIVE = (select(Conversation).where(Conversation.member_id == bindparam("member_id"), Conversation.active)
           .with_for_update())  # built once: every text from a member runs it


def context(member: Member, community: Community) -> flows.Context:
    """The engine's view of the member and community, now."""
    fields_ = dict(member.fields or {})
    if member.paused_until is not None:
        fields_["paused_until"] = member.paused_until.isoformat()
    return flows.Context(
        member={"id": member.id, "name": member.name, "language": member.language, "channel": member.channel,
                "status": member.status, "fields": fields_},
        community={"name": community.name, "timezone": community.timezone, "language": community.language,
                   "help_text": community.render(community.help_text), "crisis": community.crisis_line,
                   "team": bool(community.has_team),
                   "contacts": [contact_line(contact) for contact in community.contacts]},
        now=now(), new_id=lambda: uuid.uuid4().hex[:12],
    )


UNKNOWN = object()


def start_flow(session: Session, library: FlowLibrary, member: Member, community: Community, flow: flows.Flow,
               params: dict | None, origin: str, turn: Turn | None = None, depth: int = 0,
               current=UNKNOWN, hold: bool = False) -> Turn:
    """Start `flow` for the member over any conversation in progress (`current`, if known).

    That conversation waits behind the new one if it is a facilitator's flow (`waits_behind`: a
    vote open until Friday outlives a morning check-in), or if told to `hold` it (it did not take
    the text the new flow answers), and is ended as interrupted otherwise.
    """
    turn = turn or Turn()
    if current is UNKNOWN:
        current = active_conversation(session, member)
    behind = library.version(session, current.flow_digest) if current is not None else None
    if current is not None and behind is None:
        _unavailable(session, current, resume_waiting=False)
    elif current is not None and (hold or waits_behind(behind)):
        current.active, current.suspended_at = False, now()
    elif current is not None:
        _end(session, current, "interrupted", resume_waiting=False)
    library.remember(session, flow)
    outcome = flows.start(flow, context(member, community), params=params or {})
    at = now()
    # Written once, with the state the first turn left it in (no id until something needs one).
    conversation = Conversation(member_id=member.id, flow_id=flow.id, flow_digest=flow.digest, state=None,
                                active=True, origin=origin[:200], started_at=at, updated_at=at)
    session.add(conversation)
    turn = _apply(session, library, member, community, conversation, outcome, origin, turn, depth)
    if current is not None or depth > 0:
        # This flow took over from another (started over it, or handed over to) and may have run
        # to its end in this same turn without being stored (a menu, BACK): what waits resumes.
        _wake_waiting(session, member.id)
    return turn


def waits_behind(flow: flows.Flow | None) -> bool:
    """Whether a conversation of `flow` waits behind a flow started over it rather than end: a
    flow a facilitator starts for the community (a vote, a meeting RSVP), which has its own
    closing time. A member's own flows and the scheduled check-in are ended as before."""
    return flow is not None and flow.triggers.facilitator


def _wake_waiting(session: Session, member_id: int) -> None:
    """The member's conversation that last began to wait behind another is in progress again, if
    none is in progress now."""
    if session.scalar(_ACTIVE, {"member_id": member_id}) is not None:
        return
    waiting = session.scalar(_WAITING, {"member_id": member_id})
    if waiting is not None:
        waiting.active, waiting.suspended_at = True, None


def resume_flow(session: Session, library: FlowLibrary, member: Member, community: Community,
                conversation: Conversation, input_, origin: str, turn: Turn | None = None) -> Turn:
    """Give the conversation one input: a message, a timeout or its expiry."""
    turn = turn or Turn()
    flow = library.version(session, conversation.flow_digest)
    if flow is None:
        _unavailable(session, conversation)
        turn.taken = False  # a member's text is answered as if no flow were in progress
        return turn
    outcome = flows.resume(flow, conversation.state, input_, context(member, community))
    if not outcome.events and outcome.state == conversation.state:
        turn.taken = False
        return turn
    return _apply(session, library, member, community, conversation, outcome, origin, turn, 0)


def _unavailable(session: Session, conversation: Conversation, resume_waiting: bool = True) -> None:
    """End a conversation whose flow no longer loads (its stored source is refused by this code's
    checks): it can never go on, so it must not stand as the member's exchange, nor wait behind."""
    log.error("conversation %s (flow %s, version %s): its flow no longer loads; ended as flow_unavailable",
              conversation.id, conversation.flow_id, conversation.flow_digest[:12])
    _end(session, conversation, "flow_unavailable", resume_waiting=resume_waiting)


def _kind(origin: str) -> str:
    """The outbox kind of a flow's message: a scheduled check-in, a reminder (a reminder timer's
    nudge), or a flow's (an answer, a no-answer or expiry step's message such as "Voting has
    closed", a facilitator's start)."""
    if origin.startswith("schedule"):
        return "checkin"
    return "reminder" if origin.startswith("timer:reminder:") else "flow"


def _apply(session: Session, library: FlowLibrary, member: Member, community: Community,
           conversation: Conversation, outcome: flows.Outcome, origin: str, turn: Turn, depth: int) -> Turn:
    at = now()
    waiting = conversation.suspended_at is not None  # behind another flow: a timer resumed it
    conversation.state, conversation.updated_at = outcome.state, at
    handover: StartFlow | None = None
    for index, event in enumerate(outcome.events):
        if isinstance(event, Send):
            turn.sent.append(event.text)
            if not origin.startswith("reply"):
                # Started for a whole community (a schedule, a facilitator): bulk, so replies
                # to members' own texts do not wait behind them.
                queue_message(session, key=f"flow:{origin}:{index}", to=member.phone, body=event.text,
                              kind=_kind(origin), member=member, due_at=turn.due_at,
                              queue="bulk" if origin.startswith(("schedule", "facilitator")) else None)
        elif isinstance(event, SaveResult):
            _save(session, member, conversation, event, at)
            turn.saved.append((event.name, event.value))
        elif isinstance(event, SetField):
            _set_field(session, member, event)
        elif isinstance(event, RaiseAlert):
            alert = Alert(community_id=community.id, member_id=member.id,
                          conversation_id=_saved_id(session, conversation),
                          severity=event.severity, summary=event.summary, created_at=at)
            session.add(alert)
            session.flush()
            told = notify_facilitators(session, community, member, alert)
            audit.record(session, f"flow:{conversation.flow_id}", "alert.raised", community_id=community.id,
                         member_id=member.id, severity=event.severity, facilitators_told=told)
            turn.alerts.append(f"{event.severity}: {event.summary}")
        elif isinstance(event, WaitUntil) and outcome.state is not None:
            _timer(session, conversation, event)  # a flow that ended in this turn waits for nothing
        elif isinstance(event, StartFlow):
            handover = event
        elif isinstance(event, FlowEnded):
            # A conversation waiting behind this one resumes, unless a hand-over takes its place.
            _end(session, conversation, event.reason,
                 resume_waiting=not any(isinstance(e, StartFlow) for e in outcome.events))
            if _left_nothing(session, conversation, event.reason, origin, depth):
                session.expunge(conversation)
    if handover is not None and waiting:
        # Its hand-over would cut off the flow the member is in now: it is not followed.
        log.warning("flow %s: start_flow to %s not followed: it waits behind another flow", conversation.flow_id,
                    handover.flow_id)
    elif handover is not None and not _hand_over(session, library, member, community, conversation.flow_id,
                                                handover, origin, turn, depth):
        _wake_waiting(session, member.id)  # the hand-over it ended for did not happen
    elif conversation.active and not waiting and outcome.state is not None:
        _give_way(session, library, conversation)
    return turn


def _give_way(session: Session, library: FlowLibrary, conversation: Conversation) -> None:
    """A member's own flow that has stopped asking and only listens (a check-in waiting for a late
    answer) does not keep a flow waiting behind it (a vote): it ends, and the other is back, so
    a "2" goes to the question the member was asked, not to one that gave up asking."""
    flow = library.version(session, conversation.flow_digest)
    if waits_behind(flow) or not flows.only_listens(flow, conversation.state):
        return
    behind = session.scalar(_WAITING, {"member_id": conversation.member_id})
    # Only for a question the member was asked and has yet to answer: a vote already cast only
    # listens too, and a late "2" is then the check-in's.
    if behind is not None and flows.awaits_answer(library.version(session, behind.flow_digest), behind.state):
        _end(session, conversation, "no_answer")


def _hand_over(session: Session, library: FlowLibrary, member: Member, community: Community, flow_id: str,
               handover: StartFlow, origin: str, turn: Turn, depth: int) -> bool:
    """Start the flow a start_flow names, unless it is one hand-over too many in this turn or not
    loaded (a conversation on an older version may name a flow since removed): either is logged.
    Whether it was started."""
    target = library.get(handover.flow_id)
    if depth >= MAX_CHAIN:
        log.error("flow %s: start_flow to %s not followed: %d hand-overs in one turn is the most", flow_id,
                  handover.flow_id, MAX_CHAIN)
    elif target is None:
        log.error("flow %s: start_flow to %s not followed: no such flow is loaded", flow_id, handover.flow_id)
    else:
        session.flush()
        start_flow(session, library, member, community, target, handover.params, f"{origin}:{depth + 1}",
                   turn, depth + 1)
        return True
    return False


def _left_nothing(session: Session, conversation: Conversation, reason: str, origin: str, depth: int) -> bool:
    """Whether this conversation need not be stored: a member's text started it, it ran to its end
    in that same turn, and nothing refers to it (no results, alerts or timers; no hand-over).

    The inbound row's `handled_as` names the flow, and its replies went back in the TwiML. Every
    other conversation is stored: started by a schedule, a facilitator or a timer, ended by an
    error or a hand-over, or still running.
    """
    return reason == "completed" and depth == 0 and origin.startswith("reply:") and conversation in session.new


def _saved_id(session: Session, conversation: Conversation) -> int:
    """The conversation's id, writing it first if this turn started it."""
    if conversation.id is None:
        session.flush()
    return conversation.id


def _save(session: Session, member: Member, conversation: Conversation, event: SaveResult, at: datetime) -> None:
    value = None if event.value is None else str(event.value)
    row = session.scalar(select(Result).where(Result.conversation_id == _saved_id(session, conversation),
                                              Result.name == event.name))
    if row is None:
        session.add(Result(conversation_id=conversation.id, member_id=member.id, flow_id=conversation.flow_id,
                           name=event.name, value=value, category=event.category, saved_at=at))
    else:
        row.value, row.category, row.saved_at = value, event.category, at


def _set_field(session: Session, member: Member, event: SetField) -> None:
    if event.field == "paused_until":
        until = to_datetime(event.value, member.community.timezone)  # no offset: the community's time
        if event.value and until is None:
            # Not the value: a flow may set it from the member's own words.
            log.warning("a flow set paused_until of member %s to text which is not a time; ignored", member.id)
            return
        member.paused_until = until
        if member.status in ("active", "paused"):
            member.status = "paused" if until else "active"
        audit.record(session, f"member:{member.id}", "member.paused" if until else "member.resumed",
                     community_id=member.community_id, member_id=member.id,
                     until=until.isoformat() if until else None)
    else:
        if event.field == "language":
            try:
                member.language = language_code(str(event.value)) if event.value else None
            except HearthError:
                # A flow that sets it from a member's answer ("Welsh please") must not fail their text.
                log.warning("a flow set the language of member %s to text which is not a language code; ignored",
                            member.id)
                return
        else:
            member.fields = {**(member.fields or {}), event.field: event.value}
        audit.record(session, f"member:{member.id}", "member.field_set", community_id=member.community_id,
                     member_id=member.id, field=event.field, value=event.value)


def _timer(session: Session, conversation: Conversation, event: WaitUntil) -> None:
    exists = session.scalar(select(Timer.id).where(Timer.conversation_id == _saved_id(session, conversation),
                                                   Timer.token == event.token))
    if exists is None:
        session.add(Timer(conversation_id=conversation.id, token=event.token, kind=event.kind, due_at=event.at))


def end_active(session: Session, member: Member, reason: str) -> None:
    """End the member's conversation in progress and those waiting behind it, and cancel their timers."""
    for conversation in session.scalars(_OPEN, {"member_id": member.id}):
        _end(session, conversation, reason, resume_waiting=False)


_OPEN = (select(Conversation).where(Conversation.member_id == bindparam("member_id"),
                                    Conversation.active | Conversation.suspended_at.is_not(None))
         .order_by(Conversation.id).with_for_update())


def _end(session: Session, conversation: Conversation, reason: str, resume_waiting: bool = True) -> None:
    """End a conversation and cancel its timers; when it was the one in progress, the conversation
    that last began to wait behind it (if any, and `resume_waiting`) is in progress again."""
    was_active = conversation.active
    conversation.active, conversation.ended_reason, conversation.updated_at = False, reason, now()
    conversation.state, conversation.suspended_at = None, None
    if conversation.id is None:
        return  # started and ended in this turn: never written as active, no timers
    session.execute(update(Timer).where(Timer.conversation_id == conversation.id, Timer.fired_at.is_(None))
                    .values(fired_at=now()))
    session.flush()
    if was_active and resume_waiting:
        _wake_waiting(session, conversation.member_id)


_WAITING = (select(Conversation).where(Conversation.member_id == bindparam("member_id"),
                                       Conversation.suspended_at.is_not(None))
            .order_by(Conversation.suspended_at.desc(), Conversation.id.desc()).limit(1).with_for_update())


def timeout_input(timer: Timer):
    """The engine input a due timer stands for."""
    return Expire() if timer.kind == "expiry" else Timeout(timer.token)

