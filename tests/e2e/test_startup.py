"""Each Procfile line, run as it is, on settings it cannot use: one line naming the setting, status 1."""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.e2e.stack import BIN, ROOT, free_port, procfile_line


@pytest.mark.parametrize("process", ["web", "worker", "clock"])
@pytest.mark.parametrize("setting, says", [
    ("HEARTH_SEND_RATE=abc", "HEARTH_SEND_RATE must be a number of messages per second"),
    ("PUBLIC_BASE_URL=hearth.example.org", "PUBLIC_BASE_URL must be an absolute URL"),
    ("DATABASE_URL=sqlite://", "DATABASE_URL names no file"),
])
def test_a_process_on_a_setting_it_cannot_use_stops_at_once_saying_which(stack_env, process, setting, says):
    name, _, value = setting.partition("=")
    env = {**os.environ, **stack_env, "PORT": str(free_port()), "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
           name: value}
    done = subprocess.run(procfile_line(process), cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    output = done.stdout + done.stderr
    assert done.returncode == 1, output[-2000:]
    assert f"hearth {process}: cannot start: {says}" in output and "Traceback" not in output, output[-2000:]


@pytest.mark.parametrize("process", ["web", "worker", "clock"])
def test_no_procfile_line_puts_a_redis_or_database_password_in_the_process_list(process):
    """Any user of the host can read a process's arguments (`ps`): the settings that may hold a
    password are read from the environment, never passed on the command line."""
    env = {"PATH": os.environ["PATH"], "PORT": "5000", "REDIS_URL": "redis://:s3cret-redis@redis.internal:6379/0",
           "DATABASE_URL": "postgresql://hearth:s3cret-db@db.internal/hearth"}
    # The line's arguments as the shell hands them to the program, with the environment's values in.
    command = procfile_line(process)[-1].removeprefix("exec ")
    shown = subprocess.run(["sh", "-c", f"set -- {command}; printf '%s\\n' \"$@\""], cwd=ROOT, env=env,
                           capture_output=True, text=True, timeout=10)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.split("\n")[0] == command.split()[0]  # the arguments, the program's name first
    assert "s3cret" not in shown.stdout, shown.stdout
