"""The inbound benchmark's baseline: a bare Flask app answering POST /twilio/sms with the same TwiML.

No signature check, no database, no Redis: the cost of gunicorn + Flask + the twilio TwiML
builder alone, served with the same gunicorn settings as Hearth::

    gunicorn --workers 2 --bind 127.0.0.1:8001 --pythonpath bench baseline_app:app
"""

from flask import Flask, Response
from twilio.twiml.messaging_response import MessagingResponse

# The text Hearth answers an ordinary message with (its community help text), so both bodies match in size.
REPLY = ("Bench House check-ins. Reply MENU for what you can text, PAUSE 7 for a break, "
         "STOP to stop. Need to talk now? Samaritans 116 123 (free, 24/7).")

app = Flask(__name__)


@app.post("/twilio/sms")
def sms():
    response = MessagingResponse()
    response.message(REPLY)
    return Response(str(response), mimetype="text/xml")
