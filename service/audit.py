"""Writing to the append-only audit log."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from .clock import now
from .models import AuditEvent


def record(session: Session, actor: str, action: str, *, community_id: int | None = None,
           member_id: int | None = None, **details: Any) -> AuditEvent:
    """Add one audit event to the session's transaction."""
    event = AuditEvent(at=now(), actor=actor, action=action, community_id=community_id,
                       member_id=member_id, details=details)
    session.add(event)
    return event
