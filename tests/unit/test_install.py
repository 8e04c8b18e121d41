"""bin/install on a machine whose `python3` is older than Hearth needs (Ubuntu 22.04's is 3.10)."""

import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# A Python older than 3.11: it answers --version, and fails the version check bin/install makes.
OLD_PYTHON = '#!/bin/sh\n[ "$1" = --version ] && echo "Python 3.10.12"\nexit 1\n'


def _checkout(tmp_path: Path) -> tuple[Path, Path]:
    """A checkout holding bin/install and pyproject.toml, and a PATH whose python3 is 3.10."""
    checkout = tmp_path / "hearth"
    (checkout / "bin").mkdir(parents=True)
    shutil.copy(ROOT / "bin" / "install", checkout / "bin" / "install")
    shutil.copy(ROOT / "pyproject.toml", checkout / "pyproject.toml")
    path = tmp_path / "path"
    path.mkdir()
    for tool in ("bash", "cat", "cut", "dirname", "grep", "rm", "sha256sum"):
        (path / tool).symlink_to(shutil.which(tool))
    (path / "python3").write_text(OLD_PYTHON)
    (path / "python3").chmod(0o755)
    return checkout, path


def _install(checkout: Path, path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(checkout / "bin" / "install")], env={**os.environ, "PATH": str(path)},
                          capture_output=True, text=True, timeout=60)


def test_an_old_python3_is_refused_saying_what_to_install(tmp_path):
    checkout, path = _checkout(tmp_path)
    done = _install(checkout, path)
    assert done.returncode == 1
    assert "Hearth needs Python 3.11 or newer, and python3 is Python 3.10.12" in done.stderr
    assert "apt-get install python3.11 python3.11-venv" in done.stderr
    assert not (checkout / ".venv").exists()


def test_a_venv_made_with_an_old_python_is_not_kept(tmp_path):
    """Made by an earlier run before a newer Python was installed, it would fail every run after."""
    checkout, path = _checkout(tmp_path)
    (checkout / ".venv" / "bin").mkdir(parents=True)
    (checkout / ".venv" / "bin" / "python").write_text(OLD_PYTHON)
    (checkout / ".venv" / "bin" / "python").chmod(0o755)
    done = _install(checkout, path)
    assert done.returncode == 1
    assert ".venv was made with Python 3.10.12" in done.stderr
    assert not (checkout / ".venv").exists()
