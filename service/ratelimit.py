"""The send rate limit per sender, kept in Redis so it holds across every worker on every host."""

from __future__ import annotations

import math
import time
from typing import Callable

from limits import RateLimitItemPerSecond
from limits.storage import RedisStorage
from limits.strategies import MovingWindowRateLimiter


class SendRateLimiter:
    """A moving window: never more than `rate` sends in any one-second span, per sender."""

    def __init__(self, redis_url: str, rate: float, sleep: Callable[[float], None] = time.sleep) -> None:
        self.rate = rate
        self.sleep = sleep
        if rate <= 0:
            self.item = None
            return
        # limits counts whole hits per window. Never allow more than asked in any second: 12.5/s
        # becomes 12/s, and below one a second, 0.2/s becomes 1 in every 5 seconds.
        if rate >= 1:
            self.item = RateLimitItemPerSecond(int(rate))
        else:
            self.item = RateLimitItemPerSecond(1, multiples=math.ceil(1 / rate))
        self.limiter = MovingWindowRateLimiter(RedisStorage(redis_url))

    def acquire(self, sender: str) -> float:
        """Block until `sender` may send one more message; return the seconds waited."""
        if self.item is None:
            return 0.0
        waited = 0.0
        while not self.limiter.hit(self.item, "hearth-send", sender):
            reset_at, _remaining = self.limiter.get_window_stats(self.item, "hearth-send", sender)
            pause = min(max(reset_at - time.time(), 0.002), 1.0)
            self.sleep(pause)
            waited += pause
        return waited
