"""The web process's gunicorn settings: the Procfile uses them, and a worker freezes what it built."""

import gc
import runpy
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_procfile_web_line_reads_the_config_file():
    [web] = [line for line in (ROOT / "Procfile").read_text().splitlines() if line.startswith("web:")]
    assert "--config gunicorn.conf.py" in web


def test_a_worker_keeps_the_collector_out_of_what_it_built():
    settings = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    built = [{"object": i} for i in range(1000)]  # stands for the app a worker has just loaded
    assert gc.get_freeze_count() == 0
    try:
        settings["post_worker_init"](worker=None)
        assert gc.get_freeze_count() >= len(built)
    finally:
        gc.unfreeze()
