"""What a process needs to send: the transport and the rate limiter, built on first use."""

from __future__ import annotations

from functools import cached_property

from .ratelimit import SendRateLimiter
from .receipts import Receipts
from .transports import make_transport


class Runtime:
    """Lazily built collaborators of one app."""

    def __init__(self, config, redis) -> None:
        self.config = config
        self.redis = redis

    @cached_property
    def transport(self):
        """The configured transport."""
        return make_transport(self.config)

    @cached_property
    def limiter(self) -> SendRateLimiter:
        """The per-sender send rate limit."""
        return SendRateLimiter(self.config.redis_url, self.config.send_rate, redis=self.redis)

    @cached_property
    def receipts(self) -> Receipts:
        """Sends the carrier took that the database could not record yet."""
        return Receipts(self.redis)
