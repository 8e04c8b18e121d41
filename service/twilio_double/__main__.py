"""Run the double in the foreground: ``python -m service.twilio_double --port 8765``.

Prints its URL on one line (flushed) so a parent process can read it, then serves until
SIGTERM or SIGINT.
"""

import argparse
import os
import signal
import sys
import threading

from .server import DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN, TwilioDouble


def parse_args(argv=None) -> argparse.Namespace:
    """The command line; credentials fall back to TWILIO_ACCOUNT_SID / TWILIO_AUTH_TOKEN."""
    parser = argparse.ArgumentParser(prog="python -m service.twilio_double",
                                     description="A Twilio-compatible HTTP double on loopback.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (default)")
    parser.add_argument("--account-sid", default=os.environ.get("TWILIO_ACCOUNT_SID", DEFAULT_ACCOUNT_SID))
    parser.add_argument("--auth-token", default=os.environ.get("TWILIO_AUTH_TOKEN", DEFAULT_AUTH_TOKEN))
    parser.add_argument("--callback-delay", type=float, default=0.0, help="seconds between callbacks")
    parser.add_argument("--no-callbacks", action="store_true", help="post no status callbacks")
    parser.add_argument("--queued-callback", action="store_true", help="post 'queued' first")
    parser.add_argument("--out-of-order", action="store_true", help="post callbacks in reverse")
    parser.add_argument("--duplicate-callbacks", action="store_true", help="post each callback twice")
    parser.add_argument("--callback-workers", type=int, default=4)
    parser.add_argument("--verbose", action="store_true", help="log each request to stderr")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    """Start the double, print its URL, serve until told to stop."""
    args = parse_args(argv)
    double = TwilioDouble(
        account_sid=args.account_sid, auth_token=args.auth_token, host=args.host, port=args.port,
        callbacks=not args.no_callbacks, callback_delay=args.callback_delay,
        queued_callback=args.queued_callback, out_of_order=args.out_of_order,
        duplicate_callbacks=args.duplicate_callbacks, callback_workers=args.callback_workers,
        log_requests=args.verbose,
    ).start()
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    print(double.url, flush=True)
    double.serve_forever(stop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
