"""Rendering prompts to audio, offline, with real ffmpeg and gTTS's own code.

Google is replaced at the HTTP transport (requests' HTTPAdapter.send): gTTS still builds its
batchexecute request, sends it through a requests Session and parses the reply, which carries
a real MP3 made with ffmpeg at test time.
"""

from __future__ import annotations

import base64
import json
import os
import re
import struct
import subprocess
import sys
import threading
import unicodedata
import urllib.parse
from collections import Counter
from pathlib import Path

import pytest
import requests
from requests.structures import CaseInsensitiveDict

from ivr import render as r
from ivr.utterance import Utterance

ROOT = Path(__file__).resolve().parent.parent
LONG_KM = (
    "សូមស្វាគមន៍មកកាន់ខ្សែទូរស័ព្ទព័ត៌មានអំពីសេវារបស់ការិយាល័យច្រកចេញចូលតែមួយ។ "
    "ខ្សែទូរស័ព្ទនេះប្រាប់អ្នកពីឯកសារដែលត្រូវការ តម្លៃសេវាផ្លូវការ "
    "និងរយៈពេលអតិបរមាសម្រាប់សេវានីមួយៗដែលការិយាល័យផ្តល់ជូនប្រជាពលរដ្ឋ។"
)
UTTERANCES = [
    Utterance("greeting", "km", "សូមស្វាគមន៍។"),
    Utterance("menu.main", "km", "ដើម្បីស្តាប់ព័ត៌មានសេវា សូមចុចលេខមួយ។"),
    Utterance("fee", "km", "តម្លៃសេវា 5,000 រៀល។"),
    Utterance("greeting", "en", "Welcome."),
    Utterance("menu.main", "en", "For information about services, press 1."),
]


# --- A fake Google behind gTTS ---------------------------------------------------------------


@pytest.fixture(scope="session")
def mp3() -> bytes:
    """0.3 s of a 440 Hz tone as MP3, made by the same ffmpeg the renderer uses."""
    run = subprocess.run(
        [r.FFMPEG, "-hide_banner", "-loglevel", "error", "-f", "lavfi",
         "-i", "sine=frequency=440:duration=0.3", "-ac", "1", "-ar", "24000",
         "-c:a", "libmp3lame", "-b:a", "32k", "-f", "mp3", "pipe:1"],
        capture_output=True, check=True)
    return run.stdout


class FakeGoogle:
    """translate.google.com's batchexecute endpoint, as gTTS sees it.

    `fail_once[text]` lists answers to give for that text before a good one (429, 503 or
    "timeout"); `fail_always[text]` is given every time."""

    def __init__(self, mp3: bytes):
        self.mp3 = mp3
        self.calls: list[dict] = []
        self.fail_once: dict[str, list] = {}
        self.fail_always: dict[str, object] = {}
        self.lock = threading.Lock()

    def texts(self) -> list[str]:
        return [c["text"] for c in self.calls]

    def send(self, adapter, request, stream=False, timeout=None, verify=True, cert=None,
             proxies=None):
        assert request.url.endswith("/_/TranslateWebserverUi/data/batchexecute")
        form = urllib.parse.parse_qs(request.body)
        rpc = json.loads(form["f.req"][0])
        text, lang = json.loads(rpc[0][0][1])[:2]
        with self.lock:
            self.calls.append({"text": text, "lang": lang, "timeout": timeout})
            queued = self.fail_once.get(text)
            outcome = queued.pop(0) if queued else self.fail_always.get(text, 200)
        if outcome == "timeout":
            raise requests.exceptions.ReadTimeout("read timed out (fake)", request=request)
        if outcome != 200:
            return self.reply(request, int(outcome), b"busy")
        payload = json.dumps([base64.b64encode(self.mp3).decode("ascii")])
        line = json.dumps([["wrb.fr", "jQ1olc", payload, None, None, None, "generic"],
                           ["di", 42], ["af.httprm", 41, "-1", 7]], separators=(",", ":"))
        body = f")]}}'\n\n{len(line)}\n{line}\n25\n[[\"e\",4,null,null,{len(line)}]]\n"
        return self.reply(request, 200, body.encode("utf-8"))

    @staticmethod
    def reply(request, status: int, body: bytes) -> requests.Response:
        response = requests.Response()
        response.status_code = status
        response.reason = {200: "OK", 429: "Too Many Requests"}.get(status, "Error")
        response.headers = CaseInsensitiveDict({"Content-Type": "application/json"})
        response._content = body
        response._content_consumed = True
        response.encoding = "utf-8"
        response.url = request.url
        response.request = request
        return response


@pytest.fixture
def google(monkeypatch: pytest.MonkeyPatch, mp3: bytes) -> FakeGoogle:
    fake = FakeGoogle(mp3)
    monkeypatch.setattr(requests.adapters.HTTPAdapter, "send",
                        lambda adapter, request, **kw: fake.send(adapter, request, **kw))
    return fake


class Sleeps(list):
    """Records the waits the engine asks for, and only pretends to wait (a fake clock)."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 1000.0

    def __call__(self, seconds: float) -> None:
        self.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def gtts(google: FakeGoogle, sleeps: Sleeps) -> r.GttsEngine:
    return r.GttsEngine(attempts=3, backoff=0.5, min_interval=0, sleep=sleeps,
                        clock=sleeps.clock)


@pytest.fixture
def conversions(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every audio conversion (ffmpeg decode + export) the renderer makes."""
    seen: list[str] = []
    real = r.convert

    def counting(audio: r.Audio):
        seen.append(audio.format)
        return real(audio)

    monkeypatch.setattr(r, "convert", counting)
    return seen


# --- Helpers ---------------------------------------------------------------------------------


def manifest(audio: Path) -> dict:
    return json.loads((audio / "manifest.json").read_text(encoding="utf-8"))


def entries(audio: Path) -> dict[tuple[str, str], dict]:
    return {(p["key"], p["lang"]): p for p in manifest(audio)["prompts"]}


def wav_header(path: Path) -> dict:
    """The fmt chunk and data size, read byte by byte (Python's wave cannot read mu-law)."""
    data = path.read_bytes()
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE"
    assert struct.unpack("<I", data[4:8])[0] == len(data) - 8, "RIFF size != file size"
    chunks, pos = {}, 12
    while pos + 8 <= len(data):
        name, size = struct.unpack("<4sI", data[pos:pos + 8])
        chunks[name] = data[pos + 8:pos + 8 + size]
        pos += 8 + size + (size & 1)
    tag, channels, rate, byte_rate, align, bits = struct.unpack("<HHIIHH", chunks[b"fmt "][:16])
    return {"tag": tag, "channels": channels, "rate": rate, "bits": bits,
            "data": len(chunks[b"data"])}


def leftovers(audio: Path) -> list[str]:
    return [p.name for p in audio.rglob("*") if p.name.endswith(".tmp")]


def assert_consistent(audio: Path) -> None:
    """The manifest parses, and every file it names exists and is a complete WAV."""
    for entry in manifest(audio)["prompts"]:
        path = audio / entry["file"]
        assert path.is_file(), entry
        header = wav_header(path)
        assert header["data"] == entry["duration_ms"] * 8 or abs(
            header["data"] / 8 - entry["duration_ms"]) <= 1
    assert leftovers(audio) == []


# --- gTTS through its HTTP boundary ----------------------------------------------------------


def test_gtts_prompt_becomes_8khz_mono_mulaw_wav(tmp_path: Path, google: FakeGoogle,
                                                  gtts: r.GttsEngine) -> None:
    audio = tmp_path / "audio"
    summary = r.render(UTTERANCES, audio, gtts)
    assert summary.ok and len(summary.rendered) == 5
    for entry in entries(audio).values():
        header = wav_header(audio / entry["file"])
        assert (header["tag"], header["channels"], header["rate"], header["bits"]) == (
            7, 1, 8000, 8)
        # 0.3 s of tone, silence trimmed, then 150 ms of pause at each end.
        assert 500 <= entry["duration_ms"] <= 700
        assert entry["engine"] == "gtts"
        assert re.fullmatch(rf"{entry['lang']}/[0-9a-f]{{24}}\.wav", entry["file"])
    # Khmer numbers reach Google as words; English as written. Every request had a timeout.
    sent = {c["text"]: c["lang"] for c in google.calls}
    assert sent["តម្លៃសេវា ប្រាំពាន់ រៀល។"] == "km"
    assert sent["For information about services, press 1."] == "en"
    assert all(c["timeout"] is not None for c in google.calls)


def test_long_khmer_prompt_is_sent_in_whole_cluster_pieces(tmp_path: Path, google: FakeGoogle,
                                                           gtts: r.GttsEngine) -> None:
    audio = tmp_path / "audio"
    r.render([Utterance("welcome", "km", LONG_KM)], audio, gtts)
    pieces = google.texts()
    assert len(pieces) >= 2 and all(len(p) <= 100 for p in pieces)
    assert all(unicodedata.category(p[0]) not in ("Mn", "Mc") for p in pieces)
    assert re.sub(r"\s", "", "".join(pieces)) == re.sub(r"\s", "", LONG_KM)
    # The pieces' audio is joined: longer than a one-piece prompt's 0.6 s.
    assert entries(audio)[("welcome", "km")]["duration_ms"] >= 300 * len(pieces) + 200


def test_429_is_retried_after_a_backoff(tmp_path: Path, google: FakeGoogle, gtts: r.GttsEngine,
                                        sleeps: Sleeps) -> None:
    google.fail_once["Welcome."] = [429, 503]
    summary = r.render(UTTERANCES, tmp_path / "audio", gtts)
    assert summary.ok and len(summary.rendered) == 5
    assert Counter(google.texts())["Welcome."] == 3
    assert sleeps == pytest.approx([0.5, 1.0])  # exponential backoff


def test_timeouts_give_up_after_n_tries_and_the_rest_still_render(
        tmp_path: Path, google: FakeGoogle, gtts: r.GttsEngine, sleeps: Sleeps) -> None:
    google.fail_always["Welcome."] = "timeout"
    audio = tmp_path / "audio"
    summary = r.render(UTTERANCES, audio, gtts)
    assert Counter(google.texts())["Welcome."] == 3  # attempts=3
    assert [(f.key, f.lang) for f in summary.failed] == [("greeting", "en")]
    assert "Timeout" in summary.failed[0].reason and "3 tries" in summary.failed[0].reason
    assert len(summary.rendered) == 4
    assert set(entries(audio)) == {(u.key, u.lang) for u in UTTERANCES} - {("greeting", "en")}
    assert_consistent(audio)


def test_command_exits_non_zero_when_a_prompt_failed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture,
        google: FakeGoogle, gtts: r.GttsEngine) -> None:
    monkeypatch.setattr(r, "load_utterances", lambda catalog, prompts: list(UTTERANCES))
    monkeypatch.setitem(r.ENGINES, "gtts", lambda: gtts)
    google.fail_always["Welcome."] = "timeout"
    argv = ["--audio-dir", str(tmp_path / "audio"), "--prompts", str(tmp_path / "prompts")]
    assert r.main(argv) == 1
    out = capsys.readouterr().out
    assert "FAILED greeting [en]" in out
    assert out.strip().splitlines()[-1].startswith("rendered 4, unchanged 0, failed 1")

    google.fail_always.clear()
    assert r.main(argv) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith(
        "rendered 1, unchanged 4, failed 0")


def test_google_unreachable_stops_waiting_after_a_few_prompts(
        tmp_path: Path, google: FakeGoogle, sleeps: Sleeps) -> None:
    engine = r.GttsEngine(attempts=2, backoff=0.5, min_interval=0, give_up_after=2,
                          sleep=sleeps, clock=sleeps.clock)
    for u in UTTERANCES:
        google.fail_always[r.prepare(u.text, u.lang)] = "timeout"
    summary = r.render(UTTERANCES, tmp_path / "audio", engine)
    assert len(summary.failed) == 5
    assert len(google.calls) == 4  # two prompts tried twice each, the rest skipped
    assert sum("skipped" in f.reason for f in summary.failed) == 3


def test_requests_are_spaced_even_with_several_jobs(tmp_path: Path, google: FakeGoogle,
                                                    sleeps: Sleeps) -> None:
    engine = r.GttsEngine(min_interval=0.4, sleep=sleeps, clock=sleeps.clock)
    summary = r.render(UTTERANCES, tmp_path / "audio", engine, jobs=4)
    assert summary.ok and len(google.calls) == 5
    assert sleeps == pytest.approx([0.4] * 4)  # no two requests closer than min_interval


# --- Incremental runs and the manifest -------------------------------------------------------


def test_manifest_lists_every_prompt_with_its_file(tmp_path: Path, gtts: r.GttsEngine) -> None:
    audio = tmp_path / "audio"
    r.render(UTTERANCES, audio, gtts)
    data = manifest(audio)
    assert data["version"] == 1
    prompts = data["prompts"]
    assert [(p["lang"], p["key"]) for p in prompts] == sorted((u.lang, u.key) for u in UTTERANCES)
    texts = {(u.key, u.lang): u.text for u in UTTERANCES}
    for p in prompts:
        assert set(p) == {"key", "lang", "text", "file", "duration_ms", "engine", "fingerprint"}
        assert p["text"] == texts[(p["key"], p["lang"])]  # as the call flow will look it up
        assert p["duration_ms"] > 0
        assert p["file"].startswith(p["lang"] + "/")
    assert_consistent(audio)
    files = {p.relative_to(audio).as_posix() for p in audio.glob("*/*.wav")}
    assert files == {p["file"] for p in prompts}


def test_no_change_run_converts_nothing(tmp_path: Path, google: FakeGoogle,
                                        gtts: r.GttsEngine, conversions: list[str]) -> None:
    audio = tmp_path / "audio"
    r.render(UTTERANCES, audio, gtts)
    assert len(conversions) == 5
    before = {p: p.stat().st_mtime_ns for p in audio.rglob("*")}
    calls = len(google.calls)

    summary = r.render(UTTERANCES, audio, gtts)
    assert (summary.unchanged, summary.rendered, summary.conversions) == (5, [], 0)
    assert len(conversions) == 5 and len(google.calls) == calls
    assert {p: p.stat().st_mtime_ns for p in audio.rglob("*")} == before


def test_a_changed_text_re_renders_only_that_prompt(tmp_path: Path, google: FakeGoogle,
                                                    gtts: r.GttsEngine,
                                                    conversions: list[str]) -> None:
    audio = tmp_path / "audio"
    r.render(UTTERANCES, audio, gtts)
    old = entries(audio)
    changed = [Utterance(u.key, u.lang, "តម្លៃសេវា 6,000 រៀល។") if u.key == "fee" else u
               for u in UTTERANCES]
    google.calls.clear()

    summary = r.render(changed, audio, gtts)
    assert summary.rendered == [("fee", "km")] and summary.unchanged == 4
    assert len(conversions) == 6
    assert google.texts() == ["តម្លៃសេវា ប្រាំមួយពាន់ រៀល។"]
    new = entries(audio)
    assert new[("fee", "km")]["file"] != old[("fee", "km")]["file"]  # a new URL for callers
    assert new[("fee", "km")]["text"] == "តម្លៃសេវា 6,000 រៀល។"
    assert {k: v for k, v in new.items() if k != ("fee", "km")} == {
        k: v for k, v in old.items() if k != ("fee", "km")}


def test_a_failed_re_render_keeps_the_old_audio(tmp_path: Path, google: FakeGoogle,
                                                gtts: r.GttsEngine) -> None:
    audio = tmp_path / "audio"
    r.render(UTTERANCES, audio, gtts)
    old = entries(audio)[("greeting", "en")]
    google.fail_always["Welcome, caller."] = 503
    changed = [Utterance(u.key, u.lang, "Welcome, caller.") if u.text == "Welcome." else u
               for u in UTTERANCES]
    summary = r.render(changed, audio, gtts)
    assert [f.key for f in summary.failed] == ["greeting"]
    assert entries(audio)[("greeting", "en")] == old  # stale, but the line still has audio
    assert (audio / old["file"]).is_file()


def test_force_re_renders_everything(tmp_path: Path, gtts: r.GttsEngine,
                                     conversions: list[str]) -> None:
    audio = tmp_path / "audio"
    r.render(UTTERANCES, audio, gtts)
    summary = r.render(UTTERANCES, audio, gtts, force=True)
    assert len(summary.rendered) == 5 and len(conversions) == 10


def test_prune_removes_only_orphans(tmp_path: Path) -> None:
    audio = tmp_path / "audio"
    engine = r.PlaceholderEngine()
    r.render(UTTERANCES, audio, engine)
    old_fee = entries(audio)[("fee", "km")]["file"]
    (audio / "km" / "stray.wav").write_bytes(b"RIFF")
    (audio / "README.txt").write_text("not ours")
    (audio / "logos").mkdir()
    (audio / "logos" / "a.png").write_bytes(b"png")
    changed = [Utterance(u.key, u.lang, u.text + " ") if u.key == "fee" else u
               for u in UTTERANCES[:-1]]  # one text changed, one prompt gone
    changed[2] = Utterance("fee", "km", "តម្លៃសេវា 6,000 រៀល។")

    summary = r.render(changed, audio, engine, prune=True)
    gone = entries(audio)
    assert ("menu.main", "en") not in gone
    assert sorted(summary.removed) == sorted(
        [old_fee, "km/stray.wav", r.audio_file("en", r.fingerprint(UTTERANCES[-1], engine))])
    assert not (audio / old_fee).exists() and not (audio / "km/stray.wav").exists()
    assert (audio / "README.txt").exists() and (audio / "logos/a.png").exists()
    assert_consistent(audio)
    files = {p.relative_to(audio).as_posix() for p in audio.glob("*/*.wav")}
    assert files == {e["file"] for e in gone.values()}


def test_dry_run_writes_nothing(tmp_path: Path, google: FakeGoogle, gtts: r.GttsEngine,
                                conversions: list[str]) -> None:
    audio = tmp_path / "audio"
    summary = r.render(UTTERANCES, audio, gtts, dry_run=True)
    assert len(summary.rendered) == 5 and summary.dry_run
    assert not audio.exists() and google.calls == [] and conversions == []

    r.render(UTTERANCES, audio, gtts)
    (audio / "km" / "stray.wav").write_bytes(b"x")
    snapshot = {p: p.read_bytes() for p in audio.rglob("*") if p.is_file()}
    changed = [Utterance("fee", "km", "តម្លៃសេវា 7,000 រៀល។") if u.key == "fee" else u
               for u in UTTERANCES]
    summary = r.render(changed, audio, gtts, dry_run=True, prune=True)
    assert summary.rendered == [("fee", "km")] and summary.removed == ["km/stray.wav"]
    assert {p: p.read_bytes() for p in audio.rglob("*") if p.is_file()} == snapshot
    assert len(conversions) == 5


def test_dry_run_from_the_command_line_lists_changes(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setattr(r, "load_utterances", lambda catalog, prompts: list(UTTERANCES))
    audio = tmp_path / "audio"
    code = r.main(["--audio-dir", str(audio), "--engine", "placeholder", "--dry-run",
                   "--lang", "km", "--prompts", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0 and not audio.exists()
    assert "would render fee [km]" in out and "[en]" not in out
    assert out.strip().splitlines()[-1].startswith("would render 3, unchanged 0")


# --- Interruptions ---------------------------------------------------------------------------


class InterruptOnNth:
    """The placeholder engine, with Ctrl-C pressed while it renders the Nth prompt."""

    def __init__(self, n: int):
        self.inner = r.PlaceholderEngine()
        self.name, self.settings, self.languages = "placeholder", self.inner.settings, None
        self.n, self.count = n, 0
        self.lock = threading.Lock()

    def synthesize(self, text: str, lang: str) -> r.Audio:
        with self.lock:
            self.count += 1
            if self.count == self.n:
                raise KeyboardInterrupt
        return self.inner.synthesize(text, lang)


MANY = [Utterance(f"item.{i:02d}", lang, f"{'ខ' if lang == 'km' else 'x'} {i} " * (i % 5 + 1))
        for i in range(14) for lang in ("km", "en")]


@pytest.mark.parametrize("jobs", [1, 3])
def test_an_interrupted_run_leaves_whole_files_and_the_next_run_completes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, jobs: int) -> None:
    monkeypatch.setattr(r, "CHECKPOINT_EVERY", 5)
    audio = tmp_path / "audio"
    with pytest.raises(KeyboardInterrupt):
        r.render(MANY, audio, InterruptOnNth(20), jobs=jobs)
    assert_consistent(audio)
    saved = entries(audio)
    assert 15 <= len(saved) < len(MANY)  # progress survived

    summary = r.render(MANY, audio, r.PlaceholderEngine(), jobs=jobs)
    assert summary.ok
    assert summary.unchanged == len(saved)
    assert len(summary.rendered) + len(summary.reused) == len(MANY) - len(saved)
    assert set(entries(audio)) == {(u.key, u.lang) for u in MANY}
    assert_consistent(audio)


def test_an_interrupt_while_writing_a_file_leaves_no_temp_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    audio = tmp_path / "audio"
    real_fsync, calls = os.fsync, []

    def fsync(fd: int) -> None:
        calls.append(fd)
        if len(calls) == 3:  # the third audio file: written to its temp file, not yet renamed
            raise KeyboardInterrupt
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(KeyboardInterrupt):
        r.render(UTTERANCES, audio, r.PlaceholderEngine())
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert leftovers(audio) == []
    assert len(list(audio.glob("*/*.wav"))) == 2
    assert_consistent(audio)
    assert len(entries(audio)) == 2
    assert r.render(UTTERANCES, audio, r.PlaceholderEngine()).ok
    assert len(entries(audio)) == 5


def test_a_corrupt_manifest_is_rebuilt_without_rendering_again(
        tmp_path: Path, conversions: list[str]) -> None:
    audio = tmp_path / "audio"
    r.render(UTTERANCES, audio, r.PlaceholderEngine())
    (audio / "manifest.json").write_text('{"version": 1, "prom')
    summary = r.render(UTTERANCES, audio, r.PlaceholderEngine())
    assert len(summary.reused) == 5 and len(conversions) == 5  # files found by content address
    assert len(entries(audio)) == 5
    assert_consistent(audio)


# --- Recordings and the offline engines ------------------------------------------------------


def test_recordings_win_over_tts(tmp_path: Path, google: FakeGoogle, gtts: r.GttsEngine,
                                 mp3: bytes) -> None:
    recordings = tmp_path / "recordings"
    (recordings / "km").mkdir(parents=True)
    (recordings / "en").mkdir()
    subprocess.run([r.FFMPEG, "-hide_banner", "-loglevel", "error", "-f", "lavfi",
                    "-i", "sine=frequency=300:duration=1.2", "-ar", "44100", "-ac", "2",
                    str(recordings / "km" / "greeting.wav")], check=True)
    (recordings / "en" / "greeting.mp3").write_bytes(mp3)
    audio = tmp_path / "audio"

    summary = r.render(UTTERANCES, audio, gtts, recordings_dir=recordings)
    assert summary.ok
    assert "សូមស្វាគមន៍។" not in google.texts() and "Welcome." not in google.texts()
    got = entries(audio)
    assert got[("greeting", "km")]["engine"] == "recording"
    assert got[("greeting", "en")]["engine"] == "recording"
    assert got[("menu.main", "km")]["engine"] == "gtts"
    assert 1400 <= got[("greeting", "km")]["duration_ms"] <= 1600  # 1.2 s + pauses
    header = wav_header(audio / got[("greeting", "km")]["file"])
    assert (header["tag"], header["channels"], header["rate"]) == (7, 1, 8000)

    # A new recording of the same prompt is a new file, without any TTS.
    subprocess.run([r.FFMPEG, "-y", "-hide_banner", "-loglevel", "error", "-f", "lavfi",
                    "-i", "sine=frequency=300:duration=2", str(recordings / "km" / "greeting.wav")],
                   check=True)
    summary = r.render(UTTERANCES, audio, gtts, recordings_dir=recordings)
    assert summary.rendered == [("greeting", "km")]
    assert entries(audio)[("greeting", "km")]["file"] != got[("greeting", "km")]["file"]


def test_placeholder_audio_grows_with_the_text(tmp_path: Path) -> None:
    audio = tmp_path / "audio"
    texts = {"short": "ចុចលេខមួយ។", "medium": LONG_KM[:80], "long": LONG_KM}
    r.render([Utterance(k, "km", t) for k, t in texts.items()], audio, r.PlaceholderEngine())
    got = {key: e["duration_ms"] for (key, _), e in entries(audio).items()}
    assert got["short"] < got["medium"] < got["long"]
    assert got["long"] >= 60 * len(LONG_KM)
    assert all(e["engine"] == "placeholder" for e in entries(audio).values())


@pytest.mark.skipif(not r.shutil.which("espeak-ng"), reason="espeak-ng is not installed")
def test_espeak_speaks_english_and_reports_khmer_unsupported(tmp_path: Path) -> None:
    engine = r.EspeakEngine()
    assert "en" in engine.languages and "km" not in engine.languages
    audio = tmp_path / "audio"
    summary = r.render(UTTERANCES, audio, engine)
    assert {(f.lang, f.reason) for f in summary.failed} == {("km", "espeak has no voice for km")}
    assert len(summary.rendered) == 2
    assert all(e["engine"] == "espeak" and e["duration_ms"] > 300
               for e in entries(audio).values())


def test_the_script_runs_from_a_fresh_clone(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "render_prompts.py"), "--dry-run",
         "--engine", "placeholder", "--catalog", str(ROOT / "catalog.yaml"),
         "--prompts", str(ROOT / "prompts"), "--audio-dir", str(tmp_path / "audio")],
        cwd=tmp_path, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": ""},
        timeout=60)
    assert run.returncode == 0, run.stderr
    assert re.match(r"would render \d{2,}, unchanged 0", run.stdout.strip().splitlines()[-1])
    assert not (tmp_path / "audio").exists()


def test_a_question_mark_is_counted_as_gtts_counts_it(
        tmp_path: Path, google: FakeGoogle, gtts: r.GttsEngine,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """gTTS adds a space after '?' before it counts its 100 characters: a 93-character
    question and a 6-character answer are 100 characters here but 101 to gTTS, so the engine
    gives gTTS two pieces, each within its limit (gTTS never re-cuts what we cut)."""
    import gtts as gtts_module

    given: list[str] = []
    real = gtts_module.gTTS

    def spy(text, *args, **kwargs):
        given.append(text)
        return real(text, *args, **kwargs)

    monkeypatch.setattr(gtts_module, "gTTS", spy)
    question = "តើ" + "ក" * 90 + "?"
    text = question + " ខ្ញុំ។"
    assert len(text) == 100
    r.render([Utterance("q", "km", text)], tmp_path / "audio", gtts)
    assert given == [question, "ខ្ញុំ។"]
    assert google.texts() == given
