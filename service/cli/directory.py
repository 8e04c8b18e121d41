"""`hearth community create/set/show`, `hearth member add`, `hearth members import`, `hearth facilitator add`."""

from __future__ import annotations

import csv
import io
import sys
from collections import Counter
from zoneinfo import ZoneInfo

import click
from flask import Flask, current_app
from flask.cli import AppGroup
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError, IntegrityError

from flows import next_occurrence
from flows.folding import fold
from flows.sms import measure, non_gsm7

from service.clock import now
from service.database import db
from service.directory import (
    DEFAULT_QUIET, TEXTS, add_facilitator, add_member, already_a_member, community_named, create_community, roster,
    update_community,
)
from service.models import Facilitator, Member, OutboundMessage
from service.models.community import UK_CRISIS_CONTACTS, contact_line
from service.models.member import STATUSES
from service.phones import national, region_for_timezone, to_e164
from service.sending import VOICE_NOT_BUILT
from service.exceptions import Conflict, HearthError

from .errors import clear_errors, database_reason
from .operator import operator

community_cli = AppGroup("community", help="Communities.")
member_cli = AppGroup("member", help="One member.")
members_cli = AppGroup("members", help="Many members.")
facilitator_cli = AppGroup("facilitator", help="Facilitators.")


QUIET_HELP = ("Local hours when welcomes and broadcasts wait, reminders are not sent and `flows start` asks first"
              " (schedules run at the times they are given; crisis messages and answers go at once)")


@community_cli.command("create")
@click.argument("name")
@click.option("--timezone", default="Europe/London", show_default=True, help="IANA timezone.")
@click.option("--language", default="en", show_default=True)
@click.option("--region", help="The country local phone numbers are in (like GB)  [default: the timezone's, else GB]")
@click.option("--phone-number", help="The community's own Twilio number, when several communities share Hearth:"
              " its texts go from it and its members' replies come to it.")
@click.option("--quiet-hours", default=DEFAULT_QUIET, show_default=True,
              help=QUIET_HELP + ", or off.")
def create_community_command(name, timezone, language, region, phone_number, quiet_hours) -> None:
    """Create a community."""
    with clear_errors():
        community = create_community(db.session, name, timezone, language=language, region=region,
                                     phone_number=phone_number, quiet_hours=quiet_hours, actor=operator())
        db.session.commit()
    click.echo(f"Created community {community.name} ({community.timezone}; local numbers read as in"
               f" {community.region}).")
    _uk_contacts_note(community)
    click.echo(f"Note: HELP is answered with a help text that names no one at {community.name} to contact: give it"
               f' yours with `hearth community set "{community.name}" --help-text "..."`.')


@community_cli.command("set")
@click.argument("name")
@click.option("--help-text", help="The answer to HELP and INFO. In every text, {community} is the community's name"
              " and {crisis} its first crisis contact.")
@click.option("--welcome-text", help="What a new member is sent; it must say STOP and HELP.")
@click.option("--opt-out-reply", help="The one confirmation a STOP gets.")
@click.option("--opt-in-reply", help="The answer to START.")
@click.option("--unknown-reply", help="The answer to a number that is not a member ('' for no answer).")
@click.option("--timezone", help="IANA timezone; scheduled flows move to their local times in it.")
@click.option("--language", help="The community's default language (like en or cy).")
@click.option("--region", help="The country local phone numbers are in (like GB); stored numbers stay as they are.")
@click.option("--quiet-hours", help=QUIET_HELP + ", like 21:00-08:00, or off.")
@click.option("--phone-number", help="The community's own Twilio number: its texts go from it.")
@click.option("--crisis-contact", "crisis_contacts", multiple=True, metavar='"NAME; HOW; WHEN"',
              help='A crisis line to signpost, like "Samaritans; call 116 123; free, 24/7". Give each of the'
                   " community's in turn, the first the one short texts name; together they replace the old.")
def set_community_command(name, **options) -> None:
    """Change a community's texts and settings; only the options given change."""
    changes = {k: v for k, v in options.items() if v not in (None, ())}
    if not changes:
        raise click.UsageError("say what to change (see --help)")
    with clear_errors():
        community = community_named(db.session, name)
        changed = update_community(db.session, community, actor=operator(), **changes)
        db.session.commit()
    names = sorted({"quiet_hours" if key in ("quiet_start", "quiet_end") else key for key in changed})
    click.echo(f"Changed {', '.join(names)} of {community.name}." if changed
               else f"{community.name} already had those settings.")
    if "timezone" in changed and "region" not in changes:  # a region given, changed or not, is meant
        country = region_for_timezone(community.timezone)
        if country and country != community.region:
            click.echo(f"Note: local numbers are still read as in {community.region}; if its members' are from"
                       f" {country}, set --region {country} too.")
    if changed.keys() & {"region", "timezone"}:
        _uk_contacts_note(community)
    if changed.keys() & {*TEXTS, "crisis_contacts"}:
        _crisis_notes(community, changed.keys())


SIGNPOSTING = ("help_text", "welcome_text", "unknown_reply")  # the texts whose defaults give the crisis line


def _uk_contacts_note(community) -> None:
    """Point out the UK's crisis lines on a community whose numbers or clock say it is elsewhere."""
    abroad = community.region != "GB" or (region_for_timezone(community.timezone) or "GB") != "GB"
    if abroad and community.contacts == UK_CRISIS_CONTACTS:
        click.echo(f"Note: its crisis contacts are the UK's (Samaritans first): give it its own with"
                   f' `hearth community set "{community.name}" --crisis-contact "NAME; HOW; WHEN"`.')


def _crisis_notes(community, changed) -> None:
    """What the crisis line costs in the changed texts that say {crisis}, where more than one
    plain SMS; with new contacts, in all of them, and which texts give a line of their own. A
    changed text without {crisis} is named where it is more than one plain SMS too."""
    contacts_changed = "crisis_contacts" in changed
    for key, (what, _) in TEXTS.items():
        template = getattr(community, key) if contacts_changed or key in changed else None
        crisis = bool(template) and "{crisis}" in template
        if crisis or (template and key in changed):
            text = community.render(template)
            cost = measure(text)
            if cost.segments > 1 or cost.name != "GSM-7":
                parts = f"{cost.segments} SMS part{'s' if cost.segments != 1 else ''}"
                which = f": {', '.join(non_gsm7(text))}" if cost.name != "GSM-7" else ""
                click.echo(f"Note: {'with the crisis line in it ' if crisis else ''}the {what} is {parts}"
                           f" ({cost.name}{which}).")
        if template and "{crisis}" not in template and contacts_changed and key in SIGNPOSTING:
            click.echo(f"Note: the {what} does not say {{crisis}}, so it still gives whatever line it names"
                       f" itself: {community.render(template)!r}")


@community_cli.command("show")
@click.argument("name")
def show_community_command(name) -> None:
    """A community's settings, and each of its texts as a member would get it (with its SMS cost)."""
    with clear_errors():
        community = community_named(db.session, name)
    start, end = community.quiet_start, community.quiet_end
    quiet = f"{start:%H:%M}-{end:%H:%M}" if start and end else "off"
    click.echo(f"{community.name}: timezone {community.timezone}, language {community.language}, "
               f"region {community.region}, number {community.phone_number or '(none)'}, quiet hours {quiet}")
    staff = db.session.execute(select(Facilitator.name, Facilitator.on_call)
                               .where(Facilitator.community_id == community.id).order_by(Facilitator.id)).all()
    if not staff:
        click.echo("Note: no facilitator, so alerts reach nobody: add one with `hearth facilitator add ... --on-call`.")
    else:
        on_call = [name for name, on in staff if on]
        click.echo("Alerts go to " + (", ".join(on_call) + " (on call)" if on_call else
                                      ", ".join(name for name, _ in staff) + " (nobody is on call: all of them)")
                   + ".")
    for flow in current_app.extensions["hearth_flows"].registry.scheduled():
        due = next_occurrence(flow, now(), community.timezone)
        if due is not None and community.quiet_until(due) is not None:
            click.echo(f"Note: {flow.id} is scheduled at {due.astimezone(ZoneInfo(community.timezone)):%H:%M}, in the"
                       " quiet hours; a schedule runs at its times all the same.")
    _uk_contacts_note(community)
    click.echo("Crisis contacts (the first is {crisis} in texts):")
    for contact in community.contacts:
        click.echo(f"  {contact_line(contact)}")
    for key, (what, _) in TEXTS.items():
        template = getattr(community, key)
        if template is None:
            click.echo(f"\n{what}: (no answer)")
            continue
        text = community.render(template)
        cost = measure(text)
        click.echo(f"\n{what} ({cost.segments} part{'s' if cost.segments != 1 else ''}, {cost.name}):\n  {text}")


@member_cli.command("add")
@click.option("--community", "community_name", required=True)
@click.option("--name", required=True)
@click.option("--phone", required=True, help="Any common format; stored as E.164.")
@click.option("--language", default=None, help="The member's language (like en or cy)  [default: the community's]")
@click.option("--channel", type=click.Choice(["sms", "voice"], case_sensitive=False), default="sms", show_default=True)
@click.option("--no-welcome", is_flag=True, help="Do not send the welcome message.")
def add_member_command(community_name, name, phone, language, channel, no_welcome) -> None:
    """Add one member; they get the welcome message unless --no-welcome."""
    with clear_errors():
        community = community_named(db.session, community_name)
        try:
            member = add_member(db.session, community, name, phone, language=language, channel=channel,
                                welcome=not no_welcome, actor=operator())
            db.session.commit()
        except IntegrityError as exc:
            db.session.rollback()
            raced = _raced(community, phone, exc)
            if raced is None:
                raise
            raise raced from None
    if not member.reachable:
        click.echo(f"Added {member.name} ({member.phone}) to {community.name}, opted out: {OPTED_OUT_NOTE}.")
    else:
        click.echo(f"Added {member.name} ({member.phone}) to {community.name}"
                   + ("." if no_welcome or member.channel == "voice" else f"; {_welcome_when(member, community)}."))
    for note in (_unspoken(member), _uncalled(member)):
        if note:
            click.echo(f"Note: {note}.")


def _uncalled(member) -> str | None:
    """What a member on the voice channel gets while calls are not built: nothing."""
    if member.channel != "voice":
        return None
    return (f"{VOICE_NOT_BUILT}: {member.name} is sent no welcome, check-in or vote until it does, and is left"
            " out of them (answers to their own texts still go)")


@members_cli.command("import")
@click.argument("file", type=click.File("r", encoding="utf-8-sig"))
@click.option("--community", "community_name", required=True)
@click.option("--no-welcome", is_flag=True, help="Do not send welcome messages.")
def import_members_command(file, community_name, no_welcome) -> None:
    """Import members from a CSV with columns name, phone[, language, channel]; bad rows are reported
    (and make the exit status 1)."""
    with clear_errors():
        community = community_named(db.session, community_name)
    try:
        text = file.read(MAX_IMPORT_CHARACTERS + 1)
        if len(text) > MAX_IMPORT_CHARACTERS:
            raise click.ClickException(f"{file.name} is larger than an import takes ({MAX_IMPORT_CHARACTERS:,}"
                                       " characters, some 200,000 members): is it the file you meant? Split it"
                                       " and import each part") from None
        reader = csv.DictReader(io.StringIO(text), delimiter=_delimiter(text), strict=True)
        named = [_column(h) for h in reader.fieldnames or []]
        headers = set(named)
        rows, unreadable = _read_rows(reader)
    except UnicodeDecodeError:
        raise click.ClickException(f"{file.name} is not UTF-8 text: save it as 'CSV UTF-8' and try again") from None
    except csv.Error as exc:
        raise click.ClickException(f"{file.name} is not a readable CSV: {exc}") from None
    if not {"name", "phone"} <= headers:
        first = "; its first line is blank, and the header row must come first" if text.strip() and not named else ""
        raise click.ClickException(f"the CSV needs a header row with at least the columns name and phone{first}")
    twice = sorted({name for name in named if name and named.count(name) > 1})
    if twice:
        clashes = "; ".join(_clash(name, [h.strip() for h, n in zip(reader.fieldnames, named) if n == name])
                            for name in twice)
        raise click.ClickException(f"the header row has {clashes}: which column is meant?"
                                   " Rename or remove the others and try again")
    unread = [header.strip() for header, name in zip(reader.fieldnames, named) if name and name not in READ]
    if unread:  # a misspelt column, or one an import does not set (a status): said before any row goes in
        click.echo(f"Columns not read: {', '.join(unread)} (an import reads {', '.join(READ[:-1])} and {READ[-1]}).")
    added, added_noted, report = 0, 0, list(unreadable)
    lines_of: dict[str, int] = {}  # each number this file added, and its line
    batch_from = rows[0][0] if rows else 0
    actor = operator("cli:import")
    try:
        with click.progressbar(rows, label=f"Importing into {community.name}", file=sys.stderr) as bar:
            for index, (line, last, raw) in enumerate(bar):
                if index and index % IMPORT_BATCH == 0:
                    _commit_batch(file.name, batch_from)
                    batch_from = line
                member, note = _import_row(community, line, last, raw, not no_welcome, lines_of, actor)
                added += member is not None
                added_noted += member is not None and note is not None
                if note:
                    report.append((line, note))
        _commit_batch(file.name, batch_from)
    except KeyboardInterrupt:
        db.session.rollback()
        raise click.ClickException(f"stopped at line {batch_from}: {RUN_AGAIN}") from None
    already = sum(f": {ALREADY}: " in report_line for _, report_line in report)
    refused = len(report) - added_noted - already
    click.echo(f"Imported {added} of {added + refused + already} rows into {community.name}"
               + (f"; {already} already in it." if already else "."))
    for _, report_line in sorted(report):
        click.echo(report_line)
    if refused:
        raise SystemExit(1)  # rows were refused: a script running the import must see it


def _column(header: str | None) -> str:
    """A header as the import reads it: `Phone Number`, `Mobile` and `phone_number` are phone."""
    name = " ".join((header or "").replace("_", " ").split()).lower()
    return _COLUMNS.get(name, name)


def _clash(name: str, headers: list[str]) -> str:
    """Headers that all read as the column `name`, in the file's own words: the operator looks
    for `Mobile` and `Telephone` in the spreadsheet, not for `phone`."""
    if len(set(headers)) == 1:
        return f'"{headers[0]}" {len(headers)} times'
    quoted = [f'"{header}"' for header in headers]
    return f"{', '.join(quoted[:-1])} and {quoted[-1]}, {'both' if len(quoted) == 2 else 'all'} read as {name}"


# The columns an import takes a member's details from; any other is named as not read.
READ = ("name", "phone", "language", "channel")

_COLUMNS = {"phone number": "phone", "mobile": "phone", "mobile number": "phone", "mobile phone": "phone",
            "telephone": "phone", "tel": "phone", "number": "phone", "full name": "name"}


def _import_row(community, line: int, last: int, raw: dict, welcome: bool, lines_of: dict[str, int],
                actor: str):
    """Add one CSV row's member in a savepoint; (the member or None, the row's report line or None).

    `lines_of` holds the numbers the file added before, so a number on two lines is named as such.
    """
    row = {_column(k): (v or "").strip() for k, v in raw.items() if k}
    if any("\n" in row.get(column, "") for column in ("name", "phone")):
        return None, f"line {line}: refused: a quoted value runs on to line {last} (is a quote left open?)"
    # Values under no column name: past the header's end (csv.DictReader's restkey, None), or
    # under a blank name (a header ending in a comma). "Smith, Ana" unquoted moves every value
    # after it one column on: which is the phone?
    named = [key for key in raw if key and key.strip()]
    spare = [*(raw.get(None) or ()), *(value for key, value in raw.items() if key is not None and not key.strip())]
    if any(value and value.strip() for value in spare):
        return None, (f"line {line}: refused: {len(named) + len(spare)} values where the header names"
                      f" {len(named)} columns (is a value with a comma in it not in quotes?)")
    try:
        with db.session.begin_nested():
            member = add_member(db.session, community, row.get("name", ""), row.get("phone", ""),
                                language=row.get("language") or None, channel=row.get("channel") or "sms",
                                welcome=welcome, actor=actor, bulk=True)
    except Conflict as exc:
        return None, _on_a_members_number(community, line, row, str(exc), lines_of)
    except HearthError as exc:
        # A row longer than the header, its extra values empty ("Smith, Ana,07700 900204,," under
        # four columns): the shift, not the value it put in the wrong column, is what to mend.
        longer = f" ({len(named) + len(spare)} values where the header names {len(named)} columns: is a value" \
                 " with a comma in it not in quotes?)" if raw.get(None) is not None else ""
        return None, f"line {line}: refused: {exc}{longer}"
    except DBAPIError as exc:  # a value the database will not store: that row only
        raced = _raced(community, row.get("phone", ""), exc)
        if raced is not None:  # the same file imported twice at once
            return None, _on_a_members_number(community, line, row, str(raced), lines_of)
        return None, f"line {line}: refused: the database would not store it ({database_reason(exc)})"
    lines_of[member.phone] = line
    if not member.reachable:
        return member, f"line {line}: added opted out: {OPTED_OUT_NOTE}"
    notes = "; ".join(note for note in (_unspoken(member), _uncalled(member)) if note)
    return member, f"line {line}: added; {notes}" if notes else None


def _on_a_members_number(community, line: int, row: dict, reason: str, lines_of: dict[str, int]) -> str:
    """The report line of a row whose number a member of the community has already.

    The same person is "not added" (an import run again, or run twice at once), which is no error;
    a number on an earlier line of the file, or another person's, is refused.
    """
    number = to_e164(row.get("phone", ""), community.region, entered=False)
    earlier = lines_of.get(number)
    if earlier:
        return f"line {line}: refused: the same number as line {earlier}"
    holder = _holder(community, number)
    if holder is not None and fold(holder) == fold(row.get("name", "")):
        return f"line {line}: {ALREADY}: {reason}"
    return f"line {line}: refused: {reason}" + (f" ({holder})" if holder else "")


def _raced(community, phone: str, exc: DBAPIError):
    """add_member's refusal of a number already a member's (a Conflict), when another writer (an
    import, a second `member add`) added it between add_member's check and its insert and the
    unique (community, phone) refused the insert; None for any other error the database gave."""
    if not isinstance(exc, IntegrityError):
        return None
    number = to_e164(phone, community.region, entered=False)
    return already_a_member(community, number) if _holder(community, number) is not None else None


def _holder(community, number: str) -> str | None:
    """The name of the community's member with this number, or None."""
    return db.session.scalar(select(Member.name).where(Member.community_id == community.id, Member.phone == number))


def _welcome_when(member, community) -> str:
    """When the welcome goes: now, or at the end of the community's quiet hours."""
    due = db.session.scalar(select(OutboundMessage.due_at).where(OutboundMessage.member_id == member.id,
                                                                  OutboundMessage.kind == "welcome"))
    if due is None or due <= now():
        return "welcome message queued"
    local = due.astimezone(ZoneInfo(community.timezone))
    return f"welcome message queued for {local:%H:%M} (quiet hours in {community.name} until then)"


def _unspoken(member) -> str | None:
    """What a member whose language no flow speaks gets instead, or None."""
    language = member.language.split("-")[0] if member.language else None
    spoken = current_app.extensions["hearth_flows"].languages
    if language is None or language in spoken:
        return None
    return (f"no flow speaks {member.language!r} (they speak {', '.join(sorted(spoken))}): {member.name} gets"
            f" the community's language where a flow has it, else the flow's own")


# An import is read whole before its first row goes in (a bad header stops it before any change):
# a file chosen by mistake (a backup, a video) must be refused, not fill the memory.
MAX_IMPORT_CHARACTERS = 20_000_000

ALREADY = "not added"  # a row already in the community: not an error (running an import again)


# Rows written in one transaction. On SQLite each transaction holds the database's write lock, which
# webhooks and workers wait for: they wait for one batch (well under a second), not the whole file.
IMPORT_BATCH = 100


def _commit_batch(file_name: str, first_line: int) -> None:
    """Commit the rows since `first_line`; if that fails, say that the rows before it are in."""
    try:
        db.session.commit()
    except DBAPIError as exc:
        db.session.rollback()
        raise click.ClickException(f"could not save the rows of {file_name} from line {first_line} on"
                                   f" ({database_reason(exc)}): {RUN_AGAIN}") from None


RUN_AGAIN = ("the rows before it are imported; run the import again to add the rest (it reports the rows"
             " already in as members already)")


# Why a member was added opted out (directory.add_member).
OPTED_OUT_NOTE = "this number texted STOP, so it is sent no welcome and nothing else until it texts START"


def _read_rows(reader: csv.DictReader) -> tuple[list[tuple[int, int, dict]], list[tuple[int, str]]]:
    """Each row with the lines it starts and ends on, and a report line for each that is not valid CSV.

    Blank lines and quoted line breaks move the line on. A quote left open runs to the end of
    the file: that is reported, and the rows before it are still imported.
    """
    rows, unreadable, last = [], [], 1
    while True:
        try:
            raw = next(reader)
        except StopIteration:
            return rows, unreadable
        except csv.Error as exc:
            at = reader.reader.line_num  # DictReader's own count moves only with a row it returns
            if "unexpected end of data" in str(exc):
                report = (f"lines {last + 1}-{at}: refused: a quote opened in these lines is never closed,"
                          " so the rest of the file cannot be read")
                unreadable.append((last + 1, report))
            else:
                unreadable.append((at, f"line {at}: refused: not valid CSV ({exc})"))
            last = at
            continue
        last = reader.line_num
        values = _values(raw)
        if any(value.strip() for value in values):  # a spreadsheet's empty rows (",,,") are no one
            rows.append((last - sum(v.count("\n") for v in values), last, raw))


def _delimiter(text: str) -> str:
    """What the header row's columns are separated by: a comma, or the semicolon or tab that
    spreadsheets in many European languages save "CSV" with.

    The header is read as the import reads it (`_column`), so `Name;Mobile` is found as well as `name;phone`.
    """
    header = text.split("\n", 1)[0]
    for delimiter in (",", ";", "\t"):
        if {"name", "phone"} <= {_column(column.strip().strip('"')) for column in header.split(delimiter)}:
            return delimiter
    return ","


def _values(raw: dict) -> list[str]:
    """Every text in a DictReader row, extra columns (listed under None) included."""
    values = []
    for value in raw.values():
        values.extend(value if isinstance(value, list) else [value or ""])
    return values


class _MemberState(click.Choice):
    """A member's state as people write it (opted-out, "opted out", as the list shows it) or as it is
    stored (opted_out), in any case; given back as stored."""

    def __init__(self) -> None:
        super().__init__([status.replace("_", "-") for status in STATUSES], case_sensitive=False)

    def convert(self, value, param, ctx):
        """The state as stored: opted-out, opted_out and "Opted out" are all opted_out."""
        if isinstance(value, str):
            value = "-".join(value.replace("_", " ").split())
        return super().convert(value, param, ctx).replace("-", "_")


@members_cli.command("list")
@click.option("--community", "community_name", required=True)
@click.option("--status", type=_MemberState(), help="Only members in this state.")
def list_members_command(community_name, status) -> None:
    """The community's members: phone, state, language, channel, and when each last texted."""
    with clear_errors():
        community = community_named(db.session, community_name)
        rows = roster(db.session, community, status)
    if not rows:
        which = f"{status.replace('_', ' ')} members" if status else "members"
        click.echo(f"{community.name} has no {which}" + ("." if status else "; add one with `hearth member add`."))
        return
    zone = ZoneInfo(community.timezone)
    table = [("name", "phone", "state", "language", "channel", f"last texted ({community.timezone})")]
    for member, last_texted in rows:
        state = member.status.replace("_", " ")
        if member.status == "paused" and member.paused_until:
            state += f" until {member.paused_until.astimezone(zone):%d %b}"
        table.append((member.name, national(member.phone, community.region), state,
                      member.language or community.language, member.channel,
                      f"{last_texted.astimezone(zone):%Y-%m-%d %H:%M}" if last_texted else "never"))
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]) - 1)]
    for row in table:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[-1])
    counts = Counter(member.status for member, _ in rows)
    summary = ", ".join(f"{counts[s]} {s.replace('_', ' ')}" for s in STATUSES if counts[s])
    click.echo(f"{len(rows)} member(s) of {community.name}" + (f": {summary}." if summary else "."))


@facilitator_cli.command("add")
@click.option("--community", "community_name", required=True)
@click.option("--name", required=True)
@click.option("--phone", required=True)
@click.option("--on-call", is_flag=True, help="Gets the community's alerts; while nobody is on call, every"
              " facilitator gets them.")
def add_facilitator_command(community_name, name, phone, on_call) -> None:
    """Add a facilitator."""
    with clear_errors():
        community = community_named(db.session, community_name)
        facilitator = add_facilitator(db.session, community, name, phone, on_call=on_call, actor=operator())
        db.session.commit()
    click.echo(f"Added facilitator {facilitator.name} ({facilitator.phone})" + (", on call." if on_call else "."))


def register(app: Flask) -> None:
    """Add the directory groups."""
    for group in (community_cli, member_cli, members_cli, facilitator_cli):
        app.cli.add_command(group)
