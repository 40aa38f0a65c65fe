"""Shared fixtures: a real app on a temporary SQLite file, and requests signed as Twilio does.
The helpers they use, and that tests import, are in tests/support.py (and the caller in
tests/caller.py): a test imports nothing from here (tests/test_tree.py checks)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from ivr import create_app
from ivr.config import Settings
from tests.support import ROOT, TOKEN, Twilio, admin_app_for, signed_in_admin


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


@pytest.fixture
def admin_app(settings: Settings) -> Flask:
    """The app with the admin pages on (tests/support.py's PASSWORD and ACCOUNT)."""
    return admin_app_for(settings)


@pytest.fixture
def admin(admin_app: Flask) -> Any:
    """A client of `admin_app` signed in as the first administrator."""
    return signed_in_admin(admin_app)
