"""End to end: the service's own processes, a real database and Redis, and the Twilio double on loopback."""

from __future__ import annotations

import pytest

from service.twilio_double import TwilioDouble
from tests.conftest import ACCOUNT_SID, AUTH_TOKEN, REDIS_URL
from tests.e2e.stack import Stack


def pytest_collection_modifyitems(items):
    for item in items:
        item.add_marker(pytest.mark.e2e)


@pytest.fixture
def double():
    with TwilioDouble(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN) as double:
        yield double


@pytest.fixture
def stack_env(database_url, redis, double):
    return {
        "DATABASE_URL": database_url, "REDIS_URL": REDIS_URL, "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN, "TWILIO_FROM_NUMBER": "+441632960000", "TWILIO_API_BASE": double.url,
        "HEARTH_TRANSPORT": "twilio", "HEARTH_SEND_RATE": "0", "HEARTH_SEND_LEASE": "3",
    }


@pytest.fixture
def stack(stack_env, tmp_path):
    stack = Stack(stack_env, tmp_path)
    yield stack
    stack.stop()
