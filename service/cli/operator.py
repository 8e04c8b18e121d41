"""Who runs a command, for the audit log."""

from __future__ import annotations

import getpass


def operator(how: str = "cli") -> str:
    """`cli:<login>`: the account the command runs as (`how` names the way in, `cli:import`)."""
    try:
        login = getpass.getuser()
    except (KeyError, OSError):  # no login name and no passwd entry (a bare container)
        login = "unknown"
    return f"{how}:{login}"
