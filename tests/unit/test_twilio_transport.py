"""What the Twilio transport makes of a carrier it cannot reach, that never answers, or that refuses."""

from __future__ import annotations

import json
import socket
import threading

import pytest

from service.config import Config
from service.exceptions import PermanentSendError, RateLimitedSendError, SetupSendError, TransientSendError
from service.transports.twilio import TwilioTransport, _seconds
from tests.support import answering

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


@pytest.mark.parametrize("status, code, error", [
    (429, 20429, RateLimitedSendError), (503, 20503, TransientSendError), (401, 20003, SetupSendError),
    (400, 21610, PermanentSendError), (400, 21211, PermanentSendError),
])
def test_an_error_answered_as_rfc_9457_problem_details_is_classified_as_the_legacy_one_is(status, code, error):
    """The SDK raises TwilioServiceException, not TwilioRestException, for an error in the RFC 9457
    shape (type, title, status, code): its code still says retry, wait for the settings, or give up."""
    problem = json.dumps({"type": f"https://www.twilio.com/docs/errors/{code}", "title": "Refused",
                          "status": status, "code": code, "detail": f"refused ({code})"}).encode()

    with answering(status, problem, "application/problem+json", {"Retry-After": "2"}) as base:
        with pytest.raises(error) as refused:
            transport(base, timeout=5).send("+447700900123", "hi", None)
    assert type(refused.value) is error
    assert refused.value.code == code and f"refused ({code})" in str(refused.value)
    if error is RateLimitedSendError:
        assert refused.value.retry_after == 2.0


def test_the_twilio_sdk_hearth_asks_for_raises_problem_details_as_their_own_error():
    """The transport imports TwilioServiceException, which twilio-python has from 9.10 on: an older
    9.x, kept by an install made before, would stop every process that sends from starting."""
    import re
    import tomllib
    from pathlib import Path

    project = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())["project"]
    [twilio] = [spec for spec in project["dependencies"] if re.match(r"twilio\s*[<>=]", spec)]
    least = re.search(r">=\s*([\d.]+)", twilio)
    assert least is not None and tuple(map(int, least.group(1).split("."))) >= (9, 10), twilio
