"""TwilioDouble: the Twilio-compatible HTTP server on loopback, and its Python API."""

import socket
import threading
import time
from http.server import ThreadingHTTPServer

from .api import basic_auth
from .behaviour import Behaviour, Outcome, Settings
from .callbacks import STAMP
from .dispatcher import Dispatcher, Step
from .handler import Handler
from .recorder import Recorder
from .resources import rfc2822

DEFAULT_ACCOUNT_SID = "AC" + "0" * 32
DEFAULT_AUTH_TOKEN = "0123456789abcdef" * 2
DEFAULT_SERVICE_FROM = "+15005550006"


class _Server(ThreadingHTTPServer):
    """A threading server that can close its keep-alive connections and join their threads."""

    daemon_threads = True
    block_on_close = False  # stop() closes connections and joins threads itself

    def __init__(self, address, double):
        self.double = double
        self._active: dict[threading.Thread, socket.socket] = {}
        self._active_lock = threading.Lock()
        super().__init__(address, Handler)

    def process_request(self, request, client_address):
        thread = threading.Thread(target=self._serve_connection, args=(request, client_address),
                                  name="twilio-double-conn", daemon=True)
        with self._active_lock:
            self._active[thread] = request
        thread.start()

    def _serve_connection(self, request, client_address):
        try:
            self.process_request_thread(request, client_address)
        finally:
            with self._active_lock:
                self._active.pop(threading.current_thread(), None)

    def handle_error(self, request, client_address):
        # A client hanging up mid-request is normal under load; say nothing unless asked.
        if self.double.log_requests:
            super().handle_error(request, client_address)

    def close_connections(self, timeout: float) -> None:
        """Shut every open connection so its handler thread ends, then join them."""
        with self._active_lock:
            active = list(self._active.items())
        for _, sock in active:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already closed by its handler
        deadline = time.monotonic() + timeout
        for thread, _ in active:
            thread.join(max(0.0, deadline - time.monotonic()))


class TwilioDouble:
    """A Twilio REST double on loopback that records requests and posts signed callbacks.

    ``with TwilioDouble() as double: ...`` starts and stops it; see the package docstring.
    """

    def __init__(self, account_sid: str = DEFAULT_ACCOUNT_SID, auth_token: str = DEFAULT_AUTH_TOKEN,
                 host: str = "127.0.0.1", port: int = 0, callbacks: bool = True,
                 callback_delay: float = 0.0, *, out_of_order: bool = False,
                 duplicate_callbacks: bool = False, queued_callback: bool = False,
                 fetch_twiml: bool = True, callback_workers: int = 4, callback_retries: int = 2,
                 callback_timeout: float = 5.0, messaging_service_from: str = DEFAULT_SERVICE_FROM,
                 allow_remote_callbacks: bool = False, log_requests: bool = False, clock=time.time):
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.expected_auth = basic_auth(account_sid, auth_token)
        self.host, self.port = host, port
        self.messaging_service_from = messaging_service_from
        self.log_requests = log_requests
        self.clock = clock
        self.recorder = Recorder()
        self.behaviour = Behaviour(Settings(
            callbacks=callbacks, callback_delay=callback_delay, out_of_order=out_of_order,
            duplicate_callbacks=duplicate_callbacks, queued_callback=queued_callback,
            fetch_twiml=fetch_twiml))
        self.dispatcher = Dispatcher(auth_token, self._on_step, self._on_posted,
                                     workers=callback_workers, retries=callback_retries,
                                     timeout=callback_timeout, allow_remote=allow_remote_callbacks)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle --------------------------------------------------------------------

    def start(self) -> "TwilioDouble":
        """Bind, start serving on a background thread and start the callback workers."""
        if self._server is not None:
            raise RuntimeError("the double is already running")
        self._server = _Server((self.host, self.port), self)
        self.port = self._server.server_address[1]
        self.dispatcher.start()
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="twilio-double-server", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving, close connections and sockets, and join every thread."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        self._thread.join(timeout)
        server.server_close()
        server.close_connections(timeout)
        self.dispatcher.stop(timeout)

    def serve_forever(self, stop_event: threading.Event) -> None:
        """Run until ``stop_event`` is set (the command line uses this), then stop."""
        try:
            stop_event.wait()
        finally:
            self.stop()

    def __enter__(self) -> "TwilioDouble":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The base URL to point the SDK at, e.g. ``http://127.0.0.1:54321``."""
        if self._server is None:
            raise RuntimeError("the double is not running; call start() first")
        return f"http://{self.host}:{self.port}"

    # -- steering ---------------------------------------------------------------------

    def reset(self) -> None:
        """Forget recorded state, failures and outcomes; restore the starting settings."""
        self.dispatcher.clear()
        self.behaviour.reset()
        self.recorder.clear()

    def fail(self, to_number: str, kind: str, times: int | None = None) -> None:
        """Answer requests to ``to_number`` ("*": any) with "429", "500", "21610", "21211" or "21614"."""
        self.behaviour.fail(to_number, kind, times)

    def outcome(self, to_number: str, status: str, error_code: int | None = None, *,
                callback_delay: float | None = None, out_of_order: bool | None = None,
                duplicate_callbacks: bool | None = None) -> Outcome:
        """Make messages (delivered/undelivered/failed/sent) or calls to ``to_number`` end so."""
        return self.behaviour.outcome(to_number, status, error_code, callback_delay=callback_delay,
                                      out_of_order=out_of_order, duplicate_callbacks=duplicate_callbacks)

    def configure(self, **settings) -> Settings:
        """Change any Settings field (callbacks, callback_delay, out_of_order, ...) while running."""
        return self.behaviour.configure(**settings)

    @property
    def settings(self) -> Settings:
        """The double-wide callback settings now in force."""
        return self.behaviour.settings

    # -- what happened ----------------------------------------------------------------

    @property
    def requests(self) -> list[dict]:
        """Every REST request: method, path, params, to, status, code, sid, time."""
        return self.recorder.requests()

    @property
    def messages(self) -> list[dict]:
        """Accepted messages as Twilio Message JSON, with their current status."""
        return self.recorder.resources("SM")

    @property
    def calls(self) -> list[dict]:
        """Accepted calls as Twilio Call JSON, with their current status."""
        return self.recorder.resources("CA")

    @property
    def callbacks(self) -> list[dict]:
        """Every callback posted: kind, sid, status, url, params, signature, http_status, error."""
        return self.recorder.callbacks()

    @property
    def counts(self) -> dict:
        """Numbers of requests, messages, calls and callbacks recorded (cheap, for polling)."""
        return self.recorder.counts()

    def message(self, sid: str) -> dict | None:
        """One message by sid, or None."""
        return self.recorder.resource(sid)

    def call(self, sid: str) -> dict | None:
        """One call by sid, or None."""
        return self.recorder.resource(sid)

    def wait_for(self, predicate, timeout: float = 5.0):
        """Poll ``predicate()`` until it is truthy and return it; TimeoutError at the deadline."""
        return self.recorder.wait_for(predicate, timeout)

    # -- callback hooks (run on dispatcher threads) -----------------------------------

    def _on_step(self, step: Step) -> None:
        stamp = rfc2822(self.clock())
        for key, value in step.fields.items():
            if value is STAMP:
                step.fields[key] = stamp
        if "Timestamp" in step.params and step.params["Timestamp"] is STAMP:
            step.params["Timestamp"] = stamp
        if step.kind != "call-url":
            self.recorder.advance(step.sid, step.status, step.fields)

    def _on_posted(self, step: Step, signature, http_status, body, error, attempts) -> None:
        self.recorder.add_callback({
            "kind": step.kind,
            "sid": step.sid,
            "status": step.status,
            "url": step.url,
            "params": dict(step.params),
            "signature": signature,
            "http_status": http_status,
            "response_body": body,
            "error": error,
            "attempts": attempts,
            "time": time.time(),
        })
