"""Who runs a command, for the audit log."""

from __future__ import annotations

import getpass
import os

from service.models import AuditEvent


def operator(how: str = "cli") -> str:
    """`cli:<login>`: the account the command runs as (`how` names the way in, `cli:import`), cut
    to what the audit log holds (a directory login can be long: first.last@dept.example.ac.uk).

    Run through sudo as another account (`sudo -u hearth hearth ...`, as a deployment whose settings
    only its own account can read asks), the person who ran sudo comes first, `cli:alice(sudo:hearth)`:
    otherwise every change would name the service account, and the log could not say who made it.
    """
    try:
        login = getpass.getuser()
    except (KeyError, OSError):  # no login name and no passwd entry (a bare container)
        login = "unknown"
    person = os.environ.get("SUDO_USER")
    who = f"{person}(sudo:{login})" if person and person != login else login
    return f"{how}:{who}"[:AuditEvent.__table__.c.actor.type.length]
