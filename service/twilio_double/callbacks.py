"""The status callbacks Twilio would post for a message or a call, as a Sequence of Steps."""

from flows.sms import measure

from .behaviour import CALL_OUTCOMES, MESSAGE_OUTCOMES, Outcome, Settings
from .dispatcher import Sequence, Step
from .resources import API_VERSION

ERROR_MESSAGES = {
    30003: "Unreachable destination handset",
    30004: "Message blocked",
    30005: "Unknown destination handset",
    30006: "Landline or unreachable carrier",
    30007: "Message filtered",
    30008: "Unknown error",
}
CALL_EVENTS = ("initiated", "ringing", "answered", "completed")
# A field or param left as STAMP is filled with the time the step actually runs.
STAMP = None


def message_sequence(message: dict, outcome: Outcome, settings: Settings, status_callback,
                     service_from: str) -> Sequence:
    """queued? then sent, delivered (or the outcome set for the number)."""
    final = outcome.status if outcome.status in MESSAGE_OUTCOMES else "delivered"
    statuses = ["queued"] if settings.queued_callback else []
    statuses += {"delivered": ["sent", "delivered"], "undelivered": ["sent", "undelivered"],
                 "failed": ["failed"], "sent": ["sent"]}[final]
    if settings.out_of_order:
        statuses.reverse()
    sender = message["from"] or service_from
    steps = []
    for status in statuses:
        params = {
            "AccountSid": message["account_sid"],
            "ApiVersion": API_VERSION,
            "From": sender,
            "MessageSid": message["sid"],
            "MessageStatus": status,
            "SmsSid": message["sid"],
            "SmsStatus": status,
            "To": message["to"],
        }
        if message["messaging_service_sid"]:
            params["MessagingServiceSid"] = message["messaging_service_sid"]
        fields = {"date_updated": STAMP, "from": sender, "num_segments": str(measure(message["body"]).segments)}
        if status == "sent":
            fields["date_sent"] = STAMP
        if status in ("failed", "undelivered"):
            code = outcome.error_code or 30008
            params["ErrorCode"] = str(code)
            fields.update(error_code=code, error_message=ERROR_MESSAGES.get(code, "Unknown error"))
        steps.append(Step("message-status", message["sid"], status, status_callback, params,
                          fields, copies=2 if settings.duplicate_callbacks else 1))
    return Sequence(steps, settings.callback_delay)


def call_sequence(call: dict, request: dict, outcome: Outcome, settings: Settings) -> Sequence:
    """initiated, ringing, answered (in-progress), completed; posted only for events asked for."""
    final = outcome.status if outcome.status in CALL_OUTCOMES else "completed"
    wanted = _events(request.get("StatusCallbackEvent"))
    status_callback = request.get("StatusCallback")
    base = {
        "AccountSid": call["account_sid"],
        "ApiVersion": API_VERSION,
        "CallSid": call["sid"],
        "Called": call["to"],
        "Caller": call["from"],
        "Direction": "outbound-api",
        "From": call["from"],
        "To": call["to"],
    }
    copies = 2 if settings.duplicate_callbacks else 1
    status_steps, url_steps = [], []
    for event in CALL_EVENTS:
        if event == "answered" and final != "completed":
            continue
        status = {"answered": "in-progress", "completed": final}.get(event, event)
        fields = {"date_updated": STAMP}
        params = dict(base, CallStatus=status, CallbackSource="call-progress-events",
                      Timestamp=STAMP, SequenceNumber=str(len(status_steps)))
        if event == "answered":
            fields["start_time"] = STAMP
            if settings.fetch_twiml and request.get("Url"):
                url_steps.append(Step("call-url", call["sid"], status, request["Url"],
                                      dict(base, CallStatus=status)))
        if event == "completed":
            seconds = "5" if final == "completed" else "0"
            fields.update(end_time=STAMP, duration=seconds)
            params.update(CallDuration=seconds, Duration="1" if final == "completed" else "0")
        # Twilio always posts the terminal status; other events only when asked for.
        url = status_callback if (event in wanted or event == "completed") else None
        status_steps.append(Step("call-status", call["sid"], status, url, params, fields, copies))
    if settings.out_of_order:
        return Sequence(url_steps + status_steps[::-1], settings.callback_delay)
    steps = status_steps[:2] + url_steps + status_steps[2:]
    return Sequence(steps, settings.callback_delay)


def _events(value) -> set:
    if not value:
        return set()
    values = value if isinstance(value, list) else [value]
    return {word for v in values for word in str(v).replace(",", " ").split()}
