"""`--engine azure`: Azure Speech's REST API, replaced only at its HTTP boundary (the
`responses` library) with a reply made as Azure documents it: 200, Content-Type audio/x-wav,
a RIFF WAV of 8 kHz, 8-bit, mono mu-law (X-Microsoft-OutputFormat riff-8khz-8bit-mono-mulaw).
"""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path
from xml.etree import ElementTree

import pytest
import responses

from ivr import render as r
from ivr.render import AzureEngine, load_utterances, wav_info
from tests.support import ROOT

URL = "https://southeastasia.tts.speech.microsoft.com/cognitiveservices/v1"
ENV = {"AZURE_SPEECH_KEY": "0123456789abcdef0123456789abcdef",
       "AZURE_SPEECH_REGION": "southeastasia"}


def mulaw_reply(seconds: float = 0.5, hz: int = 440) -> bytes:
    """What Azure sends for riff-8khz-8bit-mono-mulaw: RIFF, a 16-byte fmt chunk (format 7,
    1 channel, 8000 Hz, 8000 bytes/s, block 1, 8 bits), then the data chunk."""
    import audioop

    n = int(8000 * seconds)
    pcm = b"".join(struct.pack("<h", int(9000 * math.sin(2 * math.pi * hz * i / 8000)))
                   for i in range(n))
    data = audioop.lin2ulaw(pcm, 2)
    fmt = struct.pack("<HHIIHH", 7, 1, 8000, 8000, 1, 8)
    body = b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt + b"data" + struct.pack(
        "<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


REPLY = mulaw_reply()
HEADERS = {"X-RequestId": "5d3a4c7e1f2b4a8e9c0d1e2f3a4b5c6d", "Connection": "keep-alive"}


class FakeClock:
    """Time that passes only when the engine sleeps: the rate limit costs nothing here."""

    def __init__(self) -> None:
        self.t = 1000.0
        self.slept: list[float] = []

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.t += seconds


@pytest.fixture
def clock(monkeypatch) -> FakeClock:
    fake = FakeClock()
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setitem(r.ENGINES, "azure",
                        lambda: AzureEngine(sleep=fake.sleep, clock=fake.now, session=session()))
    return fake


def session():
    """A requests session that does not read proxy settings from the environment for every
    request (2,000 requests: most of the test's time otherwise); `responses` still answers
    at its HTTP adapter."""
    import requests

    s = requests.Session()
    s.trust_env = False
    return s


@responses.activate
def test_a_429_then_success_renders_the_bundled_catalogue(tmp_path: Path, clock: FakeClock,
                                                          capsys, monkeypatch):
    times: list[float] = []

    def reply(request):
        times.append(clock.now())
        if len(times) == 1:  # Azure's free tier is busy: come back in 7 seconds
            return (429, {"Retry-After": "7", **HEADERS}, b"")
        return (200, {**HEADERS, "Content-Type": "audio/x-wav"}, REPLY)

    responses.add_callback(responses.POST, URL, callback=reply)
    monkeypatch.setattr(r.os, "fsync", lambda fd: None)  # 2,000 files: spare the disk
    monkeypatch.setattr(r, "CHECKPOINT_EVERY", 500)
    audio = tmp_path / "audio"
    status = r.main(["--engine", "azure", "--catalog", str(ROOT / "catalog.yaml"),
                     "--prompts", str(ROOT / "prompts"), "--audio-dir", str(audio)])
    out = capsys.readouterr()
    assert status == 0, out.out + out.err

    utterances = load_utterances(ROOT / "catalog.yaml", ROOT / "prompts")
    manifest = json.loads((audio / "manifest.json").read_text(encoding="utf-8"))["prompts"]
    assert len(manifest) == len(utterances)
    assert {p["engine"] for p in manifest} == {"azure"}
    info = wav_info(audio / manifest[0]["file"])
    assert (info.format_tag, info.channels, info.rate, info.bits) == (7, 1, 8000, 8)

    # one retry, after at least Retry-After; never more than 20 requests in any minute
    assert len(times) == len({p["fingerprint"] for p in manifest}) + 1
    assert times[1] - times[0] >= 7
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert min(gaps) >= 3.0 - 1e-9
    assert all(times[i + 20] - times[i] >= 60 - 1e-9 for i in range(len(times) - 20))

    # what was sent: the documented headers and SSML with the Khmer voice
    first = responses.calls[1].request
    assert first.headers["Ocp-Apim-Subscription-Key"] == ENV["AZURE_SPEECH_KEY"]
    assert first.headers["Content-Type"] == "application/ssml+xml"
    assert first.headers["X-Microsoft-OutputFormat"] == "riff-8khz-8bit-mono-mulaw"
    voices = {}
    for call in responses.calls:
        speak = ElementTree.fromstring(call.request.body)
        voice = speak.find("voice")
        assert voice is not None and voice.text
        voices[voice.get("name")] = speak.get("{http://www.w3.org/XML/1998/namespace}lang")
    assert voices == {"km-KH-SreymomNeural": "km-KH", "en-US-JennyNeural": "en-US"}


@responses.activate
def test_the_voice_per_language_comes_from_the_environment(monkeypatch, clock):
    monkeypatch.setenv("AZURE_SPEECH_VOICE_KM", "km-KH-PisethNeural")
    responses.add(responses.POST, URL, body=REPLY, status=200,
                  headers={"Content-Type": "audio/x-wav"})
    engine = r.make_engine("azure")
    audio = engine.synthesize("សូមស្វាគមន៍។", "km")
    assert audio.format == "wav" and audio.data == REPLY
    assert b"km-KH-PisethNeural" in responses.calls[0].request.body


@responses.activate
def test_server_errors_are_retried_with_backoff_and_a_bad_key_is_not(clock):
    responses.add(responses.POST, URL, status=503)
    responses.add(responses.POST, URL, status=500)
    responses.add(responses.POST, URL, body=REPLY, status=200)
    engine = r.make_engine("azure")
    assert engine.synthesize("Welcome.", "en").data == REPLY
    assert len(responses.calls) == 3 and max(clock.slept) >= 4  # 2 s, then 4 s

    responses.replace(responses.POST, URL, status=401)
    with pytest.raises(r.RenderError, match="401.*AZURE_SPEECH_KEY"):
        engine.synthesize("Welcome.", "en")
    assert len(responses.calls) == 4  # no retry: a wrong key stays wrong


def test_without_a_key_one_clear_line_and_exit_1(monkeypatch, tmp_path, capsys):
    monkeypatch.delenv("AZURE_SPEECH_KEY", raising=False)
    monkeypatch.setenv("AZURE_SPEECH_REGION", "southeastasia")
    status = r.main(["--engine", "azure", "--catalog", str(ROOT / "catalog.yaml"),
                     "--prompts", str(ROOT / "prompts"), "--audio-dir", str(tmp_path / "a")])
    out = capsys.readouterr()
    assert status == 1
    assert out.out == ""
    assert len(out.err.strip().splitlines()) == 1 and "AZURE_SPEECH_KEY" in out.err
    assert not (tmp_path / "a").exists()
