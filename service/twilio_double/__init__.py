"""A Twilio-compatible HTTP double on loopback, for tests and benchmarks.

The real ``twilio`` SDK talks to it over HTTP; nothing in the SDK is patched.

    from twilio.rest import Client
    from service.twilio_double import TwilioDouble, point_client_at

    with TwilioDouble() as double:                      # 127.0.0.1, ephemeral port
        client = Client(double.account_sid, double.auth_token, environment={"TWILIO": "double"})
        point_client_at(client, double.url)
        msg = client.messages.create(to="+447700900123", from_="+447700900001",
                                     body="How are you today? 1-5",
                                     status_callback="http://127.0.0.1:5000/twilio/status")
        double.wait_for(lambda: len(double.callbacks) == 2)   # sent, delivered

Pointing the SDK at the double (checked against twilio 9.13):

- Messages and Calls live under the ``api`` domain (``twilio.rest.api.ApiBase``), whose
  ``base_url`` defaults to ``"https://api.twilio.com"`` and is read on every request, so
  ``client.api.base_url = url`` redirects them (also after ``client.messages`` was used).
- ``Client(..., environment={})`` does NOT shield you from ``TWILIO_EDGE`` /
  ``TWILIO_REGION``: the SDK does ``environment or os.environ`` and an empty dict is falsy.
  With an edge or region set, ``get_hostname`` rewrites ``127.0.0.1`` into
  ``127.<edge>.<region>.0.1``. Pass a non-empty mapping (as above), or set
  ``client.edge = client.region = None`` after building the client.
- ``requests`` honours ``HTTP_PROXY``/``HTTPS_PROXY``, which would send loopback traffic to
  a proxy unless ``NO_PROXY`` covers it; ``client.http_client.session.trust_env = False``
  turns that off for the SDK's pooled session.

``point_client_at(client, url)`` does all three. The service's own transport can do the
same with ``TWILIO_API_BASE``::

    client = Client(sid, token, environment={"TWILIO_API_BASE": api_base})
    client.edge = client.region = None
    client.api.base_url = api_base

Run it as a process (prints its URL on one line, then serves until SIGTERM/SIGINT)::

    python -m service.twilio_double --port 8765 --account-sid AC... --auth-token ...

and drive it over HTTP:
``GET /_double/{health,requests,messages,calls,callbacks,counts,settings}``,
``POST /_double/fail`` ``{"to", "kind", "times"}`` (kind ``429``, ``500``, ``21610``, ``21211``,
``21614``, or ``html``: a 200 with a web page, as a proxy in the way answers), ``POST /_double/outcome``
``{"to", "status", "error_code", ...}``, ``POST /_double/config`` ``{setting: value}``,
``POST /_double/reset``.
"""

from .behaviour import Outcome, Settings
from .errors import FAILURE_KINDS
from .recorder import wait_for
from .server import DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN, TwilioDouble

__all__ = [
    "DEFAULT_ACCOUNT_SID",
    "DEFAULT_AUTH_TOKEN",
    "FAILURE_KINDS",
    "Outcome",
    "Settings",
    "TwilioDouble",
    "point_client_at",
    "wait_for",
]


def point_client_at(client, url: str):
    """Send ``client``'s Messages/Calls requests to ``url``, ignoring edge, region and proxies."""
    client.edge = None
    client.region = None
    client.api.base_url = url
    session = getattr(client.http_client, "session", None)
    if session is not None:
        session.trust_env = False
    return client
