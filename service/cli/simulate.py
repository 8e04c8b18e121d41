"""`hearth simulate`: chat with Hearth from a terminal, through the signed webhook and the outbox."""

from __future__ import annotations

import io
import uuid
from xml.etree import ElementTree
from zoneinfo import ZoneInfo

import click
from flask import Flask, current_app
from flask.cli import with_appcontext
from redis import RedisError
from sqlalchemy import func, select
from twilio.request_validator import RequestValidator

from service.config import shown_url
from service.database import db
from service.directory import community_named, only_community, unreachable
from service.exceptions import InvalidPhone, TransientSendError
from service.models import Alert, Community, Conversation, Facilitator, Member, OutboundMessage, Result
from service.phones import national, to_e164
from service.sending import deliver
from service.transports.console import ConsoleTransport
from service.signature import signing_token

from .errors import clear_errors


@click.command("simulate")
@click.option("--phone", required=True, help="The member's phone, in any common format.")
@click.option("--community", "community_name", default=None, help="Needed when several communities exist.")
@click.option("--live", is_flag=True,
              help="Run even though messages go through Twilio: what you type is recorded as the member's texts,"
                   " and Hearth's answers and alerts are sent for real.")
@with_appcontext
def simulate_command(phone: str, community_name: str | None, live: bool) -> None:
    """Text Hearth as the member with this phone; each line you type is one SMS (Ctrl-D ends)."""
    if current_app.config["HEARTH"].transport != "console" and not live:
        raise click.ClickException(
            "messages here go through Twilio: what you type would be recorded as the member's own texts (their"
            " answers, a STOP) and Hearth's answers and alerts sent to real phones. Simulate on the console"
            " transport (HEARTH_TRANSPORT=console, as bin/dev runs), or add --live if that is what you mean")
    with clear_errors():
        community = community_named(db.session, community_name) if community_name else only_community(db.session)
        if community is None and db.session.scalar(select(func.count(Community.id))):
            community = _the_members_community(phone)
        if community is None:
            raise click.ClickException("there is no community yet: create one with `hearth community create`")
        try:
            number = to_e164(phone, community.region, entered=False)
        except InvalidPhone as exc:
            raise click.ClickException(str(exc)) from None
        if unreachable(db.session, community):
            raise click.ClickException(
                f"{community.name} has no number of its own, and with several communities a text reaches one"
                f" only through its number: give it one with `hearth community set \"{community.name}\""
                " --phone-number ...`")
    _need_redis_for_the_rate_limit()
    to_number = community.phone_number or _shared_number(community)
    zone = community.timezone
    member = db.session.scalar(select(Member).where(Member.community_id == community.id, Member.phone == number))
    click.secho(f"Texting {community.name} as {member.name if member else 'an unknown number'} ({number}).", bold=True)
    if member is None:
        some = db.session.scalars(select(Member.phone).where(Member.community_id == community.id)
                                  .order_by(Member.id).limit(3)).all()
        click.echo("  (not a member: try " + ", ".join(national(p, community.region) for p in some) + ")" if some else
                   "  (not a member, and nobody is yet: add someone with `hearth member add`)")
    click.echo("  Type a message and press Enter. Ctrl-D to finish.")
    db.session.rollback()
    client = current_app.test_client()
    waiting: set[int] = set()
    for sent in _drain(number):
        click.secho(f"hearth> {sent}", fg="cyan")
    _show_waiting(number, zone, waiting)
    while True:
        try:
            text = click.prompt("you", prompt_suffix="> ", default="", show_default=False)
        except (click.Abort, EOFError):
            click.echo()
            break
        # A line that is not UTF-8 (a pasted Latin-1 "café", a long line the terminal cut inside a
        # character) arrives with stand-ins for its bad bytes: shown as U+FFFD, as a phone would.
        text = text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        marks = _marks(member)
        for reply in _send(client, number, to_number, text):
            click.secho(f"hearth> {reply}", fg="green")
        for sent in _drain(number):
            click.secho(f"hearth> {sent}", fg="cyan")
        _show_waiting(number, zone, waiting)
        if member is not None:
            _show_saved(member, marks)
        db.session.rollback()


def _marks(member: Member | None) -> tuple[dict, int]:
    """The member's results as they stand and the newest alert id, so what one message saves (a
    result new or changed, as a changed vote is) and raises can be shown."""
    marks = (_results(member) if member else {}, db.session.scalar(select(func.max(Alert.id))) or 0)
    db.session.rollback()
    return marks


def _results(member: Member) -> dict:
    return {result.id: (result.value, result.category, result.saved_at)
            for result in db.session.scalars(select(Result).where(Result.member_id == member.id))}


def _show_saved(member: Member, marks: tuple[dict, int]) -> None:
    """Print what the last message saved: results, alerts, the member's status, the flow in progress."""
    db.session.refresh(member)
    before = marks[0]
    for result in db.session.scalars(select(Result).where(Result.member_id == member.id).order_by(Result.id)):
        if before.get(result.id) == (result.value, result.category, result.saved_at):
            continue
        category = f" ({result.category})" if result.category else ""
        click.secho(f"  [saved {result.flow_id}.{result.name} = {result.value!r}{category}]", dim=True)
    for alert in db.session.scalars(select(Alert).where(Alert.member_id == member.id, Alert.id > marks[1])):
        told = db.session.scalars(select(Facilitator.name).join(
            OutboundMessage, OutboundMessage.to_number == Facilitator.phone).where(
            Facilitator.community_id == alert.community_id,
            OutboundMessage.idempotency_key.startswith(f"alert:{alert.id}:"))).all()
        to = f" Texted to {', '.join(told)}." if told else " No facilitator to text."
        click.secho(f"  [alert {alert.severity}: {alert.summary}{to}]", fg="red")
    conversation = db.session.scalar(select(Conversation).where(Conversation.member_id == member.id,
                                                                Conversation.active))
    where = f", in flow {conversation.flow_id}" if conversation else ""
    click.secho(f"  [member {member.status}{where}]", dim=True)


def _shared_number(community: Community) -> str:
    """The number a member of a community without a number of its own texts: the configured
    sender, or (when another community has that) a number no community has."""
    taken = set(db.session.scalars(select(Community.phone_number).where(Community.phone_number.is_not(None))))
    drama = (f"+441632960{n:03d}" for n in range(1000))  # Ofcom's 01632 960xxx, never allocated
    candidates = (current_app.config["HEARTH"].twilio_from_number, *drama)
    return next(number for number in candidates if number and number not in taken)


def _send(client, from_number: str, to_number: str, text: str) -> list[str]:
    """POST a signed inbound SMS to /twilio/sms and return the TwiML replies."""
    config = current_app.config["HEARTH"]
    form = {"MessageSid": "SM" + uuid.uuid4().hex, "AccountSid": config.twilio_account_sid or "AC" + "0" * 32,
            "From": from_number, "To": to_number, "Body": text, "NumMedia": "0"}
    base = config.public_base_url or "http://localhost"
    signature = RequestValidator(signing_token(config)).compute_signature(base + "/twilio/sms", form)
    response = client.post("/twilio/sms", data=form, base_url=base, headers={"X-Twilio-Signature": signature})
    if response.status_code != 200:
        return [f"(HTTP {response.status_code}: {response.get_data(as_text=True).strip()})"]
    root = ElementTree.fromstring(response.get_data(as_text=True))
    return [m.text or "" for m in root.iter("Message")]


def _the_members_community(phone: str) -> Community:
    """With several communities and none named: the one community this phone is a member of. A phone
    no community's region can read is refused with the reason, not said to be a member of none."""
    found, refused, read = {}, None, False
    for community in db.session.scalars(select(Community).order_by(Community.id)):
        try:
            number = to_e164(phone, community.region, entered=False)
        except InvalidPhone as exc:
            refused = refused or exc
            continue
        read = True
        if db.session.scalar(select(Member.id).where(Member.community_id == community.id, Member.phone == number)):
            found[community.name] = community
    if not read and refused is not None:
        raise click.ClickException(str(refused))
    if len(found) == 1:
        return next(iter(found.values()))
    whose = (f"{phone} is a member of {' and '.join(sorted(found))}" if found
             else f"{phone} is a member of none of them")
    raise click.ClickException(f"several communities exist and {whose}: say which with --community")


def _need_redis_for_the_rate_limit() -> None:
    """Replies go out through the send rate limit, which is kept in Redis, as are a carrier's holds
    (which apply with no rate set too): say so now if none answers."""
    config = current_app.config["HEARTH"]
    try:
        current_app.extensions["hearth_redis"].ping()
    except RedisError:
        raise click.ClickException(
            f"no Redis answers at {shown_url(config.redis_url)}, where the send rate limit is kept: start one (bin/dev"
            " does), or point REDIS_URL at one") from None


def _drain(number: str) -> list[str]:
    """Send what is due for this phone now, as a worker would, and return the bodies."""
    runtime = current_app.extensions["hearth_runtime"]
    # On the console transport simulate shows each message itself, so the transport's print is muted.
    transport = ConsoleTransport(io.StringIO()) if runtime.config.transport == "console" else runtime.transport
    ids = db.session.scalars(select(OutboundMessage.id).where(
        OutboundMessage.to_number == number, OutboundMessage.state == "pending").order_by(OutboundMessage.id)).all()
    bodies = []
    for outbox_id in ids:
        try:
            state = deliver(db.session, outbox_id, transport=transport, limiter=runtime.limiter,
                            receipts=runtime.receipts, sender=current_app.config["HEARTH"].sender,
                            final_attempt=True)
        except TransientSendError as exc:  # left pending, its tries to come: a worker takes it
            db.session.rollback()
            click.secho(f"  [not sent yet ({exc}); it stays queued for a worker]", dim=True)
            continue
        except RedisError as exc:  # put back by the send: it stays queued for a worker
            db.session.rollback()
            raise click.ClickException(
                f"Redis stopped answering at {shown_url(current_app.config['HEARTH'].redis_url)} ({exc}); what was"
                " being sent stays queued for a worker") from None
        if state == "sent":
            bodies.append(db.session.get(OutboundMessage, outbox_id).body)
    return bodies


def _show_waiting(number: str, zone: str, shown: set[int]) -> None:
    """Note each message for this phone that is due later (quiet hours, a reminder), once."""
    for row in db.session.scalars(select(OutboundMessage).where(
            OutboundMessage.to_number == number, OutboundMessage.state == "pending", OutboundMessage.id.not_in(shown))
            .order_by(OutboundMessage.due_at)):
        shown.add(row.id)
        click.secho(f"  [due {row.due_at.astimezone(ZoneInfo(zone)):%a %H:%M}: {row.body[:60]}]", dim=True)
    db.session.rollback()


def register(app: Flask) -> None:
    """Add `hearth simulate`."""
    app.cli.add_command(simulate_command)
