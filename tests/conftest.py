"""Shared fixtures: a real app on a temporary SQLite file, and requests signed as Twilio does.
The helpers they use, and that tests import, are in tests/support.py (and the caller in
tests/caller.py); the names below are re-exported for the tests that still import them here."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask

from ivr import create_app
from ivr.config import Settings
from tests.caller import Caller  # noqa: F401
from tests.support import (  # noqa: F401
    CALLER,
    OPEN_HOURS,
    OWN_TWIML_XSD,
    ROOT,
    TOKEN,
    HttpTwilio,
    Twilio,
    TwimlSchemas,
    free_port,
    line_env,
    shared_dir,
    twiml_schema_paths,
    with_ombudsman,
)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(auth_token=TOKEN, catalog=ROOT / "catalog.yaml", prompts=ROOT / "prompts",
                    audio_dir=tmp_path / "audio", database=tmp_path / "ivr.db",
                    caller_key=b"test-caller-key")


@pytest.fixture
def app(settings: Settings) -> Flask:
    return create_app(settings)


@pytest.fixture
def twilio(app: Flask) -> Twilio:
    return Twilio(app)


def workers_of(master: int) -> set[int]:
    """The worker processes: children of the gunicorn master."""
    found: set[int] = set()
    for children in Path(f"/proc/{master}/task").glob("*/children"):
        try:
            found |= {int(pid) for pid in children.read_text().split()}
        except OSError:
            pass
    return found


def wait_until(condition, seconds: float, step: float = 0.05) -> bool:
    """Poll `condition` until it is true (True) or `seconds` have passed (False)."""
    import time

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return bool(condition())


class Gunicorn:
    """The line under gunicorn with the production settings (ivr/gunicorn_conf.py), on a
    temporary database; `args` are added to (and override) them. Its log is kept."""

    def __init__(self, tmp_path: Path, *args: str, env: dict[str, str] | None = None,
                 bind: str | None = None, wait: bool = True, workers: int = 2):
        import subprocess
        import sys

        self.port = free_port()
        self.bind = bind or f"127.0.0.1:{self.port}"
        self.base = f"http://127.0.0.1:{self.port}"
        self.database = tmp_path / "ivr.db"
        self.log_path = tmp_path / "gunicorn.log"
        self.workers = workers
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "python:ivr.gunicorn_conf",
             "-w", str(workers), "-b", self.bind, "--log-level", "info", *args,
             "ivr:create_app()"],
            env={**line_env(tmp_path), **(env or {})}, cwd=ROOT, stdout=self._log,
            stderr=subprocess.STDOUT)
        if wait and not wait_until(self.ready, 60, 0.1):
            self.stop()
            pytest.fail("gunicorn did not start: " + self.log()[-3000:])

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def worker_pids(self) -> set[int]:
        return workers_of(self.pid)

    def health(self, timeout: float = 5) -> bool:
        import requests

        try:
            return requests.get(self.base + "/health", timeout=timeout).ok
        except requests.RequestException:
            return False

    def ready(self) -> bool:
        return self.alive() and len(self.worker_pids()) == self.workers and self.health(2)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        import subprocess

        if self.alive():
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self._log.close()
