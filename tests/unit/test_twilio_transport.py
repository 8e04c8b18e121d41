"""What the Twilio transport makes of a carrier it cannot reach, or that never answers."""

from __future__ import annotations

import socket
import threading

import pytest

from service.config import Config
from service.exceptions import TransientSendError
from service.transports.twilio import TwilioTransport, _seconds

pytestmark = pytest.mark.dbfree


def transport(base: str, timeout: float) -> TwilioTransport:
    config = Config(database_url="sqlite://", twilio_account_sid="AC" + "1" * 32, twilio_auth_token="t",
                    twilio_from_number="+441632960000", twilio_api_base=base, transport="twilio")
    return TwilioTransport(config, timeout=timeout)


def test_a_carrier_that_takes_the_request_and_never_answers_may_have_taken_the_message():
    listener = socket.create_server(("127.0.0.1", 0))
    taken = threading.Event()

    def take_and_say_nothing():
        connection, _ = listener.accept()
        connection.recv(65536)  # the whole request, read and kept: the carrier has it
        taken.set()
        connection.recv(1)  # until the client hangs up
        connection.close()

    thread = threading.Thread(target=take_and_say_nothing, daemon=True)
    thread.start()
    try:
        with pytest.raises(TransientSendError) as unanswered:
            transport(f"http://127.0.0.1:{listener.getsockname()[1]}", timeout=0.5).send("+447700900123", "hi", None)
    finally:
        thread.join(5)
        listener.close()
    assert taken.is_set()
    assert unanswered.value.maybe_taken
    assert "it may have taken the message" in str(unanswered.value)


def test_a_carrier_that_cannot_be_reached_has_surely_not_taken_it():
    with socket.create_server(("127.0.0.1", 0)) as closed:
        port = closed.getsockname()[1]
    with pytest.raises(TransientSendError) as unreached:  # nothing listens there now: refused
        transport(f"http://127.0.0.1:{port}", timeout=5).send("+447700900123", "hi", None)
    assert not unreached.value.maybe_taken
    assert str(unreached.value) == "could not reach Twilio: ConnectionError"


@pytest.mark.parametrize("header, seconds", [
    ("3", 3.0), ("0.5", 0.5), (None, 1.0), ("0", 0.1), ("3600", 10.0), ("nan", 1.0), ("inf", 1.0),
    ("Wed, 21 Oct 2026 07:28:00 GMT", 1.0), ("-5", 0.1),
])
def test_retry_after_is_read_as_seconds_within_bounds(header, seconds):
    assert _seconds(header) == seconds
