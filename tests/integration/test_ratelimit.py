"""The send rate limit is kept in Redis, so it holds across limiter instances (workers)."""

import time

import pytest

from service.ratelimit import SendRateLimiter
from tests.conftest import REDIS_URL


def test_the_window_and_the_spacing_are_shared_between_workers(redis):
    first = SendRateLimiter(REDIS_URL, 3)
    second = SendRateLimiter(REDIS_URL, 3)
    assert first.acquire("+441632960000") == 0
    # The next send, from any worker, waits for the gap (1/3 s)...
    assert not second.redis.set("hearth-send-gap:+441632960000", 1, nx=True, px=second.gap_ms)
    # ...and for the window once three have gone in the same second.
    for _ in range(2):
        assert first.limiter.hit(first.item, "hearth-send", "+441632960000")
    assert not second.limiter.test(second.item, "hearth-send", "+441632960000")
    assert first.limiter.test(first.item, "hearth-send", "+440000000000"), "each sender has its own window"


def test_a_blocked_sender_waits_then_goes(redis):
    waits = []
    limiter = SendRateLimiter(REDIS_URL, 2, sleep=lambda s: (waits.append(s), __import__("time").sleep(s)))
    for _ in range(3):
        limiter.acquire("sender")
    assert waits and all(0 < w <= 1.0 for w in waits)


def test_zero_turns_the_limit_off(redis):
    limiter = SendRateLimiter(REDIS_URL, 0)
    assert all(limiter.acquire("s") == 0 for _ in range(100))


def test_a_fractional_rate_never_allows_more_than_asked_in_a_second(redis):
    above_one = SendRateLimiter(REDIS_URL, 12.5)
    assert (above_one.item.amount, above_one.item.get_expiry()) == (12, 1)
    below_one = SendRateLimiter(REDIS_URL, 0.2)
    assert (below_one.item.amount, below_one.item.get_expiry()) == (1, 5)


def test_a_carriers_hold_stops_every_workers_sends_for_as_long_as_it_asked(redis):
    waits = []
    hold_key = "hearth-send-hold:+441632960000"
    for rate in (0, 5):
        waits.clear()
        one = SendRateLimiter(REDIS_URL, rate)
        # Its sleep records the wait and ends the hold, so the test does not wait 25 s.
        other = SendRateLimiter(REDIS_URL, rate, sleep=lambda s: (waits.append(s), redis.delete(hold_key)))
        one.hold("+441632960000", 25)
        one.hold("+441632960000", 0.5)  # a shorter hold does not shorten the one in force
        waits_before = other.redis.pttl(hold_key)
        assert 20000 < waits_before <= 25000  # however slow the machine, not the half second
        assert other.acquire("+441632960000") > 20 and max(waits) > 20, f"rate {rate}: the held sender waited"
        assert other.acquire("+440000000000") == 0, "another sender is not held"
        redis.flushdb()


def test_a_hold_set_while_a_send_waits_for_room_in_the_window_holds_that_send_too(redis):
    """Another worker's 429 arrives while this one waits for the window: this send waits it out."""
    sender = "+441632960000"
    other = SendRateLimiter(REDIS_URL, 1)
    holds = []

    def sleep(seconds):
        if redis.pttl(f"hearth-send-hold:{sender}") > 5000:  # waiting out the hold: note it, end it
            holds.append(seconds)
            redis.delete(f"hearth-send-hold:{sender}")
            return
        if not holds and not redis.exists(f"hearth-send-hold:{sender}"):
            other.hold(sender, 30)  # while this send waits for the window
        time.sleep(seconds)

    waiting = SendRateLimiter(REDIS_URL, 1, sleep=sleep)
    assert waiting.limiter.hit(waiting.item, "hearth-send", sender)  # the second's one send is taken
    waiting.acquire(sender)
    assert holds and holds[0] > 5, "the send waited for the hold, not only for the window"


def test_a_message_of_more_parts_than_a_second_allows_holds_the_next_send_for_all_of_them(redis):
    """Three parts at one part every 2 s: the next send waits 6 s, not the 2 s of one part."""
    limiter = SendRateLimiter(REDIS_URL, 0.5)
    assert limiter.acquire("+441632960000", cost=3) == 0
    assert limiter.redis.pttl("hearth-send-gap:+441632960000") > 4000  # however slow the machine
    assert not limiter.limiter.test(limiter.item, "hearth-send", "+441632960000")


def test_a_very_long_message_holds_the_next_send_no_longer_than_the_longest_gap(redis):
    """24 parts at 1/s would hold a crisis alert behind it for 24 s, near its job's time."""
    from service.ratelimit import MAX_GAP_MS

    limiter = SendRateLimiter(REDIS_URL, 1)
    limiter.acquire("+441632960000", cost=24)
    assert 0 < limiter.redis.pttl("hearth-send-gap:+441632960000") <= MAX_GAP_MS


def test_sends_a_carriers_hold_kept_back_go_out_at_the_rate_when_it_ends(redis):
    """Rate 1/s, three workers, a 2.5 s hold: they go one a second after it, not all at once
    (each had taken its turn in the window during the hold)."""
    import threading

    sender = "+441632960000"
    SendRateLimiter(REDIS_URL, 1).hold(sender, 2.5)
    sent = []

    def worker():
        SendRateLimiter(REDIS_URL, 1).acquire(sender)
        sent.append(time.monotonic())

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    sent.sort()
    gaps = [round(b - a, 3) for a, b in zip(sent, sent[1:])]
    assert min(gaps) > 0.9, f"at 1 a second, sends went {gaps} s apart"


def test_two_holds_at_once_never_shorten_the_longer_one(redis):
    """Two workers' 429s land together (Retry-After 1 and 10): the 10 s hold stands."""
    sender = "+441632960000"
    long_, short = SendRateLimiter(REDIS_URL, 0), SendRateLimiter(REDIS_URL, 0)
    command, landed = short.redis.execute_command, []

    def then_the_other_429(*args, **options):
        answer = command(*args, **options)
        if not landed:  # the other worker's 429 lands right after this worker's first round trip
            landed.append(long_.hold(sender, 10))
        return answer

    short.redis.execute_command = then_the_other_429
    short.hold(sender, 1)
    assert landed and redis.pttl(f"hearth-send-hold:{sender}") > 5000, "the 10 s hold was shortened to 1 s"


def test_a_short_hold_is_not_stretched_to_the_gap_of_the_turn_a_send_took_before_it(redis):
    """A 10-part message at 1/s meets a 0.5 s hold: the 10 s gap its turn set is given back, so
    the half-second hold does not keep it (and every later send) back 10 s."""
    sender = "+441632960000"
    long_waits = []

    def sleep(seconds):
        if seconds > 5:  # a wait for the gap of its own first turn: noted, and ended at once
            long_waits.append(seconds)
            redis.delete(f"hearth-send-gap:{sender}")
        else:
            time.sleep(seconds)

    limiter = SendRateLimiter(REDIS_URL, 1, sleep=sleep)
    limiter.hold(sender, 0.5)
    limiter.acquire(sender, cost=10)
    assert long_waits == [], f"a 0.5 s hold kept a 10-part message back {long_waits} s more"


def test_a_wait_asks_whether_to_go_on_before_every_pause_and_gives_up_when_told(redis):
    import pytest

    from service.ratelimit import GaveUp

    pauses, answers = [], iter([True, True, False])
    limiter = SendRateLimiter(REDIS_URL, 0, sleep=pauses.append)
    limiter.hold("+441632960000", 30)  # a carrier's 429: the wait is the hold's, pause after pause
    with pytest.raises(GaveUp):
        limiter.acquire("+441632960000", alive=lambda: next(answers))
    assert len(pauses) == 2  # paused twice, then asked a third time and told to stop
    assert SendRateLimiter(REDIS_URL, 0).acquire("+440000000000", alive=lambda: False) == 0, "no wait, no question"


def test_replies_counted_after_the_fact_hold_back_the_next_send_by_their_parts(redis):
    waits = []
    limiter = SendRateLimiter(REDIS_URL, 2, sleep=lambda s: (waits.append(s), time.sleep(s)))
    limiter.charge("+441632960000", cost=2)  # a two-part reply in a webhook's answer: a second at 2/s
    assert limiter.acquire("+441632960000") > 0.5 and sum(waits) > 0.5
    limiter.charge("+441632960000", cost=10_000)  # a burst of replies never holds the next send for long
    assert 0 < limiter.redis.pttl("hearth-send-replied:+441632960000") <= 10_000
    assert SendRateLimiter(REDIS_URL, 0).charge("+441632960000") is None  # no limit, nothing to count


def test_a_send_waits_for_all_the_parts_of_the_replies_counted(redis):
    """Five parts of replies at 1/s: the next broadcast message waits five seconds, not one."""
    waits = []
    limiter = SendRateLimiter(REDIS_URL, 1, sleep=waits.append)
    limiter.charge("+441632960000", cost=5)
    limiter.acquire("+441632960000")
    assert sum(waits) > 4.5, waits


def test_an_urgent_send_does_not_wait_for_replies_counted_after_the_fact(redis):
    """A steady stream of replies at the rate must not hold a crisis alert for as long as it lasts."""
    waits = []
    limiter = SendRateLimiter(REDIS_URL, 1, sleep=lambda s: (waits.append(s), time.sleep(s)))
    limiter.charge("+441632960000", cost=10)  # ten replies' worth: 10 s at 1/s
    limiter.acquire("+441632960000", urgent=True)
    assert waits == [], f"the urgent send waited {waits} s for the replies"
    assert limiter.redis.pttl("hearth-send-replied:+441632960000") > 5000, "the others still wait for them"


def test_an_urgent_send_takes_the_next_turn_before_the_sends_already_waiting(redis):
    """Rate 4/s; three workers wait with broadcast messages when a crisis alert comes to a fourth:
    the alert goes next, not after them."""
    import threading

    sender = "+441632960000"
    redis.set(f"hearth-send-gap:{sender}", "a long message", px=2000)  # the next turn is 2 s away
    order, lock = [], threading.Lock()

    def send(name: str, urgent: bool = False) -> None:
        SendRateLimiter(REDIS_URL, 4).acquire(sender, urgent=urgent)
        with lock:
            order.append(name)

    threads = [threading.Thread(target=send, args=(f"broadcast {i}",)) for i in range(3)]
    threads.append(threading.Thread(target=send, args=("alert", True)))
    for thread in threads:  # the alert's worker is the last to ask
        thread.start()
    for thread in threads:
        thread.join()
    assert order[0] == "alert", order


def test_an_urgent_send_that_stops_waiting_holds_nobody_back_for_long(redis):
    """A worker killed while its alert waits leaves its mark for at most URGENT_MARK_MS."""
    import pytest

    from service.ratelimit import URGENT_MARK_MS, GaveUp

    sender = "+441632960000"
    limiter = SendRateLimiter(REDIS_URL, 0.2, sleep=lambda s: None)
    limiter.acquire(sender)  # the next turn is 5 s away
    with pytest.raises(GaveUp):
        limiter.acquire(sender, urgent=True, alive=lambda: False)
    marked = redis.pttl(f"hearth-send-urgent:{sender}")
    assert 0 < marked <= URGENT_MARK_MS, "the alert's wait is known to the others, and only for a while"


def test_a_send_waits_for_the_replies_counted_once_not_for_a_stream_of_them(redis):
    """Replies keep coming at the rate: a broadcast message waits for those counted when it asked,
    then takes the next turn; it is not held back for as long as the stream lasts."""
    sender = "+441632960000"
    waits = []

    def sleep(seconds):
        waits.append(seconds)
        assert len(waits) < 5, f"still waiting after {waits}"
        limiter.charge(sender)

    limiter = SendRateLimiter(REDIS_URL, 1, sleep=sleep)
    limiter.charge(sender, cost=3)  # 3 s of replies; one more comes during every pause
    assert limiter.acquire(sender) > 0
    assert len(waits) == 1, f"it waited {waits}"


@pytest.mark.parametrize("rate", [0, 4])
def test_an_urgent_send_waiting_out_a_carriers_hold_goes_before_a_send_that_wakes_first(redis, rate):
    """An alert and a broadcast message both wait out a 429's hold (with a rate or none); the
    broadcast's worker happens to wake first when it ends: the alert still goes first."""
    import threading

    sender = "+441632960000"
    hold_key = f"hearth-send-hold:{sender}"
    SendRateLimiter(REDIS_URL, rate).hold(sender, 30)
    order, lock = [], threading.Lock()
    alert_held, broadcast_held, broadcast_moved, end_alerts_wait, end_broadcasts_wait = (
        threading.Event() for _ in range(5))

    def sleep_as(held: threading.Event, end_of_wait: threading.Event):
        def sleep(seconds):
            if redis.exists(hold_key):  # waiting out the hold: until the test says it is over
                held.set()
                assert end_of_wait.wait(10)
            else:  # any other wait: the broadcast's, after the hold, while the alert goes first
                broadcast_moved.set()
                time.sleep(seconds)
        return sleep

    def send(name, sleep, urgent):
        SendRateLimiter(REDIS_URL, rate, sleep=sleep).acquire(sender, urgent=urgent)
        with lock:
            order.append(name)
        if name == "broadcast":
            broadcast_moved.set()

    alert = threading.Thread(target=send, args=("alert", sleep_as(alert_held, end_alerts_wait), True))
    broadcast = threading.Thread(target=send, args=("broadcast", sleep_as(broadcast_held, end_broadcasts_wait),
                                                    False))
    alert.start()
    assert alert_held.wait(10)
    broadcast.start()
    assert broadcast_held.wait(10)
    redis.delete(hold_key)  # the hold is over, and the broadcast's worker wakes first
    end_broadcasts_wait.set()
    assert broadcast_moved.wait(10)  # it went, or waits for the alert
    end_alerts_wait.set()
    alert.join(10)
    broadcast.join(10)
    assert order == ["alert", "broadcast"], order




def test_a_send_that_waits_for_an_urgent_one_waiting_out_a_hold_waits_the_hold_out_in_one_pause(redis):
    """An alert waits out a 10 s hold: a broadcast message behind it sleeps until the hold ends,
    rather than asking Redis again every 10 ms for all of it."""
    sender = "+441632960000"
    limiter = SendRateLimiter(REDIS_URL, 4)
    limiter.hold(sender, 10)
    seconds, micros = redis.time()
    redis.zadd(f"hearth-send-urgent:{sender}", {"the alert": seconds * 1000 + micros // 1000 + 12_000})
    waits = []

    def sleep(pause):  # notes the pause; the first ends the hold and the alert's wait, as the alert goes
        waits.append(pause)
        redis.delete(f"hearth-send-hold:{sender}", f"hearth-send-urgent:{sender}")

    SendRateLimiter(REDIS_URL, 4, sleep=sleep).acquire(sender)
    assert waits and waits[0] > 5, f"it asked again after {waits[0]} s of a 10 s hold"

def test_with_no_rate_the_sends_a_carriers_hold_kept_back_go_out_spaced_when_it_ends(redis):
    """No rate set: the sends a 429 held do not all go at once when it ends (another 429), but one
    part every AFTER_HOLD_GAP_MS (100 ms), for AFTER_HOLD_MS (10 s) after it; then at once again."""
    sender = "+441632960000"
    waits = []

    def sleep(seconds):  # notes the wait and ends it, so the test waits for nothing
        waits.append(seconds)
        redis.delete(f"hearth-send-hold:{sender}", f"hearth-send-gap:{sender}")

    limiter = SendRateLimiter(REDIS_URL, 0, sleep=sleep)
    limiter.hold(sender, 30)
    spaced_for = redis.pttl(f"hearth-send-paced:{sender}")
    assert limiter.acquire(sender, cost=50) > 20  # the first waits the hold out, then goes
    waits.clear()
    assert limiter.acquire(sender) > 0, "the next went at once, with the first"
    assert len(waits) == 1 and 4 < waits[0] <= 5, f"not 50 parts at 100 ms: {waits}"
    assert 30_000 < spaced_for <= 40_000, "spaced until 10 s after the hold"
    redis.delete(f"hearth-send-paced:{sender}")  # those 10 s later
    assert limiter.acquire(sender) == 0 and limiter.acquire(sender) == 0
