"""The inbound benchmark's baseline: a bare Flask app answering POST /twilio/sms with the same TwiML.

No signature check, no database, no Redis: the cost of gunicorn + Flask + the twilio TwiML
builder alone, served with the same gunicorn settings as Hearth::

    gunicorn --workers 2 --bind 127.0.0.1:8001 --pythonpath bench baseline_app:app
"""

import json
import os

from flask import Flask, Response
from twilio.twiml.messaging_response import MessagingResponse

# The messages Hearth answered the benchmark's text with (bench/inbound.py asks it first and passes
# them here), so both answers are the same TwiML; one help text when run on its own.
REPLIES = json.loads(os.environ.get("BENCH_REPLIES") or "null") or [
    "Bench House check-ins. Reply MENU for what you can text, PAUSE 7 for a break, STOP to stop."
    " Need to talk now? Samaritans 116 123 (free, 24/7)."]

app = Flask(__name__)


def twiml() -> str:
    """The answer, built by the SDK on every request as Hearth builds its own."""
    response = MessagingResponse()
    for reply in REPLIES:
        response.message(reply)
    return str(response)


@app.post("/twilio/sms")
def sms():
    return Response(twiml(), mimetype="text/xml")
