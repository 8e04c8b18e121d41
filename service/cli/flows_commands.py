"""`hearth flows validate` and `hearth flows test`: the flow checks, over bundled flows and HEARTH_FLOWS_DIR."""

from __future__ import annotations

import difflib
import json
import math
import re
import uuid
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import click
from flask import Flask, current_app
from flask.cli import AppGroup
from sqlalchemy import select

from flows.__main__ import main as flows_main
from flows.registry import BUNDLED_DIR
from flows.schedule import local_to_utc
from flows.sms import non_gsm7, plain
from service import audit
from service.clock import now
from service.database import db
from service.directory import community_named
from service.models import Conversation, Member, OutboundMessage
from service.phones import national, to_e164
from service.schedules import member_origin, start_for_members

from .errors import clear_errors
from .operator import operator

flows_cli = AppGroup("flows", help="Flow definitions.")


def _paths(paths: tuple[str, ...]) -> list[str]:
    if paths:
        return list(paths)
    extra = current_app.config["HEARTH"].flows_dir
    return [str(BUNDLED_DIR)] + ([extra] if extra else [])


@flows_cli.command("validate")
@click.argument("paths", nargs=-1, type=click.Path(exists=True))
def validate_command(paths: tuple[str, ...]) -> None:
    """Check flow files (default: bundled and HEARTH_FLOWS_DIR); errors name file, line and step."""
    raise SystemExit(flows_main(["validate", *_paths(paths)]))


@flows_cli.command("test")
@click.argument("paths", nargs=-1, type=click.Path(exists=True))
def test_command(paths: tuple[str, ...]) -> None:
    """Run the example conversations in flow files (default: bundled and HEARTH_FLOWS_DIR)."""
    raise SystemExit(flows_main(["test", *_paths(paths)]))


def _param(text: str) -> tuple[str, object]:
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise click.BadParameter(f"{text!r} is not KEY=VALUE")
    try:
        value = json.loads(raw)
    except ValueError:
        value = raw
    return key.strip(), value


def _times(value, community, flow, quiet: list, key: str = "", path: str = ""):
    """`value` with each time in it (a value named like `closes_at`, or a meeting's `starts_at`)
    checked, and in UTC. One written without an offset is the community's local time. Refused: a
    date alone ("closes_at=2026-06-12" could mean the start of that day or its end), a time not in
    the future (members would be asked about a time already gone), and a time after the flow's own
    expiry (the conversation would end first, with no word to members). Each time that sets one of
    the flow's timers in the community's quiet hours goes into `quiet`, as (name, local time): a
    flow's own messages are not held back for quiet hours."""
    if isinstance(value, dict):
        inner = f"{path}{key}." if key else path
        return {name: _times(item, community, flow, quiet, name, inner) for name, item in value.items()}
    if not key.endswith("_at") or value in (None, ""):
        return value
    text = str(value).strip()
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        moment = None
    if moment is None or (moment.tzinfo is None and _DATE_ONLY.match(text)):
        why = "a date alone" if moment is not None else "not a date and time"
        raise click.BadParameter(f"{key}={value!r} is {why}: give a day and a time, like 2026-11-27T18:00")
    zone = ZoneInfo(community.timezone)
    try:
        if moment.tzinfo is None:  # local wall time; one the clocks skip moves on to the first after the gap
            moment = local_to_utc(moment.date(), (moment.hour, moment.minute), zone) + timedelta(
                seconds=moment.second, microseconds=moment.microsecond)
        shown = moment.astimezone(zone).strftime("%Y-%m-%d %H:%M")
        utc = moment.astimezone(timezone.utc)
    except (OverflowError, ValueError):  # the first or last day a datetime can hold, moved across zones
        raise click.BadParameter(f"{key}={value!r} is out of range: give a day and a time, like"
                                 " 2026-11-27T18:00") from None
    if moment <= now():
        raise click.BadParameter(f"{path}{key} is {shown}, which is not in the future: give a time still to"
                                 " come, like 2026-11-27T18:00")
    sets_timer = _waits_for(flow, f"{path}{key}")
    if moment > now() + flow.expiry and sets_timer:
        # The conversation would end first, with no word to members: a vote closing after it, a
        # reminder of a meeting it would never see start.
        raise click.BadParameter(f"{path}{key} is {shown}, after {flow.id}'s conversations end"
                                 f" ({_span(flow.expiry)} after they start): start it nearer the time")
    if sets_timer and community.quiet_until(moment) is not None:
        quiet.append((f"{path}{key}", moment.astimezone(zone)))
    return utc.isoformat()


def _waits_for(flow, dotted: str) -> bool:
    """Whether one of the flow's timers is set by this parameter (a `no_answer.at` or a wait's
    `until` naming `params.closes_at` or `meeting.starts_at`): only then must it come before the
    flow's conversations end. A time a flow only shows ("the trip is on Saturday") need not."""
    name = dotted if dotted.startswith("meeting.") else f"params.{dotted}"
    timers = [(step.get("no_answer") or {}).get("at") for step in flow.steps.values()]
    timers += [step.get("until") for step in flow.steps.values() if step.type == "wait"]
    return any(isinstance(template, str) and name in template for template in timers)


_DATE_ONLY = re.compile(r"^\d{4}-?\d{2}-?\d{2}$")


def _span(delta: timedelta) -> str:
    days, hours = delta.days, delta.seconds // 3600
    return f"{days} days" if days and not hours else f"{days * 24 + hours} hours"


def _checked(flow, params: dict) -> dict:
    """The parameters a facilitator gave, refused before anything is sent when members would get
    nonsense: a name the flow does not take (a typo: its value would be dropped, and the text
    sent without it), options of a numbered question (`choices_from`) that are not a list (Yes,No
    is read as one), or a required one missing (a vote with no question). Times are checked by
    `_times`.
    """
    taken = flow.triggers.params()
    unknown = _guesses(set(params) - taken, taken)
    if unknown:
        raise click.BadParameter(f"{flow.id} takes no parameter {unknown}; it takes"
                                 f" {', '.join(sorted(taken)) or 'none'}")
    for name in sorted({step.get("choices_from").split(".", 1)[1] for step in flow.steps.values()
                        if step.get("choices_from")}):
        value = params.get(name)
        if isinstance(value, str):
            value = params[name] = [part.strip() for part in value.split(",") if part.strip()]
        if isinstance(value, list) and not all(isinstance(option, (str, int, float)) and not isinstance(
                option, bool) and str(option).strip() and not (isinstance(option, float) and not math.isfinite(option))
                for option in value):
            # Members would read "2 = None", "3 = {'a': 1}" or a blank option.
            raise click.BadParameter(f"{flow.id} shows members each option in {name} as text: give each as words"
                                     f" or a number, none blank, like --param '{name}=[\"Yes\", \"No\"]'")
        if not isinstance(value, list) or len(value) < 2:
            raise click.BadParameter(f"{flow.id} numbers the options in {name} for members to choose from: give two"
                                     f" or more, like --param '{name}=[\"Yes\", \"No\"]' or --param {name}=Yes,No")
    for name, value in params.items():
        _shaped(flow, name, value)
    missing = sorted(flow.triggers.required_params() - {name for name, value in params.items()
                                                         if value not in (None, [], {}) and str(value).strip()})
    if missing:
        raise click.BadParameter(f"{flow.id} needs {', '.join(missing)}: give "
                                 + " ".join(f"--param {name}=..." for name in missing))
    return params


def _shaped(flow, name: str, value) -> None:
    """Refuse a parameter the flow reads by its keys (`meeting.title`, `params.meeting.place`)
    given as something else, or with a key it never reads: either way members would get the
    text without it ("Reminder: Community meeting", no time or place)."""
    keys = set(re.findall(rf"(?<![\w.])(?:params\.)?{re.escape(name)}\.(\w+)", flow.source_text))
    if not keys or value in (None, "", {}):
        return
    like = "--param '" + name + "=" + json.dumps({key: "..." for key in sorted(keys)}) + "'"
    if not isinstance(value, dict):
        raise click.BadParameter(f"{flow.id} reads {name} by its parts ({', '.join(sorted(keys))}): give it as"
                                 f" JSON, like {like}")
    unknown = _guesses(set(value) - keys, keys)
    if unknown:
        raise click.BadParameter(f"{flow.id} reads no {unknown} of {name}; it reads {', '.join(sorted(keys))}, like"
                                 f" {like}")


def _guesses(unknown: set[str], known: set[str]) -> str:
    """The names given that are not known, each with the known one it is closest to, if any."""
    return ", ".join(f"{name} (did you mean {close[0]}?)" if (close := difflib.get_close_matches(name, known, 1))
                     else name for name in sorted(unknown))


def _plain(value, name: str = ""):
    """`value` with its text written in GSM-7 where only typography kept it out (curly quotes,
    dashes: one such character makes every text UCS-2, up to three times the SMS), and the
    names of the parameters that changed."""
    if isinstance(value, dict):
        pairs = {key: _plain(item, f"{name}.{key}" if name else key) for key, item in value.items()}
        return {key: item for key, (item, _) in pairs.items()}, [n for _, found in pairs.values() for n in found]
    if isinstance(value, list):
        pairs = [_plain(item, name) for item in value]
        return [item for item, _ in pairs], sorted({n for _, found in pairs for n in found})
    if isinstance(value, str) and plain(value) != value and not non_gsm7(plain(value)):
        return plain(value), [name]
    return value, []


def _cost(key_prefix: str) -> None:
    """What this start queued, in texts and SMS segments (what the carrier bills)."""
    sizes = db.session.execute(select(OutboundMessage.segments, OutboundMessage.encoding)
                               .where(OutboundMessage.idempotency_key.startswith(key_prefix))).all()
    if sizes:
        encodings = ", ".join(sorted({encoding for _, encoding in sizes}))
        click.echo(f"Queued {len(sizes)} text(s), {sum(s for s, _ in sizes)} SMS segment(s) ({encodings}).")


@flows_cli.command("start")
@click.argument("flow_id")
@click.option("--community", "community_name", required=True)
@click.option("--param", "raw_params", multiple=True, metavar="KEY=VALUE",
              help="A parameter; VALUE is read as JSON when it is JSON (lists, objects), else as text."
                   " A time without an offset (2026-06-12T18:00) is the community's local time.")
@click.option("--phone", "phones", multiple=True, help="Only these members (default: every member who may get it).")
@click.option("--in-quiet-hours", is_flag=True, help="Start it even in the community's quiet hours.")
def start_command(flow_id: str, community_name: str, raw_params: tuple[str, ...], phones: tuple[str, ...],
                  in_quiet_hours: bool) -> None:
    """Start a flow for a community's members, as a facilitator (a vote, a meeting RSVP)."""
    library = current_app.extensions["hearth_flows"]
    flow = library.get(flow_id)
    startable = sorted(f.id for f in library.registry.flows.values() if f.triggers.facilitator)
    if flow is None:
        raise click.ClickException(f"there is no flow {flow_id!r} (staff can start: {', '.join(startable) or 'none'})")
    if not flow.triggers.facilitator:
        # A member's own flow (pause, help) started for everyone would pause everyone, or tell
        # everyone "Sorry, I didn't understand that".
        raise click.ClickException(f"{flow_id} is not a flow staff start (it has no facilitator trigger);"
                                   f" staff can start: {', '.join(startable) or 'none'}")
    params = dict(_param(p) for p in raw_params)
    with clear_errors():
        community = community_named(db.session, community_name)
        zone = ZoneInfo(community.timezone)
        quiet: list[tuple[str, datetime]] = []
        params = _checked(flow, _times(params, community, flow, quiet))
        params, plained = _plain(params)
        quiet_until = community.quiet_until(now())
        if quiet_until is not None and not in_quiet_hours:
            until = quiet_until.astimezone(zone)
            raise click.ClickException(f"it is quiet hours in {community.name} until {until:%H:%M}: start {flow.id}"
                                       " then, or now with --in-quiet-hours")
        numbers = [to_e164(p, community.region, entered=False) for p in phones] or None
        run, actor = uuid.uuid4().hex[:8], operator()
        origin = f"facilitator:{flow.id}:{run}"
        started, busy = start_for_members(db.session, library, community, flow, params, origin, numbers)
        skipped = len(busy)
        audit.record(db.session, actor, "flow.started", community_id=community.id, flow_id=flow.id,
                     started=started, skipped=skipped)
        db.session.commit()
    click.echo(f"Started {flow.id} for {started} member(s)"
               + (f"; {skipped} skipped, busy in another conversation." if skipped else "."))
    missed = _not_started(community, numbers, origin) if numbers else []
    if busy and not numbers:
        phones = db.session.scalars(select(Member.phone).where(Member.id.in_(busy)).order_by(Member.id)).all()
        click.echo(f"Not started for: {', '.join(national(n, community.region) for n in phones)} (busy). It is not"
                   " tried again for them: start it for them later with "
                   + " ".join(f'--phone "{national(n, community.region)}"' for n in phones) + ".")
    if plained:
        click.echo(f"Written plainly, so that no text costs more for it: {', '.join(sorted(plained))}.")
    _cost(f"flow:{origin}:")  # the outbox keys of the run's messages (conversations._apply)
    for name, moment in quiet:
        click.echo(f"Note: {name} is {moment:%H:%M} on {moment:%a %-d %b}, in {community.name}'s quiet hours: what"
                   f" {flow.id} says then (\"Voting has closed\", say) goes at that hour.")
    if missed:
        raise SystemExit(1)  # a phone it was asked to start it for got nothing: a script must see it


def _not_started(community, numbers: list[str], origin: str) -> list[str]:
    """Say which of the phones given got nothing, and why: not a member, or a member left out
    (opted out, left, paused, taking calls) or busy in another conversation."""
    members = {phone: "takes calls" if channel == "voice" else "busy in another conversation" if status == "active"
               else status for phone, status, channel in db.session.execute(
                   select(Member.phone, Member.status, Member.channel)
                   .where(Member.community_id == community.id, Member.phone.in_(numbers)))}
    started = {phone for phone, member_id, started_from in db.session.execute(
        select(Member.phone, Member.id, Conversation.origin).join(Conversation, Conversation.member_id == Member.id)
        .where(Member.community_id == community.id, Member.phone.in_(numbers)))
        if started_from == member_origin(origin, member_id)}
    strangers = [national(n, community.region) for n in dict.fromkeys(numbers) if n not in members]
    left_out = [f"{national(n, community.region)} ({members[n].replace('_', ' ')})"
                for n in dict.fromkeys(numbers) if n in members and n not in started]
    if strangers:
        click.echo(f"Not members of {community.name}: {', '.join(strangers)}.")
    if left_out:
        click.echo(f"Not started for: {', '.join(left_out)}.")
    return strangers + left_out


def register(app: Flask) -> None:
    """Add the flows group."""
    app.cli.add_command(flows_cli)
