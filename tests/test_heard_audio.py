"""What the caller hears, once the prompts are rendered: every prompt is a <Play> of a file,
and the scenario tests still read what it says (the text the manifest keeps for that file).

The prompts are rendered once for the module with the offline placeholder engine (`ivr
render --engine placeholder`); a call made on that audio folder must not <Say> anything.
"""

from __future__ import annotations

import json
import shutil
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
    call.press("0105#").press("1")  # Ou Chrov, said back; 1 goes on
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


@pytest.mark.parametrize("carrier", ["twilio", "somleng"])
def test_a_keyed_code_names_the_office_from_its_audio(line, spoken, carrier):
    """Khmer: the office chosen by its code is said by its own prompt (office.<id>.chosen),
    and so is one chosen by province and district."""
    call = Caller(line, carrier=carrier).start().press("2").press("1").press("0105#")
    assert spoken["office.ou-chrov.chosen", "km"] in call.heard()
    assert "ស្រុកអូរជ្រៅ" in spoken["office.ou-chrov.chosen", "km"]
    assert spoken["office.chosen.keys", "km"] in call.heard()
    call.press("2").press("2").press("2").press("4")  # another: Battambang, Bavel
    assert spoken["office.bavel.chosen", "km"] in call.heard()
    only_audio(call)


def test_a_closed_ombudsman_line_says_when_it_opens_from_its_audio(settings, rendered,
                                                                   tmp_path):
    """Rendered with the catalogue whose Ombudsman has hours: the opening time is its own
    prompt, in Khmer words."""
    from datetime import datetime, timezone

    from tests.support import with_ombudsman

    text = with_ombudsman((ROOT / "catalog.yaml").read_text(encoding="utf-8"))
    path = tmp_path / "staffed.yaml"
    path.write_text(text, encoding="utf-8")
    audio = tmp_path / "audio"
    shutil.copytree(rendered, audio)  # then only what this catalogue adds is rendered
    result = CliRunner().invoke(cli, [
        "render", "--engine", "placeholder", "--catalog", str(path), "--prompts",
        str(ROOT / "prompts"), "--audio-dir", str(audio), "--jobs", "2"])
    assert result.exit_code == 0, result.output
    app = create_app(replace(settings, catalog=path, audio_dir=audio))
    app.extensions["ivr"].clock = lambda: datetime(2026, 11, 28, 3, 0, tzinfo=timezone.utc)
    call = Caller(Twilio(app)).start().press("3").press("1").press("0105#").silence()
    assert "ការិយាល័យនឹងបើកវិញនៅថ្ងៃច័ន្ទ ម៉ោងប្រាំពីរ និងសាមសិបនាទីព្រឹក។" in call.heard()
    only_audio(call)
