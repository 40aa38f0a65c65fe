"""Shared fixtures: a real app on a temporary SQLite file, and requests signed as Twilio does."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from twilio.request_validator import RequestValidator

from ivr import create_app
from ivr.config import Settings
from ivr.simulate import sign
from tests.caller import Caller  # noqa: F401 - scenario tests import it from here

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "test-auth-token-0123456789"
CALLER = "+85512345678"


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def line_env(tmp_path: Path) -> dict[str, str]:
    """The environment for a line under gunicorn on a temporary database and audio folder."""
    return {**os.environ, "TWILIO_AUTH_TOKEN": TOKEN, "IVR_CATALOG": str(ROOT / "catalog.yaml"),
            "IVR_PROMPTS": str(ROOT / "prompts"), "IVR_AUDIO_DIR": str(tmp_path / "audio"),
            "IVR_DATABASE": str(tmp_path / "ivr.db"), "IVR_CALLER_KEY": "k"}


def shared_dir() -> Path:
    """The workplace's shared/ folder: IVR_SHARED (set by .ci/run), else beside the repo."""
    return Path(os.environ.get("IVR_SHARED") or ROOT.parent / "shared")


def twiml_schema_path() -> Path:
    """TwiML.xsd from IVR_TWIML_XSD or shared/twiml."""
    candidates = [os.environ.get("IVR_TWIML_XSD", ""), str(shared_dir() / "twiml/TwiML.xsd")]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    raise FileNotFoundError("TwiML.xsd not found: set IVR_TWIML_XSD or IVR_SHARED, or put "
                            "shared/ beside the repo")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(auth_token=TOKEN, catalog=ROOT / "catalog.yaml", prompts=ROOT / "prompts",
                    audio_dir=tmp_path / "audio", database=tmp_path / "ivr.db",
                    caller_key=b"test-caller-key")


@pytest.fixture
def app(settings: Settings):
    return create_app(settings)


class Twilio:
    """Posts to the app as Twilio would: absolute URL, form params, X-Twilio-Signature
    (signed by the simulator's `sign`, the same code `ivr call` and the load test use)."""

    def __init__(self, app, token: str = TOKEN, base: str = "http://localhost"):
        self.client = app.test_client() if app is not None else None
        self.token = token
        self.validator = RequestValidator(token)
        self.base = base

    def post(self, url: str, params: dict[str, str] | None = None, signed_url: str = "",
             **headers: str):
        """POST `url`; the signature covers `signed_url` (the public URL) when given."""
        full = url if url.startswith("http") else self.base + url
        params = {"CallSid": "CA" + "0" * 32, "From": CALLER, "To": "+85523000000",
                  **(params or {})}
        signature = sign(self.token, signed_url or full, params)
        return self.send(full, params, {"X-Twilio-Signature": signature, **headers})

    def send(self, url: str, params: dict[str, str], headers: dict[str, str]):
        return self.client.post(url, data=params, headers=headers)


class HttpTwilio(Twilio):
    """The same, over real HTTP to a running server (gunicorn in the concurrency tests)."""

    def __init__(self, base: str, token: str = TOKEN):
        import requests

        super().__init__(None, token, base)
        self.session = requests.Session()

    def send(self, url: str, params: dict[str, str], headers: dict[str, str]):
        from types import SimpleNamespace

        reply = self.session.post(url, data=params, headers=headers, timeout=30)
        return SimpleNamespace(status_code=reply.status_code, data=reply.content)


@pytest.fixture
def twilio(app) -> Twilio:
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
