"""Hearth's SQLAlchemy 2.0 models."""

from .audit import AuditEvent
from .base import Base
from .community import Community, Facilitator
from .conversation import Alert, Conversation, FlowVersion, Result, Schedule, Timer
from .member import Member
from .messages import InboundMessage, OutboundMessage, StatusEvent

__all__ = [
    "Alert", "AuditEvent", "Base", "Community", "Conversation", "Facilitator", "FlowVersion",
    "InboundMessage", "Member", "OutboundMessage", "Result", "Schedule", "StatusEvent", "Timer",
]
