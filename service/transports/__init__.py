"""Ways out: Twilio, and the console for local use."""

from .base import SendResult, Transport, make_transport

__all__ = ["SendResult", "Transport", "make_transport"]
