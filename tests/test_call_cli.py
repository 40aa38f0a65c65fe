"""`ivr call --keys`: scripted calls through the simulator, printed as transcripts."""

from __future__ import annotations

import sqlite3
from datetime import datetime, time

import pytest
from click.testing import CliRunner

from ivr.cases import CAMBODIA
from ivr.cli import main as cli
from tests.support import ROOT, with_ombudsman


@pytest.fixture
def env(monkeypatch, tmp_path):
    monkeypatch.setenv("IVR_DATABASE", str(tmp_path / "ivr.db"))
    monkeypatch.setenv("IVR_AUDIO_DIR", str(tmp_path / "audio"))
    monkeypatch.setenv("IVR_CATALOG", str(ROOT / "catalog.yaml"))
    monkeypatch.setenv("IVR_PROMPTS", str(ROOT / "prompts"))
    monkeypatch.delenv("TWILIO_AUTH_TOKEN", raising=False)
    return tmp_path


def call(*args: str) -> str:
    result = CliRunner().invoke(cli, ["call", *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_browse_transcript(env):
    out = call("--keys", "2 1 4 1 2 4")
    assert "Main menu." in out
    assert "Information about a construction permit for a villa" in out
    assert "Where will you build?" in out
    assert "A building in a built-up area, more than 300 and up to 400 square metres: " \
           "The official fee is 1,400,000 riel." in out
    assert "keys: 4" in out and "[403]" not in out and "[500]" not in out


def test_complaint_topics_offer_something_else_or_a_suggestion(env):
    """The English topic was cut at its comma by YAML once: "For something else, press 5"."""
    out = call("--keys", "2 4")
    assert "For something else, or a suggestion, press 5." in out


def test_khmer_by_silence_transcript(env):
    out = call("--keys", "- 1 5 1")
    assert "/voice/km/service/licence-a-exam" in out or "/voice/km/category/transport" in out
    assert "keys: (no input)" in out


def test_rating_transcript(env):
    out = call("--keys", "2 2 1 0203# 1 1 1 4 4 2 1 2")
    assert "Your reference number is" in out
    with sqlite3.connect(env / "ivr.db") as conn:
        assert dict(conn.execute("SELECT question, value FROM answers")) == {
            "quality": "4", "timeliness": "4", "unofficial-payment": "no", "gender": "woman"}


def test_complaint_transcript(env):
    out = call("--keys", "2 4 1 1 0105# 1", "--record-seconds", "30")
    assert "administrators of this line will listen" in out and "record 30s" in out
    assert "Your message has been recorded." in out and "Your reference number is" in out
    with sqlite3.connect(env / "ivr.db") as conn:
        assert conn.execute("SELECT kind, topic, office_id, duration_s FROM recordings"
                            ).fetchall() == [("complaint", "unofficial-fee", "ou-chrov", 30)]


@pytest.fixture
def staffed(env, monkeypatch):
    """Ou Chrov's Ombudsman with a number and hours covering today."""
    if datetime.now(CAMBODIA).time() >= time(23, 58):
        pytest.skip("too close to midnight in Phnom Penh for an all-day opening")
    text = with_ombudsman((ROOT / "catalog.yaml").read_text(encoding="utf-8"), hours=(
        '{days: [mon, tue, wed, thu, fri, sat, sun], open: "00:00", close: "23:59"}'))
    path = env / "catalog.yaml"
    path.write_text(text, encoding="utf-8")
    monkeypatch.setenv("IVR_CATALOG", str(path))


@pytest.mark.parametrize("outcome, heard", [
    ("completed", "Goodbye."), ("busy", "line is busy"), ("no-answer", "Nobody answered"),
    ("failed", "could not be connected"), ("canceled", "was cancelled")])
def test_ombudsman_transcript_for_each_dial_outcome(staffed, outcome, heard):
    out = call("--keys", "2 3 1 0105# 1 1", "--dial", outcome)
    assert "Connecting you to the Ombudsman's office of Ou Chrov District" in out
    assert f"dial +85512000999: {outcome}" in out
    assert heard in out
    if outcome != "completed":  # then 1: leave a message instead
        assert "leave a voice message" in out and "Your reference number is" in out


def test_ombudsman_without_a_published_number(env):
    out = call("--keys", "2 3 1 0105# 1 1")
    assert "cannot put you through to this Ombudsman by phone yet" in out
    assert "  dial " not in out  # the line never dials a placeholder
