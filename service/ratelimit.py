"""The send rate limit per sender, kept in Redis so it holds across every worker on every host."""

from __future__ import annotations

import math
import time
import uuid
from typing import Callable

from limits import RateLimitItemPerSecond
from limits.storage import RedisStorage
from limits.strategies import MovingWindowRateLimiter
from redis import Redis


class SendRateLimiter:
    """A moving window (never more than `rate` sends in any second), with sends spaced 1/rate apart.

    The window, from the `limits` library, is the guarantee. The spacing spreads sends inside it:
    without it each second's allowance leaves in a burst, and network jitter on the way to the
    carrier can make two bursts look like more than `rate` in a second at the other end.

    The carrier can also ask Hearth to wait (a 429): `hold` stops every worker's sends from that
    sender for as long as it asked, with or without a rate.
    """

    def __init__(self, redis_url: str, rate: float, sleep: Callable[[float], None] = time.sleep,
                 redis: Redis | None = None) -> None:
        self.rate = rate
        self.sleep = sleep
        self.redis = redis if redis is not None else Redis.from_url(redis_url)
        if rate <= 0:
            self.item = None
            return
        # limits counts whole hits per window. Never allow more than asked in any second: 12.5/s
        # becomes 12/s, and below one a second, 0.2/s becomes 1 in every 5 seconds.
        if rate >= 1:
            self.item = RateLimitItemPerSecond(int(rate))
        else:
            self.item = RateLimitItemPerSecond(1, multiples=math.ceil(1 / rate))
        self.gap_ms = max(1, int(1000 / rate))
        self.limiter = MovingWindowRateLimiter(RedisStorage(redis_url))

    def acquire(self, sender: str, cost: int = 1, alive: Callable[[], bool] | None = None) -> float:
        """Block until `sender` may send a message of `cost` segments; return the seconds waited.

        Carriers count segments: a three-part message uses three of the second's allowance. One
        of more parts than a second allows (three parts at 1/s) takes the whole of it, and the
        next send waits as long as its parts take at the rate (3 s), so the rate holds on average.
        A carrier's hold is looked at once the send has its turn: one in force (another worker's
        429, set perhaps while this send waited) is waited out, and the turn taken afresh after it,
        so the sends it held go out spaced rather than at once when it ends.

        `alive` is asked before every pause whether the send still wants its turn (a worker keeps
        its claim on the message meanwhile); when it answers False, `GaveUp` is raised.
        """
        sleep = self.sleep if alive is None else _asking(alive, self.sleep)
        waited = 0.0
        while True:
            turn = None
            if self.item is not None:
                turn, took = self._take_turn(sender, cost, sleep)
                waited += took
            held = self.redis.pttl(_hold_key(sender))
            if held <= 0:
                return waited
            if turn is not None:  # the gap this turn set is given back: it must not outlast the hold
                self.redis.eval(_GIVE_BACK, 1, _gap_key(sender), turn)
            sleep(held / 1000)
            waited += held / 1000

    def _take_turn(self, sender: str, cost: int, sleep: Callable[[float], None]) -> tuple[str, float]:
        """Wait for the gap after the sender's last send, then for room in its window; the turn's
        own mark on the gap key, and the seconds waited."""
        waited = 0.0
        gap_key = _gap_key(sender)
        parts = max(1, cost)
        cost = min(parts, self.item.amount)  # the window never grants more than its amount at once
        # At most MAX_GAP_MS after a long text: the next send (a crisis alert, say) must not wait
        # past its job's time for one message of many parts.
        gap = min(self.gap_ms * parts, max(self.gap_ms, MAX_GAP_MS))
        turn = uuid.uuid4().hex
        while not self.redis.set(gap_key, turn, nx=True, px=gap):
            pause = max(self.redis.pttl(gap_key), 1) / 1000
            sleep(pause)
            waited += pause
        while not self.limiter.hit(self.item, "hearth-send", sender, cost=cost):
            reset_at, _remaining = self.limiter.get_window_stats(self.item, "hearth-send", sender)
            pause = min(max(reset_at - time.time(), 0.002), 1.0)
            sleep(pause)
            waited += pause
        return turn, waited

    def hold(self, sender: str, seconds: float) -> None:
        """Send nothing from `sender` for `seconds`, in any worker: a hold in force is stretched,
        never shortened (in one step, so two 429s at once keep the longer)."""
        self.redis.eval(_HOLD, 1, _hold_key(sender), max(1, int(seconds * 1000)))


class GaveUp(Exception):
    """A wait for the rate limit ended because the send no longer wants its turn."""


def _asking(alive: Callable[[], bool], sleep: Callable[[float], None]) -> Callable[[float], None]:
    """`sleep`, after asking `alive` whether to go on waiting."""
    def pause(seconds: float) -> None:
        if not alive():
            raise GaveUp()
        sleep(seconds)
    return pause


# Set the hold unless one that lasts longer is in force.
_HOLD = """
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], 1, 'PX', ARGV[1]) end
"""
# Remove the gap a turn set, unless another turn's has replaced it.
_GIVE_BACK = "if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end"

MAX_GAP_MS = 10_000


def _gap_key(sender: str) -> str:
    return f"hearth-send-gap:{sender}"


def _hold_key(sender: str) -> str:
    return f"hearth-send-hold:{sender}"
