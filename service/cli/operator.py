"""Who runs a command, for the audit log."""

from __future__ import annotations

import getpass

from service.models import AuditEvent


def operator(how: str = "cli") -> str:
    """`cli:<login>`: the account the command runs as (`how` names the way in, `cli:import`),
    cut to what the audit log holds (a directory login can be long: first.last@dept.example.ac.uk)."""
    try:
        login = getpass.getuser()
    except (KeyError, OSError):  # no login name and no passwd entry (a bare container)
        login = "unknown"
    return f"{how}:{login}"[:AuditEvent.__table__.c.actor.type.length]
