"""Configuration read from the environment (the design's table), once, in the app factory."""

from __future__ import annotations

import ipaddress
import math
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import SplitResult, urlsplit

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


def _default_database_url() -> str:
    """SQLite under instance/ in Hearth's checkout, wherever a command runs from (from another
    folder, one under that folder's instance/ would be a second, empty database); an installed
    copy with no checkout uses the folder it runs from."""
    checkout = Path(__file__).resolve().parent.parent
    home = checkout if (checkout / "pyproject.toml").is_file() else Path.cwd()
    return f"sqlite:///{home / 'instance' / 'hearth.db'}"


# The databases Hearth runs on, as a URL begins: PostgreSQL through psycopg 3, or SQLite.
DATABASE_SCHEMES = ("postgres", "postgresql", "postgresql+psycopg", "sqlite", "sqlite+pysqlite")


def _database_url(url: str | None) -> str:
    if not url:
        return _default_database_url()
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme not in DATABASE_SCHEMES:
        raise ValueError(f"DATABASE_URL must be a PostgreSQL URL (postgresql://user@host/db) or a SQLite one"
                         f" (sqlite:///path/hearth.db), not {scheme + '://...' if scheme else _shown_value(url)}")
    try:
        parsed = make_url(url)
        parsed.port  # noqa: B018 -- a port that is not a number fails here, not at the first connection
    except (ArgumentError, ValueError):
        # Not SQLAlchemy's words: they quote what it read as the port, which in postgresql://user:password
        # (no host) is the password.
        raise ValueError(f"DATABASE_URL cannot be read: what stands for its port is not a number ({NOT_SHOWN})"
                         ) from None
    if scheme.startswith("sqlite") and parsed.database in (None, "", ":memory:"):
        # Each process (and each connection) would have a database of its own, empty.
        raise ValueError("DATABASE_URL names no file: SQLite in memory cannot be shared by Hearth's processes;"
                         " give a path, as in sqlite:///instance/hearth.db")
    return url


# The Redis URLs redis-py reads (and RQ's --url).
REDIS_SCHEMES = ("redis", "rediss", "unix")


def _split(url: str) -> SplitResult | None:
    """The URL's parts, or None when it cannot be read (a port that is not a number, say)."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 -- raises ValueError on a port that is not a number
    except ValueError:
        return None
    return parts


def _redis_url(url: str | None) -> str:
    if not url:
        return DEFAULT_REDIS_URL
    parts = _split(url)
    if parts is None or parts.scheme not in REDIS_SCHEMES:
        # Not the value itself: it may carry a password.
        scheme = parts.scheme if parts is not None else ""
        why = f"not {scheme}://..." if scheme and scheme not in REDIS_SCHEMES else "it cannot be read as one"
        raise ValueError(f"REDIS_URL must be a Redis URL such as redis://127.0.0.1:6379/0: {why}")
    return url


def shown_url(url: str) -> str:
    """The URL as it may be printed: a password in it is shown as ***."""
    parts = _split(url)
    if parts is None or parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc=f"{parts.username or ''}:***@{host}").geturl()


NOT_SHOWN = "its value is not shown: it may hold a password"


def _shown_value(value: str) -> str:
    """A setting's value as an error message may quote it: a URL without its password (`shown_url`);
    one that cannot be read as a URL but may hold a password (a ':' or '@' in it) not at all."""
    parts = _split(value)
    if parts is not None and parts.netloc:
        return repr(shown_url(value))
    return f"that ({NOT_SHOWN})" if ":" in value or "@" in value else repr(value)


def _folder(env, name: str) -> str | None:
    folder = env.get(name) or None
    if folder is not None and not Path(folder).is_dir():
        raise ValueError(f"{name} is {folder!r}, which is not a folder")
    return folder


def _base_url(env, name: str) -> str | None:
    """An absolute http(s) URL with a host and nothing after its path, without a trailing slash."""
    value = (env.get(name) or "").strip().rstrip("/")
    if not value:
        return None
    parts = _split(value)
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{name} must be an absolute URL such as https://hearth.example.org, not"
                         f" {_shown_value(value)}")
    if parts.query or parts.fragment:
        raise ValueError(f"{name} must not carry a query or a fragment: {_shown_value(value)}")
    return value


def is_loopback(host: str | None) -> bool:
    """Whether `host` names this machine (localhost, 127.0.0.0/8, ::1)."""
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _api_base(env) -> str | None:
    """TWILIO_API_BASE: every request carries the account's credentials."""
    return _private_base(env, "TWILIO_API_BASE", "every request carries the auth token")


def _public_base(env) -> str | None:
    """PUBLIC_BASE_URL: Twilio posts members' texts and numbers to it, and the delivery reports
    Hearth asks for."""
    return _private_base(env, "PUBLIC_BASE_URL", "Twilio posts members' texts to it")


def _private_base(env, name: str, why: str) -> str | None:
    """A base URL what crosses it must not cross a network in clear: HTTPS, or plain HTTP to this
    machine only (the Twilio double, a local run)."""
    value = _base_url(env, name)
    if value and urlsplit(value).scheme == "http" and not is_loopback(urlsplit(value).hostname):
        raise ValueError(f"{name} must use https unless it is on this machine (127.0.0.1, ::1, localhost):"
                         f" {why}; not {_shown_value(value)}")
    return value


def _seconds(env, name: str, default: float, most: float) -> float:
    """A number of seconds above 0 and at most `most` (nan, inf or 1e12 would break every use)."""
    try:
        value = float(env.get(name) or default)
    except ValueError:
        value = math.nan
    if not 0 < value <= most:  # False for nan too
        raise ValueError(f"{name} must be a number of seconds above 0 and at most {most:.0f}")
    return value


@dataclass(frozen=True)
class Config:
    """Everything Hearth reads from its environment."""

    database_url: str = field(repr=False)
    redis_url: str = field(default=DEFAULT_REDIS_URL, repr=False)
    secret_key: str = field(default_factory=lambda: secrets.token_hex(16), repr=False)
    public_base_url: str | None = None
    twilio_account_sid: str | None = None
    twilio_auth_token: str | None = field(default=None, repr=False)
    twilio_from_number: str | None = None
    twilio_messaging_service_sid: str | None = None
    twilio_api_base: str | None = None
    transport: str = "console"
    send_rate: float = 10.0
    flows_dir: str | None = None
    send_lease: float = 60.0
    validate_signatures: bool = True
    # What webhooks are signed with when there is no TWILIO_AUTH_TOKEN (`hearth simulate` signs and
    # checks its texts in one process): random, so a web process without the token takes none.
    local_signing_token: str = field(default_factory=lambda: secrets.token_hex(16), repr=False)

    @property
    def sender(self) -> str:
        """The sender that the send rate limit is kept for."""
        return self.twilio_messaging_service_sid or self.twilio_from_number or "console"

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> "Config":
        """Read the configuration from `environ` (default: the process environment)."""
        env = os.environ if environ is None else environ
        sid = env.get("TWILIO_ACCOUNT_SID") or None
        token = env.get("TWILIO_AUTH_TOKEN") or None
        chosen = env.get("HEARTH_TRANSPORT")
        transport = chosen or ("twilio" if sid and token else "console")
        if transport not in ("twilio", "console"):
            raise ValueError(f"HEARTH_TRANSPORT must be 'twilio' or 'console', not {transport!r}")
        twilio_settings = [name for name in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_FROM_NUMBER",
                                             "TWILIO_MESSAGING_SERVICE_SID") if env.get(name)]
        if (transport == "twilio" or (twilio_settings and not chosen)) and not (sid and token):
            # Half a Twilio set-up must not fall back to printing members' messages as if sent.
            missing = " and ".join(name for name, value in (("TWILIO_ACCOUNT_SID", sid), ("TWILIO_AUTH_TOKEN", token))
                                   if not value)
            given = ", ".join(twilio_settings) or "HEARTH_TRANSPORT=twilio"
            raise ValueError(f"{given} set but {missing} not: set both to send through Twilio, or"
                             " HEARTH_TRANSPORT=console to print messages instead")
        try:
            send_rate = float(env.get("HEARTH_SEND_RATE") or 10)
        except ValueError:
            raise ValueError("HEARTH_SEND_RATE must be a number of messages per second") from None
        if not math.isfinite(send_rate) or send_rate < 0:
            raise ValueError("HEARTH_SEND_RATE must be a finite number, not negative (0 turns the limit off)")
        return cls(
            database_url=_database_url(env.get("DATABASE_URL")),
            redis_url=_redis_url(env.get("REDIS_URL")),
            secret_key=env.get("SECRET_KEY") or secrets.token_hex(16),
            public_base_url=_public_base(env),
            twilio_account_sid=sid,
            twilio_auth_token=token,
            twilio_from_number=env.get("TWILIO_FROM_NUMBER") or None,
            twilio_messaging_service_sid=env.get("TWILIO_MESSAGING_SERVICE_SID") or None,
            twilio_api_base=_api_base(env),
            transport=transport,
            send_rate=send_rate,
            flows_dir=_folder(env, "HEARTH_FLOWS_DIR"),
            send_lease=_seconds(env, "HEARTH_SEND_LEASE", 60, most=86400),
        )
