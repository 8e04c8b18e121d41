"""Finding and adding communities, members and facilitators."""

from __future__ import annotations

import re
import unicodedata
from datetime import time
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import langcodes
import phonenumbers

from sqlalchemy import func, select, text, update
from sqlalchemy.orm import Session

from flows.sms import non_gsm7, plain

from . import audit
from .clock import now
from .consent import sharing_sender
from .exceptions import Conflict, HearthError, NotFound
from .models import Community, Facilitator, InboundMessage, Member, OutboundMessage, Schedule
from .models.community import MAX_CRISIS_CONTACTS, contact_line
from .models.member import CHANNELS
from .outbox import QUIET_KINDS, queue_message
from .phones import check_reachable, region_for_timezone, to_e164


MAX_NAME = 120
DEFAULT_QUIET = "21:00-08:00"
QUIET_HOURS = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")
LANGUAGE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$")


def _name(raw: str | None, what: str) -> str:
    name = (raw or "").strip()
    if not name:
        raise HearthError(f"a {what} needs a name")
    if len(name) > MAX_NAME:
        raise HearthError(f"a {what}'s name must be at most {MAX_NAME} characters")
    if _has_control_characters(name):
        # A name goes into texts and TwiML: a control character would make the XML unreadable.
        raise HearthError(f"a {what}'s name must not contain control characters ({name!r})")
    if any(c in _REORDERING or unicodedata.category(c) in ("Zl", "Zp") for c in name):
        # In a facilitator's alert, these would turn the rest of the text around or break its line
        # ("Alex\u202e" makes "scored 1" read "1 derocs"). Joiners, which scripts and emoji need, stay.
        raise HearthError(f"a {what}'s name must not contain characters that reorder or break the text"
                          f" around it ({name!r})")
    # "Oak  House" and "Oak\u00a0House" look like "Oak House" in every list and text: one name.
    return " ".join(name.split())


# Unicode's explicit direction controls: embeddings, overrides and isolates.
_REORDERING = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def _has_control_characters(text: str, allowed: str = "") -> bool:
    return any(unicodedata.category(c) in ("Cc", "Cs") and c not in allowed for c in text)


def language_code(raw: str | None) -> str | None:
    """A language code as written in a spreadsheet (`CY`, `en_GB`) in its usual form (`cy`, `en-GB`)."""
    if not raw or not raw.strip():
        return None
    primary, _, rest = raw.strip().replace("_", "-").partition("-")
    code = primary.lower() + (f"-{rest}" if rest else "")
    if not LANGUAGE.match(code) or not langcodes.tag_is_valid(code):  # the IANA registry: not "xx"
        raise HearthError(f"{raw!r} is not a language code (like en or cy)")
    return code


def create_community(session: Session, name: str, timezone: str = "Europe/London", *, language: str = "en",
                     region: str | None = None, phone_number: str | None = None, quiet_hours: str = DEFAULT_QUIET,
                     actor: str = "cli") -> Community:
    """A new community; its timezone must be a real IANA zone.

    Local numbers are read in `region`; without one, in the timezone's country (GB for
    Europe/London), or GB for a zone of no one country such as Etc/UTC. In `quiet_hours` (local
    times, or "off") welcomes and broadcasts wait and reminders are not sent (docs/architecture.md).
    """
    name = _name(name, "community")
    language = language_code(language) or "en"
    _timezone(timezone)
    region = _region(region) if region else region_for_timezone(timezone) or "GB"
    quiet_start, quiet_end = _quiet_hours(quiet_hours)
    _communities_take_turns(session)
    existing = _called(session, name)
    if existing is not None:  # the name as the community has it ("Oak House" for "oak house")
        raise Conflict(f"there is already a community called {existing.name!r}")
    number = _free_number(session, phone_number, region) if phone_number else None
    shared = without_number(session, limit=1) if number is None else []
    if shared:
        # Texts to the shared number would name neither: both would lose their members' replies.
        raise Conflict(f"{shared[0].name} already uses the shared number (it has none of its own), and texts to"
                       f" it cannot tell two communities apart: give {name} its own with --phone-number")
    community = Community(name=name, timezone=timezone, language=language, region=region,
                          phone_number=number, quiet_start=quiet_start, quiet_end=quiet_end, created_at=now())
    session.add(community)
    session.flush()
    audit.record(session, actor, "community.created", community_id=community.id, name=name, timezone=timezone)
    return community


def _communities_take_turns(session: Session) -> None:
    """Hold off other creates of communities (and changes of their numbers) until this transaction
    ends, so that what `create_community` checks (the name, the number, one community without a
    number) still holds when it commits. Reading communities, as every webhook does, is not held off. SQLite's
    transactions (BEGIN IMMEDIATE) already take turns."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("LOCK TABLE communities IN SHARE ROW EXCLUSIVE MODE"))


# The community's own words: what each is called, and the words it must keep.
TEXTS = {
    "help_text": ("help text", ()),
    "welcome_text": ("welcome text", ("STOP", "HELP")),  # a new member learns how to stop and get help
    "opt_out_reply": ("opt-out reply", ("START",)),  # the last text a member gets says how to come back
    "opt_in_reply": ("opt-in reply", ()),
    "unknown_reply": ("reply to unknown numbers", ()),
}
MAX_TEXT = 459  # three GSM-7 parts: past that a text costs more than it helps on a basic phone


def update_community(session: Session, community: Community, *, actor: str = "cli", **changes) -> dict:
    """Change the community's texts and settings; returns what changed (also written to the audit log).

    Texts may say `{community}` for the community's name and `{crisis}` for its first crisis
    contact (`crisis_contacts`, a list of "NAME; HOW; WHEN"); `unknown_reply=None` (or '') answers
    unknown numbers with nothing. A new timezone makes the community's schedules due at once: the
    clock works each out again at the flows' local times in the new zone.
    """
    values: dict = {}
    region = _region(changes["region"]) if "region" in changes else community.region  # a new number is read in it
    for key, value in changes.items():
        if key in TEXTS:
            values[key] = _text(value, key)
        elif key == "timezone":
            values[key] = _timezone(value)
        elif key == "language":
            values[key] = language_code(value) or "en"
        elif key == "region":
            values[key] = region
        elif key == "quiet_hours":
            values["quiet_start"], values["quiet_end"] = _quiet_hours(value)
        elif key == "phone_number":
            _communities_take_turns(session)  # two communities given one number at once: one is refused
            values[key] = _free_number(session, value, region, community)
        elif key == "crisis_contacts":
            values[key] = crisis_contacts(value)
        else:
            raise HearthError(f"a community has no setting {key!r}")
    _fits(community, values)
    changed = {k: v for k, v in values.items() if getattr(community, k) != v}
    held_until = (community.timezone, community.quiet_end)  # when what quiet hours held waits for
    for key, value in changed.items():
        setattr(community, key, value)
    if changed.keys() & {"quiet_start", "quiet_end", "timezone"}:
        _rehold(session, community, *held_until)
    if "timezone" in changed:
        # Due now: the clock works each out again in the new zone, keeping when it last ran.
        session.execute(update(Schedule).where(Schedule.community_id == community.id).values(next_due_at=now()))
    if changed:
        session.flush()
        audit.record(session, actor, "community.updated", community_id=community.id,
                     **{k: v.strftime("%H:%M") if isinstance(v, time) else v for k, v in changed.items()})
    return changed


def _fits(community: Community, values: dict) -> None:
    """Refuse a change after which a text that says {crisis} would pass MAX_TEXT once the crisis
    line is in it (the template's own length is checked by `_text`)."""
    if not values.keys() & {*TEXTS, "crisis_contacts"}:
        return
    line = contact_line((values.get("crisis_contacts") or community.contacts)[0])
    for key, (what, _) in TEXTS.items():
        template = values.get(key, getattr(community, key))
        if template and "{crisis}" in template:
            length = len(community.render(template, line))
            if length > MAX_TEXT:
                raise HearthError(f"the {what} would be {length} characters with the crisis line in it ({line}):"
                                  f" at most {MAX_TEXT}; shorten one or the other")


def _rehold(session: Session, community: Community, zone: str, end: time | None) -> None:
    """Move what the old quiet hours held (welcomes and broadcasts due at their end, `end` local
    time in `zone`) to the end of the new ones, or to now when now is not quiet any more."""
    if end is None:
        return
    at, old_zone = now(), ZoneInfo(zone)
    due = community.quiet_until(at) or at  # the sweeper enqueues what is due now
    held = session.scalars(select(OutboundMessage).where(
        OutboundMessage.community_id == community.id, OutboundMessage.state == "pending",
        OutboundMessage.kind.in_(QUIET_KINDS), OutboundMessage.due_at > at))
    for row in held:
        if row.due_at.astimezone(old_zone).time() == end:
            row.due_at = due


def _text(raw: str | None, key: str) -> str | None:
    what, required_words = TEXTS[key]
    text = (raw or "").strip()
    if not text:
        if key == "unknown_reply":
            return None
        raise HearthError(f"the {what} cannot be empty")
    if len(text) > MAX_TEXT:
        raise HearthError(f"the {what} must be at most {MAX_TEXT} characters (it is {len(text)})")
    if _has_control_characters(text, allowed="\n"):
        raise HearthError(f"the {what} must not contain control characters")
    unknown = sorted(set(re.findall(r"{[^{}]*}", text)) - {"{community}", "{crisis}"})
    if unknown:
        raise HearthError(f"the {what} says {', '.join(unknown)}: the names it can hold are {{community}} and"
                          " {crisis}")
    missing = [w for w in required_words if not re.search(rf"\b{w}\b", text, re.IGNORECASE)]
    if missing:
        raise HearthError(f"the {what} must tell members how to use {' and '.join(missing)}")
    return text


CONTACT_PARTS = {"name": 40, "how": 60, "when": 30}  # the longest each part may be


def crisis_contacts(contacts: list[str | dict]) -> list[dict[str, str]]:
    """A community's crisis contacts, each written "NAME; HOW; WHEN" (WHEN may be left out) or as
    a mapping of those keys, in the order texts should name them: the first is the one every short
    text names (`{crisis}`). There must be at least one: a text that signposts needs a line to give.
    """
    if not contacts:
        raise HearthError("a community needs at least one crisis contact")
    if len(contacts) > MAX_CRISIS_CONTACTS:
        raise HearthError(f"a community may have at most {MAX_CRISIS_CONTACTS} crisis contacts")
    return [_contact(raw, n) for n, raw in enumerate(contacts, 1)]


def _contact(raw: str | dict, n: int) -> dict[str, str]:
    if isinstance(raw, str):
        parts = [part.strip() for part in raw.split(";")]
        if not 2 <= len(parts) <= 3:
            raise HearthError(f'crisis contact {n} ({raw!r}) must be written "NAME; HOW; WHEN", like'
                              ' "Samaritans; call 116 123; free, 24/7" (WHEN may be left out)')
        raw = dict(zip(CONTACT_PARTS, parts))
    contact = {key: str(raw.get(key) or "").strip() for key in CONTACT_PARTS}
    for key, longest in CONTACT_PARTS.items():
        value = contact[key]
        if not value and key != "when":
            raise HearthError(f"crisis contact {n} needs its {key}")
        if len(value) > longest:
            raise HearthError(f"crisis contact {n}'s {key} must be at most {longest} characters")
        if _has_control_characters(value) or any(c in value for c in ";{}"):
            raise HearthError(f"crisis contact {n}'s {key} must not contain control characters, ';', '{{' or '}}'")
    # Curly quotes or a dash would make every text that names the line UCS-2 (up to three times
    # the SMS): written plainly when that is all that keeps it out of GSM-7 (Welsh letters stay).
    return {k: plain(v) if not non_gsm7(plain(v)) else v for k, v in contact.items() if v}


def _timezone(name: str) -> str:
    """An IANA zone name; not the server's own zone (`localtime`, which differs from host to host)
    nor a folder of zones (`Europe`)."""
    if name not in _zones():
        raise HearthError(f"{name!r} is not a timezone (try Europe/London)")
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise HearthError(f"{name!r} is not a timezone (try Europe/London)") from None
    return name


@lru_cache(maxsize=1)
def _zones() -> frozenset[str]:
    return frozenset(available_timezones() - {"localtime", "Factory", "posixrules"})


def _quiet_hours(raw: str | None) -> tuple[time | None, time | None]:
    """"21:00-08:00" as two local times; "off" or "" for none."""
    text = (raw or "").strip().lower()
    if text in ("", "off", "none"):
        return None, None
    found = QUIET_HOURS.match(text)
    try:
        start, end = time(*map(int, found.group(1, 2))), time(*map(int, found.group(3, 4)))
    except (AttributeError, ValueError):  # no match, or no such time of day
        start = end = None
    if start is None or start == end:
        raise HearthError(f"{raw!r} is not quiet hours (like 21:00-08:00, or off)")
    return start, end


def _region(raw: str) -> str:
    region = raw.strip().upper()
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise HearthError(f"{raw!r} is not a region phone numbers can be read in (like GB)")
    return region


def _free_number(session: Session, raw: str, region: str, community: Community | None = None) -> str:
    """The number as E.164, refused when another community has it."""
    number = to_e164(raw, region)
    taken = session.scalar(select(Community.name).where(Community.phone_number == number,
                                                         Community.id != (community.id if community else None)))
    if taken is not None:
        raise Conflict(f"{number} is already the number of {taken!r}")
    return number


def _called(session: Session, name: str) -> Community | None:
    """The community called `name` in any case and spacing, compared in Python: SQLite's lower() folds only
    ASCII (Élan and élan would be two communities), PostgreSQL's depends on the collation."""
    folded = " ".join(name.split()).casefold()
    return next((c for c in session.scalars(select(Community)) if " ".join(c.name.split()).casefold() == folded),
                None)


def community_named(session: Session, name: str) -> Community:
    """The community called `name` (any case)."""
    community = _called(session, name)
    if community is None:
        raise NotFound(f"there is no community called {name!r}")
    return community


def roster(session: Session, community: Community, status: str | None = None) -> list:
    """The community's members by name, each with when they last texted (None: never); `status` only those."""
    last_texted = (select(func.max(InboundMessage.received_at)).where(InboundMessage.member_id == Member.id)
                   .correlate(Member).scalar_subquery())
    query = (select(Member, last_texted.label("last_texted")).where(Member.community_id == community.id)
             .order_by(func.lower(Member.name), Member.id))
    if status is not None:
        query = query.where(Member.status == status)
    return list(session.execute(query))


def community_for_number(session: Session, to_number: str) -> Community | None:
    """The community whose Twilio number this is; else the one community with no number of its own
    (it texts from the configured sender, so its members' replies come to that number); else,
    with a single community, that one."""
    community = session.scalar(select(Community).where(Community.phone_number == to_number))
    if community is not None:
        return community
    numberless = without_number(session)
    return numberless[0] if len(numberless) == 1 else only_community(session)


def unreachable(session: Session, community: Community) -> bool:
    """Whether texts cannot reach the community: it has no number of its own, and neither has another
    (`community_for_number` then has no way to tell which one is meant)."""
    return community.phone_number is None and len(without_number(session)) > 1


def without_number(session: Session, limit: int = 2) -> list[Community]:
    """Communities with no number of their own (up to `limit` of them, by id)."""
    return list(session.scalars(select(Community).where(Community.phone_number.is_(None))
                                .order_by(Community.id).limit(limit)))


def only_community(session: Session) -> Community | None:
    """The community, when there is exactly one."""
    only = session.scalars(select(Community).limit(2)).all()
    return only[0] if len(only) == 1 else None


def add_member(session: Session, community: Community, name: str, phone: str, *, language: str | None = None,
               channel: str = "sms", welcome: bool = True, actor: str = "cli", bulk: bool = False) -> Member:
    """A new member, phone stored as E.164; the welcome message goes through the outbox.

    A phone that texted STOP to the number this community texts from is out of every community
    texted from it (`consent.sharing_sender`): it joins this one opted out too, and is sent
    nothing, the welcome included, until it texts START.
    `bulk` (one of many added together, an import) sends the welcome on the bulk queue.
    """
    name = _name(name, "member")
    language = language_code(language)
    channel = (channel or "").strip().lower()
    if channel not in CHANNELS:
        raise HearthError(f"channel must be sms or voice, not {channel!r}")
    # A number already a member's is "already a member", whatever the checks below say of it now
    # (a range withdrawn, a kind of number refused since): a second run of an import finds it so.
    number = to_e164(phone, community.region, entered=False)
    if session.scalar(select(Member.id).where(Member.community_id == community.id, Member.phone == number)):
        raise already_a_member(community, number)
    number = to_e164(phone, community.region)
    check_reachable(number, channel, raw=phone)
    opted_out_at = max((m.opted_out_at for m in session.scalars(sharing_sender(number, community))
                        if m.status == "opted_out" and m.opted_out_at), default=None)
    at = now()
    member = Member(community_id=community.id, name=name, phone=number, language=language or None,
                    channel=channel, status="opted_out" if opted_out_at else "active",
                    consent_at=None if opted_out_at else at, opted_out_at=opted_out_at, created_at=at, fields={})
    session.add(member)
    session.flush()
    welcome = welcome and member.reachable and member.channel == "sms"  # calls are not built yet
    audit.record(session, actor, "member.added", community_id=community.id, member_id=member.id, welcome=welcome,
                 status=member.status)
    if welcome:
        queue_message(session, key=f"welcome:{member.id}", to=number, body=community.render(community.welcome_text),
                      kind="welcome", member=member, queue="bulk" if bulk else None)
    return member


def already_a_member(community: Community, number: str) -> Conflict:
    """The refusal of a number that is already a member of the community."""
    return Conflict(f"{number} is already a member of {community.name}")


def add_facilitator(session: Session, community: Community, name: str, phone: str, *, on_call: bool = False,
                    actor: str = "cli") -> Facilitator:
    """A new facilitator of the community."""
    name = _name(name, "facilitator")
    number = to_e164(phone, community.region)
    check_reachable(number, raw=phone, landline="alerts reach a facilitator by text: give a mobile")
    if session.scalar(select(Facilitator.id).where(Facilitator.community_id == community.id,
                                                   Facilitator.phone == number)):
        raise Conflict(f"{number} is already a facilitator of {community.name}")
    facilitator = Facilitator(community_id=community.id, name=name, phone=number, on_call=on_call,
                              created_at=now())
    session.add(facilitator)
    session.flush()
    audit.record(session, actor, "facilitator.added", community_id=community.id, facilitator_id=facilitator.id,
                 on_call=on_call)
    return facilitator
