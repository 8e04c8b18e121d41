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

    Urgent sends (a crisis signpost, a facilitator's alert) go first: while one waits for the gap,
    no other send takes it, however many workers wait with broadcast messages. Replies that left in
    a webhook's TwiML (`charge`) hold back the sends after them, but not urgent ones.

    The carrier can also ask Hearth to wait (a 429): `hold` stops every worker's sends from that
    sender for as long as it asked, with or without a rate. Urgent sends waiting out a hold still
    go first when it ends. With no rate (`rate` 0), the sends after a hold take turns spaced
    AFTER_HOLD_GAP_MS apart, from when it is set until AFTER_HOLD_MS after it ends, so that those
    it kept back do not all go at once and meet another 429.
    """

    def __init__(self, redis_url: str, rate: float, sleep: Callable[[float], None] = time.sleep,
                 redis: Redis | None = None) -> None:
        self.rate = rate
        self.sleep = sleep
        self.redis = redis if redis is not None else Redis.from_url(redis_url)
        self._take, self._charge, self._hold, self._give_back, self._mark = (
            self.redis.register_script(script) for script in (_TAKE, _CHARGE, _HOLD, _GIVE_BACK, _MARK))
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

    def acquire(self, sender: str, cost: int = 1, alive: Callable[[], bool] | None = None,
                urgent: bool = False) -> float:
        """Block until `sender` may send a message of `cost` segments; return the seconds waited.

        Carriers count segments: a three-part message uses three of the second's allowance. One
        of more parts than a second allows (three parts at 1/s) takes the whole of it, and the
        next send waits as long as its parts take at the rate (3 s), so the rate holds on average.
        A carrier's hold is looked at once the send has its turn: one in force (another worker's
        429, set perhaps while this send waited) is waited out, and the turn taken afresh after it,
        so the sends it held go out spaced rather than at once when it ends: at the rate, or with
        no rate AFTER_HOLD_GAP_MS apart (until AFTER_HOLD_MS after the hold ends).

        An `urgent` send takes the next turn before any other send waiting for it, a hold's end
        included (it stays marked as waiting while it waits the hold out), and does not wait for
        the replies `charge` counted (the replies were sent; an alert must not queue behind them).
        Other sends wait for both.

        `alive` is asked before every pause whether the send still wants its turn (a worker keeps
        its claim on the message meanwhile); when it answers False, `GaveUp` is raised.
        """
        sleep = self.sleep if alive is None else _asking(alive, self.sleep)
        waited = 0.0
        turn = uuid.uuid4().hex  # this send's mark: on the gap its turn sets, and among the urgent sends waiting
        paced = self.item is not None  # takes turns: at the rate, or with none after a hold
        while True:
            took = paced
            if paced:
                waited += self._take_turn(sender, turn, cost, sleep, urgent)
            with self.redis.pipeline(transaction=False) as pipeline:
                held, pacing = pipeline.pttl(_hold_key(sender)).pttl(_pace_key(sender)).execute()
            if not paced and pacing > 0:  # no rate, but a hold is in force or ended a moment ago
                paced = True
                if held <= 0:
                    continue
            if held <= 0:
                return waited
            if urgent:  # still the first to go when the hold ends, whichever worker wakes first
                self._mark(keys=(_urgent_key(sender),), args=(turn, held + URGENT_MARK_MS))
            if took:  # the gap this turn set is given back: it must not outlast the hold
                self._give_back(keys=(_gap_key(sender),), args=(turn,))
            sleep(held / 1000)
            waited += held / 1000

    def _take_turn(self, sender: str, turn: str, cost: int, sleep: Callable[[float], None], urgent: bool) -> float:
        """Wait for the gap after the sender's last send (and, unless `urgent`, for the urgent sends
        waiting and the replies charged), then for room in its window (with a rate); mark the gap
        key with `turn`; the seconds waited."""
        waited = 0.0
        gap_key = _gap_key(sender)
        parts = max(1, cost)
        if self.item is not None:
            cost = min(parts, self.item.amount)  # the window never grants more than its amount at once
        gap_ms = self.gap_ms if self.item is not None else AFTER_HOLD_GAP_MS
        # At most MAX_GAP_MS after a long text: the next send (a crisis alert, say) must not wait
        # past its job's time for one message of many parts.
        gap = min(gap_ms * parts, max(gap_ms, MAX_GAP_MS))
        keys = (gap_key, _urgent_key(sender), _replied_key(sender), _hold_key(sender))
        replies_waited = urgent
        while True:
            # 0: the turn is taken; otherwise the milliseconds until it is worth asking again,
            # negative when they are the replies' to wait for.
            left = self._take(keys=keys, args=(turn, gap, int(urgent), int(replies_waited), URGENT_MARK_MS))
            if left == 0:
                break
            # The replies charged are waited for once, in full: a stream of them at the rate must
            # not hold a send back for good. An urgent send asks again at least twice in its mark's
            # time, so the others keep standing aside.
            replies_waited = replies_waited or left < 0
            pause = (min(left, URGENT_MARK_MS // 2) if urgent else abs(left)) / 1000
            sleep(pause)
            waited += pause
        while self.item is not None and not self.limiter.hit(self.item, "hearth-send", sender, cost=cost):
            reset_at, _remaining = self.limiter.get_window_stats(self.item, "hearth-send", sender)
            pause = min(max(reset_at - time.time(), 0.002), 1.0)
            sleep(pause)
            waited += pause
        return waited

    def charge(self, sender: str, cost: int = 1) -> None:
        """Count, after the fact, a message that left without taking a turn: a reply in a webhook's
        TwiML, sent by the carrier from the number texted. The sends after it, but urgent ones, wait
        as long as its parts take at the rate; never more than MAX_GAP_MS from now, and each send
        waits for the replies once, so that a steady stream of them at the rate cannot hold a
        check-in or a broadcast back past its job's time (the stream and the workers' sends then go
        over the rate by at most one send per worker each MAX_GAP_MS). Urgent sends do not wait
        for replies. The window counts the workers' sends only."""
        if self.item is None:
            return
        self._charge(keys=(_replied_key(sender),), args=(self.gap_ms * max(1, cost), MAX_GAP_MS))

    def hold(self, sender: str, seconds: float) -> None:
        """Send nothing from `sender` for `seconds`, in any worker: a hold in force is stretched,
        never shortened (in one step, so two 429s at once keep the longer). Without a rate, sends
        are spaced until AFTER_HOLD_MS after it ends."""
        self._hold(keys=(_hold_key(sender), _pace_key(sender)), args=(max(1, int(seconds * 1000)), AFTER_HOLD_MS))


class GaveUp(Exception):
    """A wait for the rate limit ended because the send no longer wants its turn."""


def _asking(alive: Callable[[], bool], sleep: Callable[[float], None]) -> Callable[[float], None]:
    """`sleep`, after asking `alive` whether to go on waiting."""
    def pause(seconds: float) -> None:
        if not alive():
            raise GaveUp()
        sleep(seconds)
    return pause


# Take the turn (the gap key, KEYS[1], marked ARGV[1] for ARGV[2] ms) unless the gap after the
# last send is still running, or, for a send that is not urgent (ARGV[3] 0), an urgent send waits
# (KEYS[2]: the urgent turns waiting, each known until ARGV[5] ms after it last asked, by Redis's
# clock; then at least the carrier's hold, KEYS[4], is waited out before asking again, as the
# urgent send waits it out too) or, unless they were waited for once (ARGV[4] 1), replies were
# charged (KEYS[3]). 0 when taken, else the ms to wait before asking again: negative when the
# replies' wait.
_TAKE = """
local urgent = ARGV[3] == '1'
local time = redis.call('TIME')
local at = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', at)
local gap = redis.call('PTTL', KEYS[1])
if urgent then
  redis.call('ZADD', KEYS[2], at + tonumber(ARGV[5]), ARGV[1])
  if redis.call('PTTL', KEYS[2]) < tonumber(ARGV[5]) then redis.call('PEXPIRE', KEYS[2], ARGV[5]) end
else
  if redis.call('ZCARD', KEYS[2]) > 0 then return math.max(gap, 10, redis.call('PTTL', KEYS[4])) end
  local replied = redis.call('PTTL', KEYS[3])
  if ARGV[4] == '0' and replied > 0 then return -replied end
end
if gap <= 0 and redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  if urgent then redis.call('ZREM', KEYS[2], ARGV[1]) end
  return 0
end
return math.max(gap, 1)
"""
# Move the replies' gap on by ARGV[1] ms, to at most ARGV[2] ms from now.
_CHARGE = """
local left = math.max(redis.call('PTTL', KEYS[1]), 0)
local total = math.min(left + tonumber(ARGV[1]), tonumber(ARGV[2]))
if total > left then redis.call('SET', KEYS[1], 1, 'PX', total) end
"""
# Set the hold (KEYS[1], ARGV[1] ms) unless one that lasts longer is in force, and the spacing
# after it (KEYS[2], ARGV[2] ms longer) likewise.
_HOLD = """
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], 1, 'PX', ARGV[1]) end
local paced = tonumber(ARGV[1]) + tonumber(ARGV[2])
if redis.call('PTTL', KEYS[2]) < paced then redis.call('SET', KEYS[2], 1, 'PX', paced) end
"""
# Mark an urgent send (ARGV[1]) as waiting among the others (KEYS[1]) for ARGV[2] ms from now, by
# Redis's clock: the hold it waits out and URGENT_MARK_MS after.
_MARK = """
local time = redis.call('TIME')
local at = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
redis.call('ZADD', KEYS[1], at + tonumber(ARGV[2]), ARGV[1])
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[2]) then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
"""
# Remove the gap a turn set, unless another turn's has replaced it.
_GIVE_BACK = "if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end"

MAX_GAP_MS = 10_000
# An urgent send waiting for its turn is known to the others for this long after it last asked
# (it asks at least twice as often), so a worker that stops while it waits holds nobody back.
URGENT_MARK_MS = 2_000
# With no rate, sends after a carrier's hold go one every AFTER_HOLD_GAP_MS (ten a second, the
# default HEARTH_SEND_RATE and a UK long code's rate) until AFTER_HOLD_MS after the hold ends.
AFTER_HOLD_GAP_MS = 100
AFTER_HOLD_MS = 10_000


def _gap_key(sender: str) -> str:
    return f"hearth-send-gap:{sender}"


def _hold_key(sender: str) -> str:
    return f"hearth-send-hold:{sender}"


def _pace_key(sender: str) -> str:
    return f"hearth-send-paced:{sender}"


def _urgent_key(sender: str) -> str:
    return f"hearth-send-urgent:{sender}"


def _replied_key(sender: str) -> str:
    return f"hearth-send-replied:{sender}"
