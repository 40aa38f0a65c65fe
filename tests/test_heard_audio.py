"""What the caller hears, once the prompts are rendered: every prompt is a <Play> of a file,
and the scenario tests still read what it says (the text the manifest keeps for that file).

The prompts are rendered once for the module with the offline placeholder engine (`ivr
render --engine placeholder`); a call made on that audio folder must not <Say> anything.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner
from lxml import etree

from ivr import create_app
from ivr.cli import main as cli
from ivr.simulate import RecordPrompt
from tests.caller import Caller
from tests.support import ROOT, Twilio


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> Path:
    audio = tmp_path_factory.mktemp("rendered") / "audio"
    result = CliRunner().invoke(cli, [
        "render", "--engine", "placeholder", "--catalog", str(ROOT / "catalog.yaml"),
        "--prompts", str(ROOT / "prompts"), "--audio-dir", str(audio), "--jobs", "4"])
    assert result.exit_code == 0, result.output
    return audio


@pytest.fixture
def spoken(rendered) -> dict[tuple[str, str], str]:
    """(key, lang) -> the text its audio file says, straight from audio/manifest.json."""
    manifest = json.loads((rendered / "manifest.json").read_text(encoding="utf-8"))
    assert {p["engine"] for p in manifest["prompts"]} == {"placeholder"}
    return {(p["key"], p["lang"]): p["text"] for p in manifest["prompts"]}


@pytest.fixture
def line(settings, rendered) -> Twilio:
    return Twilio(create_app(replace(settings, audio_dir=rendered)))


def only_audio(call: Caller) -> None:
    """Every document of the call plays files and says nothing."""
    steps = call.transcript.steps
    assert steps
    for step in steps:
        doc = etree.fromstring(step.twiml.encode())
        assert not doc.findall(".//Say"), step.twiml
        assert all(p.kind == "play" and p.value.startswith("http://localhost/audio/")
                   for p in step.prompts), step.twiml
    assert any(etree.fromstring(s.twiml.encode()).findall(".//Play") for s in steps)


@pytest.mark.parametrize("carrier", ["twilio", "somleng"])
def test_calls_play_the_rendered_audio_and_say_nothing(line, spoken, carrier):
    # fetch_audio: the carrier fetches every file it plays, and fails on anything but a 2xx
    call = Caller(line, carrier=carrier, fetch_audio=True).start("2").press("1")
    assert spoken["menu.categories.intro", "en"] in call.heard()
    call.press("2")
    only_audio(call)
    assert call.call.sim.audio_status and set(call.call.sim.audio_status.values()) == {200}


@pytest.mark.parametrize("lang, keys", [("en", "2"), ("km", None)])
def test_a_services_facts_are_heard_from_its_audio(line, spoken, lang, keys):
    call = Caller(line).start(keys).press("1").press("2").press("1")  # barber shop
    facts = spoken["service.barber-2-4-chairs.info", lang]
    assert facts in call.heard()
    if lang == "en":
        assert "20,000 riel" in call.heard()
    call.press("1")  # hear it again
    assert call.heard().startswith(facts)
    only_audio(call)


@pytest.mark.parametrize("carrier", ["twilio", "somleng"])
@pytest.mark.parametrize("lang, keys", [("en", "2"), ("km", None)])
def test_a_case_reference_is_heard_digit_by_digit_from_its_audio(line, settings, spoken,
                                                                 carrier, lang, keys):
    call = Caller(line, carrier=carrier).start(keys).press("4").press("1").press("1")
    call.press("0105#")
    assert isinstance(call.waiting, RecordPrompt)
    assert spoken["complaint.notice", lang] in call.heard()
    call.record(12)
    with sqlite3.connect(settings.database) as db:
        ((reference,),) = db.execute("SELECT reference FROM recordings").fetchall()
    read_back = " ".join([spoken["reference.is", lang],
                          *(spoken[f"digit.{digit}", lang] for digit in reference)])
    assert read_back in call.heard()
    call.press("1")  # hear it again
    assert read_back in call.heard()
    only_audio(call)
