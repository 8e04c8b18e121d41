"""What a process needs to send: the transport and the rate limiter, built on first use."""

from __future__ import annotations

from functools import cached_property

from .ratelimit import SendRateLimiter
from .transports import make_transport


class Runtime:
    """Lazily built collaborators of one app."""

    def __init__(self, config) -> None:
        self.config = config

    @cached_property
    def transport(self):
        """The configured transport."""
        return make_transport(self.config)

    @cached_property
    def limiter(self) -> SendRateLimiter:
        """The per-sender send rate limit."""
        return SendRateLimiter(self.config.redis_url, self.config.send_rate)
