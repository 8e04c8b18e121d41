"""Twilio-shaped error answers, and the failures a test can ask the double to give."""

from dataclasses import dataclass, field

MORE_INFO = "https://www.twilio.com/docs/errors/{code}"


@dataclass(frozen=True)
class ApiError:
    """One error answer: HTTP status, Twilio error code, message, extra headers."""

    status: int
    code: int
    message: str
    headers: dict = field(default_factory=dict)

    def body(self) -> dict:
        """The JSON body Twilio sends (the legacy shape the SDK turns into TwilioRestException)."""
        return {
            "code": self.code,
            "message": self.message,
            "more_info": MORE_INFO.format(code=self.code),
            "status": self.status,
        }


def failure(kind: str, to: str, retry_after: int = 1) -> ApiError:
    """The error answered for an injected failure of ``kind`` ("429", "500", "21610", ...)."""
    if kind == "429":
        return ApiError(429, 20429, "Too Many Requests", {"Retry-After": str(retry_after)})
    try:
        return _FAILURES[kind](to)
    except KeyError:
        raise ValueError(f"unknown failure kind {kind!r}; use one of {sorted(_FAILURES)}") from None


# "html": a 200 with a web page where the API's JSON belongs, as a proxy or captive portal in the
# way answers; the request may or may not have gone on to the carrier.
FAILURE_KINDS = ("429", "500", "21610", "21211", "21614", "21606", "html")
PROXY_PAGE = "<html><body>Your request is being checked.</body></html>"

_FAILURES = {
    "429": lambda to: ApiError(429, 20429, "Too Many Requests", {"Retry-After": "1"}),  # see failure()
    "500": lambda to: ApiError(500, 20500, "Internal Server Error"),
    "21610": lambda to: ApiError(400, 21610, "Attempt to send to unsubscribed recipient"),
    "21211": lambda to: invalid_to(to),
    "21614": lambda to: ApiError(400, 21614, f"'To' number {to} is not a valid mobile number"),
    # The From cannot send to this destination (a country it may not text), though it sends elsewhere.
    "21606": lambda to: ApiError(400, 21606, "The 'From' phone number provided is not a valid message-capable"
                                             " Twilio phone number for this destination."),
}


def invalid_to(to: str) -> ApiError:
    """21211: the To number is not a phone number."""
    return ApiError(400, 21211, f"The 'To' number {to} is not a valid phone number.")


def authenticate() -> ApiError:
    """20003: wrong or missing credentials."""
    return ApiError(401, 20003, "Authenticate", {"WWW-Authenticate": 'Basic realm="Twilio API"'})


def not_found(path: str) -> ApiError:
    """20404: no such resource (also a path naming another account)."""
    return ApiError(404, 20404, f"The requested resource {path} was not found")


def method_not_allowed(method: str) -> ApiError:
    """20004: the resource exists but not for this method."""
    return ApiError(405, 20004, f"Method {method} not allowed")


def invalid_parameter(name: str, why: str) -> ApiError:
    """A parameter Twilio cannot take as given (20001, "Invalid parameter")."""
    return ApiError(400, 20001, f"Invalid parameter {name}: {why}")


def missing(code: int, message: str) -> ApiError:
    """A 400 validation error (21602 body, 21603 from, 21604 to, ...)."""
    return ApiError(400, code, message)
