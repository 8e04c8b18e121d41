"""The suite keeps to this machine (tests/conftest.py's guard)."""

import socket

import pytest


def test_a_connection_beyond_loopback_fails_the_test_that_makes_it():
    with pytest.raises(OSError, match="tests talk to this machine only"):
        socket.create_connection(("192.0.2.1", 443), timeout=1)  # TEST-NET-1: routed nowhere
    probe = socket.socket()
    try:
        with pytest.raises(OSError, match="tests talk to this machine only"):
            probe.connect_ex(("2001:db8::1" if probe.family == socket.AF_INET6 else "198.51.100.1", 80))
    finally:
        probe.close()


def test_loopback_is_reached_as_before():
    with socket.create_server(("127.0.0.1", 0)) as server:
        with socket.create_connection(server.getsockname(), timeout=1):
            pass


def test_loopback_named_as_localhost_is_reached_and_another_name_is_not():
    with socket.create_server(("127.0.0.1", 0)) as server:
        with socket.socket() as probe:
            probe.connect(("localhost", server.getsockname()[1]))
        with socket.socket() as probe:
            with pytest.raises(OSError, match="tests talk to this machine only"):
                probe.connect(("api.twilio.com", 443))
