"""A reference point for the inbound benchmark: the least a durable webhook must do.

It checks X-Twilio-Signature with the real SDK (over PUBLIC_BASE_URL + /twilio/sms), stores the
message in one INSERT (table `bench_floor`, a copy of inbound_messages' columns and indexes made by
bench/inbound.py, ON CONFLICT on the sid for dedupe), commits, and answers the baseline's TwiML.
No ORM, no flows, no member lookup. It is not a goal: it shows how much of the gap between Hearth
and the bare baseline any PostgreSQL-backed handler pays on this machine.

    gunicorn --workers 2 --bind 127.0.0.1:8002 --pythonpath bench floor_app:app
"""

import os
from datetime import datetime, timezone

import psycopg
from flask import Flask, Response, request
from twilio.request_validator import RequestValidator

from baseline_app import twiml

app = Flask(__name__)
validator = RequestValidator(os.environ["TWILIO_AUTH_TOKEN"])
SIGNED_URL = os.environ["PUBLIC_BASE_URL"].rstrip("/") + "/twilio/sms"
CONNINFO = os.environ["DATABASE_URL"].replace("postgresql+psycopg://", "postgresql://", 1)
_conn = None  # one connection per worker process, opened after the fork


def connection():
    global _conn
    if _conn is None or _conn.closed:
        _conn = psycopg.connect(CONNINFO)
    return _conn


@app.post("/twilio/sms")
def sms():
    if not validator.validate(SIGNED_URL, request.form, request.headers.get("X-Twilio-Signature", "")):
        return Response("signature does not match\n", status=403, mimetype="text/plain")
    form = request.form
    answer = twiml()
    conn = connection()
    conn.execute(
        "INSERT INTO bench_floor (sid, from_number, to_number, body, handled_as, response, received_at)"
        " VALUES (%s, %s, %s, %s, 'floor', %s, %s) ON CONFLICT (sid) DO NOTHING",
        (form["MessageSid"], form["From"], form["To"], form["Body"], answer, datetime.now(timezone.utc)),
    )
    conn.commit()
    return Response(answer, mimetype="text/xml")
