"""The Twilio double, driven by the real twilio SDK over loopback HTTP (no mocks)."""

import json
import os
import re
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from service.twilio_double import TwilioDouble, point_client_at, wait_for

ROOT = Path(__file__).resolve().parents[2]

TO = "+447700900123"
FROM = "+447700900001"
SID_RE = re.compile(r"^(SM|CA)[0-9a-f]{32}$")


# -- fixtures -------------------------------------------------------------------------

@pytest.fixture
def double():
    with TwilioDouble() as running:
        yield running


def make_client(double, username=None, password=None, account_sid=None):
    client = Client(username or double.account_sid, password or double.auth_token,
                    account_sid=account_sid, environment={"TWILIO": "double"})
    return point_client_at(client, double.url)


@pytest.fixture
def client(double):
    made = make_client(double)
    yield made
    made.http_client.session.close()


class Receiver:
    """A stdlib HTTP server standing in for Hearth's callback endpoints."""

    def __init__(self):
        self.posts: list[dict] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode()
                params = {k: v[0] for k, v in parse_qs(raw, keep_blank_values=True).items()}
                with receiver.lock:
                    receiver.posts.append({"path": self.path, "params": params,
                                           "headers": dict(self.headers)})
                body = b"<Response/>"
                self.send_response(200)
                self.send_header("Content-Type", "text/xml")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"

    def url(self, path):
        return self.base + path

    def received(self):
        with self.lock:
            return list(self.posts)

    def close(self):
        self.server.shutdown()
        self.thread.join()
        self.server.server_close()


@pytest.fixture
def receiver():
    running = Receiver()
    yield running
    running.close()


def statuses(posts, field="MessageStatus"):
    return [p["params"][field] for p in posts]


def assert_signed(post, base, token):
    validator = RequestValidator(token)
    signature = post["headers"]["X-Twilio-Signature"]
    assert validator.validate(base + post["path"], post["params"], signature)


def send(client, to=TO, body="How are you today? 1-5", **kwargs):
    return client.messages.create(to=to, from_=FROM, body=body, **kwargs)


def control(double, method, name, payload=None):
    data = None if payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(f"{double.url}/_double/{name}", data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.load(response)


def closed_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- messages -------------------------------------------------------------------------

def test_create_message_answers_twilio_json_and_is_recorded(double, client):
    message = send(client, status_callback="http://127.0.0.1:9/twilio/status")

    assert SID_RE.match(message.sid) and message.sid.startswith("SM")
    assert message.account_sid == double.account_sid
    assert (message.to, message.from_, message.body) == (TO, FROM, "How are you today? 1-5")
    assert message.status == "queued"
    assert message.num_segments == "1"
    assert message.direction == "outbound-api"
    assert message.api_version == "2010-04-01"
    assert message.price is None and message.error_code is None and message.error_message is None
    assert message.uri == f"/2010-04-01/Accounts/{double.account_sid}/Messages/{message.sid}.json"
    assert message.date_created is not None  # the SDK parsed our RFC 2822 date

    [request] = double.requests
    assert request["method"] == "POST" and request["status"] == 201 and request["sid"] == message.sid
    assert request["params"]["StatusCallback"] == "http://127.0.0.1:9/twilio/status"
    assert request["params"]["To"] == TO
    assert [m["sid"] for m in double.messages] == [message.sid]


def test_message_via_messaging_service(double, client):
    message = client.messages.create(to=TO, messaging_service_sid="MG" + "1" * 32, body="hi")

    assert message.messaging_service_sid == "MG" + "1" * 32
    assert message.from_ is None
    assert message.status == "accepted"


def test_a_messaging_service_message_is_answered_with_no_segment_count_until_it_is_sent(double, client):
    # Twilio counts a Messaging Service's message once it has picked a sender: its answer says "0".
    message = client.messages.create(to=TO, messaging_service_sid="MG" + "1" * 32, body="a" * 161)

    assert message.num_segments == "0"
    double.wait_for(lambda: double.message(message.sid)["status"] == "delivered")
    assert double.message(message.sid)["num_segments"] == "2"


def test_fetch_message_shows_its_current_status(double, client):
    message = send(client)
    double.wait_for(lambda: double.message(message.sid)["status"] == "delivered")

    fetched = client.messages(message.sid).fetch()

    assert fetched.status == "delivered" and fetched.date_sent is not None
    with pytest.raises(TwilioRestException) as info:
        client.messages("SM" + "f" * 32).fetch()
    assert (info.value.status, info.value.code) == (404, 20404)


def test_segments_reported_through_the_sdk(client):
    assert send(client, body="a" * 161).num_segments == "2"
    assert send(client, body="\u2019" + "a" * 70).num_segments == "2"


@pytest.mark.parametrize("kwargs, code", [
    ({"to": ""}, 21604),
    ({"body": ""}, 21602),
    ({"to": "07700 900123"}, 21211),
    ({"to": "not-a-number"}, 21211),
])
def test_validation_errors(double, client, kwargs, code):
    with pytest.raises(TwilioRestException) as info:
        send(client, **kwargs)

    assert (info.value.status, info.value.code) == (400, code)
    assert double.messages == []
    assert double.requests[-1]["code"] == code


def test_missing_sender_is_21603(client):
    with pytest.raises(TwilioRestException) as info:
        client.messages.create(to=TO, body="hi")
    assert (info.value.status, info.value.code) == (400, 21603)


def test_bad_credentials_are_401_20003(double):
    wrong = make_client(double, password="wrong-token")
    try:
        with pytest.raises(TwilioRestException) as info:
            send(wrong)
    finally:
        wrong.http_client.session.close()

    assert (info.value.status, info.value.code) == (401, 20003)
    assert double.messages == []


def test_another_account_in_the_path_is_404(double):
    other = make_client(double, account_sid="AC" + "1" * 32)
    try:
        with pytest.raises(TwilioRestException) as info:
            send(other)
    finally:
        other.http_client.session.close()

    assert (info.value.status, info.value.code) == (404, 20404)


def test_edge_and_region_in_the_environment_do_not_redirect(double, monkeypatch):
    monkeypatch.setenv("TWILIO_EDGE", "dublin")
    monkeypatch.setenv("TWILIO_REGION", "ie1")
    bare = Client(double.account_sid, double.auth_token, environment={})
    assert bare.edge == "dublin"  # environment={} falls back to os.environ: the trap
    client = point_client_at(bare, double.url)
    try:
        assert send(client).status == "queued"
    finally:
        client.http_client.session.close()


# -- injected failures ----------------------------------------------------------------

@pytest.mark.parametrize("kind, status, code", [
    ("429", 429, 20429),
    ("500", 500, 20500),
    ("21610", 400, 21610),
    ("21211", 400, 21211),
    ("21614", 400, 21614),
])
def test_failure_kinds_reach_the_sdk_exception(double, client, kind, status, code):
    double.fail(TO, kind)

    with pytest.raises(TwilioRestException) as info:
        send(client)

    assert (info.value.status, info.value.code) == (status, code)
    assert double.requests[-1]["status"] == status
    assert double.messages == []
    assert send(client, to="+447700900999").status == "queued"  # other numbers unaffected


def test_unsubscribed_error_json_shape(double):
    double.fail(TO, "21610")
    request = urllib.request.Request(
        f"{double.url}/2010-04-01/Accounts/{double.account_sid}/Messages.json",
        data=f"To=%2B{TO[1:]}&From=%2B{FROM[1:]}&Body=hi".encode(), method="POST",
        headers={"Authorization": double.expected_auth})

    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=5)
    with info.value as response:
        body = json.load(response)

    assert body == {"code": 21610, "message": "Attempt to send to unsubscribed recipient",
                    "more_info": "https://www.twilio.com/docs/errors/21610", "status": 400}


def test_rate_limit_carries_retry_after(double):
    double.fail(TO, "429")
    request = urllib.request.Request(
        f"{double.url}/2010-04-01/Accounts/{double.account_sid}/Messages.json",
        data=f"To=%2B{TO[1:]}&From=%2B{FROM[1:]}&Body=hi".encode(), method="POST",
        headers={"Authorization": double.expected_auth})

    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=5)
    with info.value as response:
        assert response.status == 429 and response.headers["Retry-After"] == "1"


def test_failure_times_expires(double, client):
    double.fail(TO, "500", times=2)

    for _ in range(2):
        with pytest.raises(TwilioRestException):
            send(client)
    message = send(client)

    assert message.status == "queued"
    assert [r["status"] for r in double.requests] == [500, 500, 201]


def test_failure_without_times_is_permanent(client, double):
    double.fail(TO, "21610")
    for _ in range(3):
        with pytest.raises(TwilioRestException):
            send(client)
    assert double.messages == []


def test_unknown_failure_kind_is_refused(double):
    with pytest.raises(ValueError):
        double.fail(TO, "418")


# -- status callbacks -----------------------------------------------------------------

def test_callbacks_are_signed_and_in_order(double, client, receiver):
    message = send(client, status_callback=receiver.url("/twilio/status?member=7"))

    double.wait_for(lambda: len(receiver.received()) == 2)
    posts = receiver.received()

    assert statuses(posts) == ["sent", "delivered"]
    for post in posts:
        assert_signed(post, receiver.base, double.auth_token)
        params = post["params"]
        assert params["MessageSid"] == params["SmsSid"] == message.sid
        assert params["SmsStatus"] == params["MessageStatus"]
        assert (params["AccountSid"], params["From"], params["To"]) == (double.account_sid, FROM, TO)
        assert params["ApiVersion"] == "2010-04-01"
        assert "ErrorCode" not in params
    double.wait_for(lambda: len(double.callbacks) == 2)
    assert [c["http_status"] for c in double.callbacks] == [200, 200]
    assert [c["status"] for c in double.callbacks] == ["sent", "delivered"]


def test_out_of_order_sends_delivered_before_sent(double, client, receiver):
    double.configure(out_of_order=True)
    send(client, status_callback=receiver.url("/twilio/status"))

    double.wait_for(lambda: len(receiver.received()) == 2)

    assert statuses(receiver.received()) == ["delivered", "sent"]
    double.wait_for(lambda: double.messages[0]["status"] == "delivered")  # never moves back


def test_duplicate_callbacks_post_each_twice(double, client, receiver):
    double.configure(duplicate_callbacks=True)
    send(client, status_callback=receiver.url("/twilio/status"))

    double.wait_for(lambda: len(receiver.received()) == 4)
    posts = receiver.received()

    assert statuses(posts) == ["sent", "sent", "delivered", "delivered"]
    tokens = [p["headers"]["I-Twilio-Idempotency-Token"] for p in posts]
    assert tokens[0] == tokens[1] != tokens[2] == tokens[3]  # a duplicate is the same event
    for post in posts:
        assert_signed(post, receiver.base, double.auth_token)


def test_queued_callback_comes_first_when_asked(client, receiver):
    with TwilioDouble(queued_callback=True) as double:
        queued_client = make_client(double)
        try:
            send(queued_client, status_callback=receiver.url("/s"))
        finally:
            queued_client.http_client.session.close()
        double.wait_for(lambda: len(receiver.received()) == 3)
    assert statuses(receiver.received()) == ["queued", "sent", "delivered"]


def test_failed_outcome_carries_error_code(double, client, receiver):
    double.outcome(TO, "failed", error_code=30003)
    message = send(client, status_callback=receiver.url("/twilio/status"))

    double.wait_for(lambda: double.message(message.sid)["status"] == "failed")
    double.wait_for(lambda: len(receiver.received()) == 1)
    [post] = receiver.received()

    assert post["params"]["MessageStatus"] == "failed"
    assert post["params"]["ErrorCode"] == "30003"
    assert_signed(post, receiver.base, double.auth_token)
    fetched = client.messages(message.sid).fetch()
    assert (fetched.status, fetched.error_code) == ("failed", 30003)


def test_undelivered_outcome_and_per_number_overrides(double, client, receiver):
    double.outcome("+447700900555", "undelivered", out_of_order=True)
    send(client, to="+447700900555", status_callback=receiver.url("/a"))
    send(client, to=TO, status_callback=receiver.url("/b"))

    double.wait_for(lambda: len(receiver.received()) == 4)
    by_path = {path: [p for p in receiver.received() if p["path"] == path] for path in ("/a", "/b")}

    assert statuses(by_path["/a"]) == ["undelivered", "sent"]
    assert by_path["/a"][0]["params"]["ErrorCode"] == "30003"
    assert statuses(by_path["/b"]) == ["sent", "delivered"]


def test_callback_delay_spaces_the_callbacks(receiver):
    with TwilioDouble(callback_delay=0.05) as double:
        delayed = make_client(double)
        try:
            send(delayed, status_callback=receiver.url("/s"))
        finally:
            delayed.http_client.session.close()
        double.wait_for(lambda: len(double.callbacks) == 2)
        first, second = double.callbacks
    assert second["time"] - first["time"] >= 0.04


def test_unreachable_callback_is_retried_then_recorded(double, client):
    send(client, status_callback=f"http://127.0.0.1:{closed_port()}/twilio/status")

    double.wait_for(lambda: len(double.callbacks) == 2)

    for callback in double.callbacks:
        assert callback["http_status"] is None
        assert callback["attempts"] == 3
        assert "ConnectionRefused" in callback["error"]


def test_non_loopback_callback_is_never_posted(double, client):
    send(client, status_callback="http://example.com/twilio/status")

    double.wait_for(lambda: len(double.callbacks) == 2)

    assert all(c["attempts"] == 0 and c["error"].startswith("refused") for c in double.callbacks)


def test_no_callbacks_when_disabled(client, double, receiver):
    double.configure(callbacks=False)
    silent = send(client, status_callback=receiver.url("/silent"))
    double.configure(callbacks=True)
    send(client, status_callback=receiver.url("/loud"))  # its callbacks come after any for silent

    double.wait_for(lambda: len(receiver.received()) == 2)

    assert {p["path"] for p in receiver.received()} == {"/loud"}
    assert double.message(silent.sid)["status"] == "queued"


# -- calls ----------------------------------------------------------------------------

def test_create_call_and_progress_callbacks(double, client, receiver):
    call = client.calls.create(
        to=TO, from_=FROM, url=receiver.url("/twilio/voice"),
        status_callback=receiver.url("/twilio/call-status"),
        status_callback_event=["initiated", "ringing", "answered", "completed"])

    assert SID_RE.match(call.sid) and call.sid.startswith("CA")
    assert (call.status, call.to, call._from, call.direction) == ("queued", TO, FROM, "outbound-api")
    double.wait_for(lambda: len(receiver.received()) == 5)
    posts = receiver.received()

    status_posts = [p for p in posts if p["path"] == "/twilio/call-status"]
    assert statuses(status_posts, "CallStatus") == ["initiated", "ringing", "in-progress", "completed"]
    assert status_posts[-1]["params"]["CallDuration"] == "5"
    [voice] = [p for p in posts if p["path"] == "/twilio/voice"]
    assert voice["params"]["CallStatus"] == "in-progress"
    for post in posts:
        assert post["params"]["CallSid"] == call.sid
        assert_signed(post, receiver.base, double.auth_token)
    double.wait_for(lambda: any(c["kind"] == "call-url" for c in double.callbacks))
    [fetched] = [c for c in double.callbacks if c["kind"] == "call-url"]
    assert fetched["response_body"] == "<Response/>"
    assert client.calls(call.sid).fetch().status == "completed"


def test_call_without_events_only_posts_the_final_status(double, client, receiver):
    double.outcome(TO, "no-answer")
    client.calls.create(to=TO, from_=FROM, twiml="<Response><Say>Hi</Say></Response>",
                        status_callback=receiver.url("/twilio/call-status"))

    double.wait_for(lambda: len(double.calls) == 1 and double.calls[0]["status"] == "no-answer")
    double.wait_for(lambda: len(receiver.received()) == 1)

    assert statuses(receiver.received(), "CallStatus") == ["no-answer"]


def test_call_validation(client):
    with pytest.raises(TwilioRestException) as info:
        client.calls.create(to=TO, from_=FROM)
    assert (info.value.status, info.value.code) == (400, 21205)


# -- control API and process ----------------------------------------------------------

def test_control_api(double, client, receiver):
    assert control(double, "GET", "health")["status"] == "ok"
    control(double, "POST", "fail", {"to": TO, "kind": "21610", "times": 1})
    with pytest.raises(TwilioRestException) as info:
        send(client)
    assert info.value.code == 21610

    control(double, "POST", "outcome", {"to": TO, "status": "undelivered", "error_code": 30005})
    control(double, "POST", "config", {"duplicate_callbacks": True})
    message = send(client, status_callback=receiver.url("/s"))
    double.wait_for(lambda: len(control(double, "GET", "callbacks")) == 4)

    assert [m["sid"] for m in control(double, "GET", "messages")] == [message.sid]
    assert [r["status"] for r in control(double, "GET", "requests")] == [400, 201]
    assert {c["params"].get("ErrorCode") for c in control(double, "GET", "callbacks")} == {None, "30005"}
    assert control(double, "GET", "calls") == []
    assert control(double, "GET", "counts") == {"requests": 2, "messages": 1, "calls": 0,
                                                "callbacks": 4}

    control(double, "POST", "reset")
    assert control(double, "GET", "requests") == []
    assert control(double, "GET", "settings")["duplicate_callbacks"] is False


def test_control_api_rejects_bad_input(double):
    with pytest.raises(urllib.error.HTTPError) as info:
        control(double, "POST", "fail", {"to": TO, "kind": "teapot"})
    with info.value as response:
        assert response.status == 400
    with pytest.raises(urllib.error.HTTPError) as info:
        control(double, "GET", "nothing")
    with info.value as response:
        assert response.status == 404


def test_reset_forgets_everything(double, client):
    double.fail(TO, "500")
    with pytest.raises(TwilioRestException):
        send(client)
    double.reset()
    assert double.requests == [] and double.callbacks == []
    assert send(client).status == "queued"


def test_wait_for_times_out():
    with TwilioDouble() as double:
        with pytest.raises(TimeoutError):
            double.wait_for(lambda: double.messages, timeout=0.05)


def test_concurrent_clients_are_all_answered(double):
    clients = [make_client(double) for _ in range(4)]
    try:
        with ThreadPoolExecutor(len(clients)) as pool:
            sids = list(pool.map(lambda n: send(clients[n % 4], body=f"m{n}").sid, range(200)))
    finally:
        for made in clients:
            made.http_client.session.close()
    assert len(set(sids)) == 200
    assert len(double.requests) == 200 and all(r["status"] == 201 for r in double.requests)


def test_runs_as_a_process(receiver):
    sid, token = "AC" + "a" * 32, "b" * 32
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    with subprocess.Popen(
        [sys.executable, "-m", "service.twilio_double", "--port", "0",
         "--account-sid", sid, "--auth-token", token],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    ) as proc:
        try:
            url = proc.stdout.readline().strip()
            assert re.fullmatch(r"http://127\.0\.0\.1:\d+", url), url
            remote = Client(sid, token, environment={"TWILIO": "double"})
            point_client_at(remote, url)
            try:
                message = remote.messages.create(to=TO, from_=FROM, body="hi",
                                                  status_callback=receiver.url("/s"))
            finally:
                remote.http_client.session.close()
            with urllib.request.urlopen(f"{url}/_double/messages", timeout=5) as response:
                assert [m["sid"] for m in json.load(response)] == [message.sid]
            wait_for(lambda: len(receiver.received()) == 2)
            for post in receiver.received():
                assert_signed(post, receiver.base, token)
        finally:
            proc.terminate()
            _, stderr = proc.communicate(timeout=10)
    assert proc.returncode == 0, stderr


def _raw_post(double, body: bytes, length: str) -> tuple[int, dict]:
    """A POST to Messages.json written by hand, as no SDK would write it."""
    import base64
    import http.client

    host, port = double.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=5)
    token = base64.b64encode(f"{double.account_sid}:{double.auth_token}".encode()).decode()
    connection.putrequest("POST", f"/2010-04-01/Accounts/{double.account_sid}/Messages.json")
    for name, value in (("Authorization", f"Basic {token}"), ("Content-Length", length),
                        ("Content-Type", "application/x-www-form-urlencoded")):
        connection.putheader(name, value)
    connection.endheaders(body)
    try:
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def test_a_request_no_sdk_would_send_gets_an_answer_not_a_dropped_connection(double):
    twice = f"To={TO.replace('+', '%2B')}&To=%2B447700900002&From=%2B441632960000&Body=hi".encode()
    status, answer = _raw_post(double, twice, str(len(twice)))
    assert (status, answer["code"]) == (400, 20001) and "To" in answer["message"]
    assert _raw_post(double, b"To=x", "abc")[0] == 400
    assert _raw_post(double, b"To=x", "-4")[0] == 400
    assert double.messages == []
