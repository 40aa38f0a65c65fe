"""Sentences said from their parts: with a person's recording of every Khmer utterance, a fee
changed in catalog.yaml needs no new recording, and a Khmer caller still hears only audio."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from lxml import etree

from ivr import create_app
from ivr.catalog import load_catalog
from ivr.check import check
from ivr.config import Settings
from ivr.khmer import number_words
from ivr.prompts import PromptBook, load_wording
from ivr.render import (
    FFMPEG,
    MISSING,
    PERSON,
    STALE,
    PlaceholderEngine,
    _wav_bytes,
    audio_sources,
    load_utterances,
    render,
)
from tests.caller import Caller
from tests.support import ROOT, TOKEN, Twilio, catalog_variant

TONES = (330, 440, 550, 660, 770)  # Hz


def raise_barber_fee(catalog: Path) -> None:
    """The barber's licence: 20,000 riel becomes 25,000 (an administrator's edit)."""
    text = catalog.read_text(encoding="utf-8")
    start = text.index("- id: barber-2-4-chairs")
    at = text.index("riel: 20000", start)
    catalog.write_text(text[:at] + "riel: 25000" + text[at + len("riel: 20000"):],
                       encoding="utf-8")


def tone(path: Path, hz: int) -> None:
    subprocess.run([FFMPEG, "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i",
                    f"sine=frequency={hz}:duration=0.6", "-ar", "8000", "-ac", "1",
                    "-c:a", "pcm_s16le", "-y", str(path)], check=True)


def pcm_of(path: Path) -> bytes:
    data = path.read_bytes()
    return data[data.index(b"data") + 8:]


def recorded(line: dict[str, Path]) -> list:
    """The utterances a person recorded: every Khmer one, and the greeting's English offer."""
    return [u for u in load_utterances(line["catalog"], line["prompts"])
            if u.lang == "km" or u.key == "language.offer"]


def record_everything(prompts: Path, catalog: Path, lang: str = "km") -> int:
    """A person's recording (a tone made by ffmpeg) for every utterance of `lang`."""
    folder = prompts / "recordings" / lang
    folder.mkdir(parents=True)
    tones = []
    for hz in TONES:
        tone(folder.parent / f"{hz}.wav", hz)
        tones.append(pcm_of(folder.parent / f"{hz}.wav"))
    utterances = [u for u in load_utterances(catalog, prompts) if u.lang == lang]
    for i, u in enumerate(utterances):  # each its own file: a tone, cut to its own length
        pcm = tones[i % len(tones)][:2 * (1600 + i)]
        (folder / f"{u.key}.wav").write_bytes(_wav_bytes(pcm, 8000))
    # the greeting offers English in English
    (folder.parent / "en").mkdir()
    shutil.copyfile(folder.parent / f"{TONES[0]}.wav", folder.parent / "en" / "language.offer.wav")
    return len(utterances)


@pytest.fixture
def line(tmp_path: Path) -> dict[str, Path]:
    prompts = tmp_path / "prompts"
    prompts.mkdir()
    for name in ("km.yaml", "en.yaml"):
        shutil.copyfile(ROOT / "prompts" / name, prompts / name)
    catalog = catalog_variant(tmp_path / "catalog.yaml")
    return {"prompts": prompts, "catalog": catalog, "audio": tmp_path / "audio"}


def khmer_counts(line: dict[str, Path]) -> dict[str, int]:
    utterances = [u for u in load_utterances(line["catalog"], line["prompts"])
                  if u.lang == "km"]
    counts = dict.fromkeys((PERSON, STALE, MISSING), 0)
    for s in audio_sources(utterances, line["audio"], line["prompts"] / "recordings"):
        counts[s.status] = counts.get(s.status, 0) + 1
    return counts


def barber_keys(catalog_path: Path) -> str:
    """The keys a Khmer caller presses from the main menu to the barber's licence."""
    catalog = load_catalog(catalog_path)
    category = next(c for c in catalog.categories
                    if any(s.id == "barber-2-4-chairs" for s in c.services))
    service = next(s for s in category.services if s.id == "barber-2-4-chairs")
    return (f"1 {catalog.categories.index(category) + 1} "
            f"{category.services.index(service) + 1}")


def test_a_fee_edit_needs_no_new_recording_and_the_call_plays_only_audio(line, tmp_path):
    record_everything(line["prompts"], line["catalog"])
    engine = PlaceholderEngine()  # never used for Khmer: every prompt has a recording
    first = render(recorded(line), line["audio"], engine,
                   recordings_dir=line["prompts"] / "recordings", jobs=2,
                   langs=["km", "en"])
    assert first.ok and first.conversions == len(first.rendered), first.line()
    before = khmer_counts(line)
    assert before[STALE] == before[MISSING] == 0 and before[PERSON] > 1000, before

    # the barber's fee goes up; the recordings stay as they are
    raise_barber_fee(line["catalog"])
    utterances = recorded(line)
    info = next(u for u in utterances if u.key == "service.barber-2-4-chairs.info"
                and u.lang == "km")
    assert number_words(25000) in info.text
    second = render(utterances, line["audio"], engine,
                    recordings_dir=line["prompts"] / "recordings", langs=["km", "en"])
    assert second.ok and second.conversions == 0, second.line()  # nothing new to record
    after = khmer_counts(line)
    assert after[STALE] == 0 and after[MISSING] == 0, after
    assert after[PERSON] == before[PERSON]

    # `ivr check` agrees: the Khmer line is all a person's voice, some said from parts
    settings = Settings(auth_token=TOKEN, catalog=line["catalog"], prompts=line["prompts"],
                        audio_dir=line["audio"], database=tmp_path / "ivr.db",
                        caller_key=b"k")
    report = check(line["catalog"], line["prompts"], line["audio"], settings)
    km = next(s for s in report.lines if s.startswith("audio [km]"))
    assert " 0 stale, 0 missing; " in km and "said from their parts" in km, km
    assert not [e for e in report.errors if "[km]" in e], report.errors[:5]

    # a Khmer caller asks for the barber's licence: only <Play>, and the new fee is heard
    call = Caller(Twilio(create_app(settings))).start()
    keys = barber_keys(line["catalog"]).split()
    for key in keys[:-1]:
        call.press(key)
    call.press(keys[-1])
    for step in call.transcript.steps:
        doc = etree.fromstring(step.twiml.encode())
        assert not doc.findall(".//Say"), step.twiml
    book = PromptBook(load_catalog(line["catalog"]),
                      load_wording(line["prompts"], ("km", "en")))
    parts = book.parts("service.barber-2-4-chairs.info", "km")
    heard = call.heard()
    fee_words = [book.text(k, "km") for k in ("digit.2", "number.10000", "digit.5",
                                              "number.1000")]
    assert " ".join(fee_words) in heard, heard
    assert heard.startswith(" ".join(book.text(k, "km") for k in parts)), heard


def test_without_composition_the_stale_sentence_would_be_english(line, tmp_path):
    """The same edit, but the parts have no audio: the line falls back to <Say> and `ivr
    check` fails on it -- what composing avoids (and what the test above would catch)."""
    folder = line["prompts"] / "recordings" / "km"
    folder.mkdir(parents=True)
    tone(folder / "service.barber-2-4-chairs.info.wav", 440)
    utterances = load_utterances(line["catalog"], line["prompts"])
    render([u for u in utterances if u.key == "service.barber-2-4-chairs.info"],
           line["audio"], PlaceholderEngine(), recordings_dir=folder.parent, langs=["km"])
    raise_barber_fee(line["catalog"])
    sources = audio_sources(load_utterances(line["catalog"], line["prompts"]), line["audio"],
                            folder.parent)
    info = next(s for s in sources if s.key == "service.barber-2-4-chairs.info"
                and s.lang == "km")
    assert info.status == STALE and info.recording_stale and not info.composed

    # and a Khmer caller hears that sentence as English text
    settings = Settings(auth_token=TOKEN, catalog=line["catalog"], prompts=line["prompts"],
                        audio_dir=line["audio"], database=tmp_path / "ivr.db",
                        caller_key=b"k")
    call = Caller(Twilio(create_app(settings))).start()
    for key in barber_keys(line["catalog"]).split():
        call.press(key)
    book = PromptBook(load_catalog(line["catalog"]),
                      load_wording(line["prompts"], ("km", "en")))
    said = [e.text for e in call.doc.iter("Say")]
    assert book.text("service.barber-2-4-chairs.info", "en") in said


def test_where_audio_comes_from(tmp_path):
    """Each status `audio_sources` gives, from a manifest and a recordings folder."""
    from ivr.render import ENGINE, PLACEHOLDER, Utterance, write_manifest

    audio = tmp_path / "audio"
    (audio / "km").mkdir(parents=True)
    recordings = tmp_path / "recordings"
    (recordings / "km").mkdir(parents=True)
    (recordings / "km" / "a.wav").write_bytes(b"RIFF")
    utterances = [Utterance("a", "km", "ក"), Utterance("b", "km", "ខ"),
                  Utterance("c", "km", "គ"), Utterance("d", "km", "ឃ"),
                  Utterance("e", "km", "ង"),
                  Utterance("ab", "km", "កខ", ("a", "b")),
                  Utterance("ac", "km", "កគ", ("a", "c")),
                  Utterance("ad", "km", "កឃ", ("a", "d")),
                  Utterance("aa", "km", "កក", ("a", "a"))]
    entries = []
    for key, text, engine in (("a", "ក", "recording"), ("b", "ខ", "azure"),
                              ("c", "គ", "placeholder"), ("d", "old", "gtts"),
                              ("ad", "old", "gtts"), ("aa", "old", "recording")):
        (audio / "km" / f"{key}.wav").write_bytes(b"RIFF")
        entries.append({"key": key, "lang": "km", "text": text, "file": f"km/{key}.wav",
                        "duration_ms": 500, "engine": engine, "fingerprint": key})
    write_manifest(audio, entries)
    got = {s.key: s for s in audio_sources(utterances, audio, recordings)}
    assert {k: s.status for k, s in got.items()} == {
        "a": PERSON, "b": ENGINE, "c": PLACEHOLDER, "d": STALE, "e": MISSING,
        "ab": ENGINE, "ac": PLACEHOLDER, "ad": STALE, "aa": PERSON}
    assert got["b"].engine == "azure" and got["ab"].engine == "azure+recording"
    assert got["ab"].composed and got["aa"].composed and not got["a"].composed
    assert got["a"].recording == recordings / "km" / "a.wav" and got["b"].recording is None
    assert got["a"].file == "km/a.wav" and got["ab"].file is None
    assert not got["ad"].playable and got["ab"].playable
