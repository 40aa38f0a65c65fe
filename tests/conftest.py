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


UNSTAFFED = ("    ombudsman:\n      phone: PLACEHOLDER (not published)\n"
             "      hours: PLACEHOLDER (not published)")
OPEN_HOURS = '{days: [mon, tue, wed, thu, fri], open: "07:30", close: "17:00"}'


def with_ombudsman(text: str, office_id: str = "ou-chrov", phone: str = '"+85512000999"',
                   hours: str = OPEN_HOURS) -> str:
    """The catalogue's text with one office's Ombudsman number and hours filled in."""
    start = text.index(f"  - id: {office_id}\n")
    at = text.index(UNSTAFFED, start)
    return (text[:at] + f"    ombudsman:\n      phone: {phone}\n      hours: {hours}"
            + text[at + len(UNSTAFFED):])


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


OWN_TWIML_XSD = ROOT / "tests" / "twiml.xsd"


def twiml_schema_paths() -> list[Path]:
    """The project's own TwiML schema (tests/twiml.xsd, always), then the shared TwiML.xsd
    as a second check where it is present (IVR_TWIML_XSD or shared/twiml)."""
    found = [OWN_TWIML_XSD]
    for candidate in (os.environ.get("IVR_TWIML_XSD", ""), str(shared_dir() / "twiml/TwiML.xsd")):
        if candidate and Path(candidate).is_file():
            found.append(Path(candidate))
            break
    return found


class TwimlSchemas:
    """Validates a TwiML document against every schema of `twiml_schema_paths()`; after a
    refusal, `error_log.last_error` says which schema refused it and why."""

    def __init__(self, paths: list[Path] | None = None):
        from types import SimpleNamespace

        from lxml import etree

        self.paths = paths or twiml_schema_paths()
        self.schemas = [(p, etree.XMLSchema(etree.parse(str(p)))) for p in self.paths]
        self.error_log = SimpleNamespace(last_error=None)

    def validate(self, doc) -> bool:
        for path, schema in self.schemas:
            if not schema.validate(doc):
                self.error_log.last_error = f"{path.name}: {schema.error_log.last_error}"
                return False
        return True


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
