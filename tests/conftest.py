"""Shared fixtures: a real app on a temporary SQLite file, and requests signed as Twilio does."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from twilio.request_validator import RequestValidator

from ivr import create_app
from ivr.config import Settings

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "test-auth-token-0123456789"
CALLER = "+85512345678"


def twiml_schema_path() -> Path:
    """TwiML.xsd from ../shared (CI clones main with shared/ beside it) or IVR_TWIML_XSD."""
    candidates = [os.environ.get("IVR_TWIML_XSD", ""), str(ROOT.parent / "shared/twiml/TwiML.xsd")]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    raise FileNotFoundError("TwiML.xsd not found: set IVR_TWIML_XSD or put shared/ beside the repo")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(auth_token=TOKEN, catalog=ROOT / "catalog.yaml", prompts=ROOT / "prompts",
                    audio_dir=tmp_path / "audio", database=tmp_path / "ivr.db",
                    caller_key=b"test-caller-key")


@pytest.fixture
def app(settings: Settings):
    return create_app(settings)


class Twilio:
    """Posts to the app as Twilio would: absolute URL, form params, X-Twilio-Signature."""

    def __init__(self, app, token: str = TOKEN, base: str = "http://localhost"):
        self.client = app.test_client()
        self.validator = RequestValidator(token)
        self.base = base

    def post(self, url: str, params: dict[str, str] | None = None, signed_url: str = "",
             **headers: str):
        """POST `url`; the signature covers `signed_url` (the public URL) when given."""
        full = url if url.startswith("http") else self.base + url
        params = {"CallSid": "CA" + "0" * 32, "From": CALLER, "To": "+85523000000",
                  **(params or {})}
        signature = self.validator.compute_signature(signed_url or full, params)
        return self.client.post(full, data=params,
                                headers={"X-Twilio-Signature": signature, **headers})


@pytest.fixture
def twilio(app) -> Twilio:
    return Twilio(app)
