"""Rendering every prompt to the audio Twilio plays: 8 kHz mono mu-law WAV, content-addressed.

Twilio's `<Say>` has no Khmer voice, so each utterance is rendered ahead of time by a TTS
engine (Azure Speech's neural Khmer voices for production, gTTS as a stop-gap; espeak-ng and
a placeholder tone offline), or taken from a human recording in
prompts/recordings/<lang>/<key>.wav|.mp3, which always wins. A recording's audio keeps the
text it was recorded for: when the text changes it is stale (never played), and the line says
the sentence from its parts (`Utterance.parts`) instead; `audio_sources` says which is heard.

A file's name is a hash of everything that shapes its sound (text, engine, engine settings,
conversion settings), so a changed prompt gets a new URL and no cache plays a stale one. The
hash is kept in audio/manifest.json as `fingerprint`; a later run renders only prompts whose
fingerprint changed or whose file is gone. Files and the manifest are written to a temporary
file and renamed into place, so an interrupted run never leaves a truncated file or a
manifest entry without its file, and the next run carries on from where it stopped.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import io
import json
import math
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from array import array
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

import imageio_ffmpeg

from ivr.khmer_text import gtts_length, prepare, split_for_tts
from ivr.utterance import Utterance

with warnings.catch_warnings():  # pydub warns at import: no ffmpeg on PATH (we give it one),
    warnings.simplefilter("ignore", RuntimeWarning)  # and audioop deprecated (audioop-lts
    warnings.simplefilter("ignore", DeprecationWarning)  # replaces it on Python 3.13)
    from pydub import AudioSegment
    from pydub.silence import detect_leading_silence

FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()
AudioSegment.converter = FFMPEG

MANIFEST = "manifest.json"
MANIFEST_VERSION = 1
RECORDING_ENGINE = "recording"
RECORDING_SUFFIXES = (".wav", ".mp3")
CHECKPOINT_EVERY = 10  # write the manifest after this many renders, so a crash loses little
STALE_TEMP_SECONDS = 600  # temp files older than this are leftovers of a killed run

# Everything the conversion does; part of every fingerprint, so changing it re-renders all.
# (The mu-law encoder is not in it: audioop's and ffmpeg's G.711 tables differ by one code on
# under 1 % of samples, inaudibly, so audio rendered before it moved in-process stays current.)
CONVERSION: dict[str, Any] = {
    "rate": 8000,
    "channels": 1,
    "codec": "pcm_mulaw",
    "target_dbfs": -18.0,
    "max_peak_dbfs": -1.0,
    "silence_dbfs": -45.0,
    "pad_ms": 150,
}


class RenderError(Exception):
    """A prompt could not be rendered; the message says why, for the summary."""


@dataclass(frozen=True)
class Audio:
    """Encoded audio as an engine or a recording gives it; `format` is an ffmpeg demuxer name
    ("mp3", "wav"), always passed explicitly because there is no ffprobe to guess it."""

    data: bytes
    format: str


class Engine(Protocol):
    """A speech engine. `settings` go into every fingerprint: change a setting, re-render."""

    name: str
    settings: dict[str, Any]

    @property
    def languages(self) -> frozenset[str] | None:
        """None: any language."""
        ...

    def synthesize(self, text: str, lang: str) -> Audio: ...


def supports(engine: Engine, lang: str) -> bool:
    return engine.languages is None or lang in engine.languages


# --- Engines ---------------------------------------------------------------------------------


class _Spaced:
    """Request spacing and backoff shared by all threads: both web engines pace Google's
    and Azure's rate limits the same way."""

    min_interval: float
    _lock: threading.Lock
    _next_request: float
    _sleep: Callable[[float], None]
    _clock: Callable[[], float]

    def _wait_turn(self) -> None:
        """Space requests `min_interval` apart, whichever thread sends them."""
        with self._lock:
            delay = self._next_request - self._clock()
            if delay > 0:
                self._sleep(delay)
            self._next_request = self._clock() + self.min_interval

    def _back_off(self, delay: float) -> None:
        with self._lock:
            self._next_request = max(self._next_request, self._clock() + delay)


class GttsEngine(_Spaced):
    """Google Translate's voice through gTTS: the only free voice that speaks Khmer.

    Google rate-limits (HTTP 429) and gTTS waits forever by default, so every request has a
    timeout, requests are spaced `min_interval` seconds apart across all threads, and a
    429, a 5xx, a timeout or a connection error is retried with exponential backoff (all
    threads back off together) up to `attempts` tries.
    """

    name = "gtts"
    languages: frozenset[str] | None = frozenset({"km", "en"})
    SPLIT_LIMIT = 100  # gTTS's (and Google's) characters per request

    def __init__(self, *, tld: str = "com", slow: bool = False,
                 timeout: float | tuple[float, float] = (5.0, 30.0), attempts: int = 5,
                 backoff: float = 2.0, max_backoff: float = 60.0, min_interval: float = 1.0,
                 give_up_after: int = 3, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic):
        self.tld = tld
        self.slow = slow
        self.timeout = timeout
        self.attempts = attempts
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.min_interval = min_interval
        self.settings = {"tld": tld, "slow": slow,
                         "split": f"khmer_text/{self.SPLIT_LIMIT}/words/gtts-length"}
        self._sleep = sleep
        self._clock = clock
        self.give_up_after = give_up_after
        self._lock = threading.Lock()
        self._next_request = 0.0
        self._outages = 0  # prompts in a row that failed although retried
        self._last_outage = ""

    def synthesize(self, text: str, lang: str) -> Audio:
        pieces = [p for p in split_for_tts(text, self.SPLIT_LIMIT, gtts_length)
                  if _speakable(p)]
        if not pieces:
            raise RenderError("nothing to speak")
        if self._outages >= self.give_up_after:  # Google is unreachable: do not wait per prompt
            raise RenderError(f"skipped: gTTS failed {self._outages} prompts in a row "
                              f"(last: {self._last_outage})")
        try:
            # MP3 frames concatenate into one valid stream (gTTS itself joins its pieces so).
            audio = Audio(b"".join(self._piece(piece, lang) for piece in pieces), "mp3")
        except _Outage as exc:
            with self._lock:
                self._outages += 1
                self._last_outage = str(exc)
            raise
        self._outages = 0
        return audio

    def _piece(self, text: str, lang: str) -> bytes:
        from gtts import gTTS, gTTSError

        for attempt in range(1, self.attempts + 1):
            self._wait_turn()
            try:
                buffer = io.BytesIO()
                gTTS(text, lang=lang, tld=self.tld, slow=self.slow,
                     timeout=self.timeout).write_to_fp(buffer)
            except gTTSError as exc:
                reason = f"gTTS: {_describe(exc)}"
                if not _retryable(exc):
                    raise RenderError(reason) from exc
                if attempt == self.attempts:
                    raise _Outage(f"{reason} (gave up after {attempt} tries)") from exc
                self._back_off(self._delay(attempt, exc))
                continue
            if not buffer.getvalue():
                raise RenderError("gTTS: the reply held no audio")
            return buffer.getvalue()
        raise AssertionError("unreachable")

    def _delay(self, attempt: int, exc: Exception) -> float:
        delay = min(self.max_backoff, self.backoff * 2 ** (attempt - 1))
        response = getattr(exc, "rsp", None)
        retry_after = response.headers.get("Retry-After", "") if response is not None else ""
        if retry_after.strip().isdigit():
            delay = max(delay, min(float(retry_after), self.max_backoff))
        return delay


class _Outage(RenderError):
    """Still failing after every retry: Google unreachable or refusing us."""


def _describe(exc: Exception) -> str:
    """gTTS's message, plus the network error it hides (a timeout, a DNS failure)."""
    cause = exc.__cause__ or exc.__context__
    return f"{exc} [{type(cause).__name__}]" if cause is not None else str(exc)


def _retryable(exc: Exception) -> bool:
    """Worth another try: no response (timeout, connection error), 429 or a server error."""
    response = getattr(exc, "rsp", None)
    if response is None:
        return True
    return response.status_code == 429 or response.status_code >= 500


def _speakable(text: str) -> bool:
    return any(char.isalnum() for char in text)


class AzureEngine(_Spaced):
    """Microsoft Azure Speech, neural voices (km-KH-SreymomNeural, km-KH-PisethNeural), over
    its REST API: SSML in, an 8 kHz mono mu-law WAV out (`riff-8khz-8bit-mono-mulaw`, the
    telephone format Twilio plays without resampling).

    Key and region come from AZURE_SPEECH_KEY and AZURE_SPEECH_REGION; the voice per
    language from AZURE_SPEECH_VOICE_<LANG> (e.g. AZURE_SPEECH_VOICE_KM=km-KH-PisethNeural).
    The free tier allows about 20 requests a minute: requests are spaced `60 / per_minute`
    seconds apart, and a 429 or 5xx is retried with exponential backoff, waiting at least
    what Retry-After says.
    """

    name = "azure"
    VOICES = {"km": "km-KH-SreymomNeural", "en": "en-US-JennyNeural"}
    FORMAT = "riff-8khz-8bit-mono-mulaw"
    LOCALES = {"km": "km-KH", "en": "en-US"}

    def __init__(self, key: str | None = None, region: str | None = None, *,
                 voices: dict[str, str] | None = None, per_minute: float = 20,
                 attempts: int = 5, backoff: float = 2.0, max_backoff: float = 120.0,
                 timeout: float = 30.0, session: Any = None,
                 sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic,
                 environ: dict[str, str] | None = None):
        env = dict(os.environ) if environ is None else environ
        self.key = key if key is not None else env.get("AZURE_SPEECH_KEY", "").strip()
        self.region = region if region is not None else env.get("AZURE_SPEECH_REGION",
                                                                 "").strip()
        if not self.key:
            raise EngineUnavailable("--engine azure needs AZURE_SPEECH_KEY (the Speech "
                                    "resource's key) and AZURE_SPEECH_REGION (e.g. "
                                    "southeastasia) in the environment")
        if not re.fullmatch(r"[a-z0-9]+", self.region or ""):
            raise EngineUnavailable("--engine azure needs AZURE_SPEECH_REGION, the Speech "
                                    "resource's region in lower case (e.g. southeastasia)")
        self.voices = {**self.VOICES, **{
            name[len("AZURE_SPEECH_VOICE_"):].lower(): value.strip()
            for name, value in env.items()
            if name.startswith("AZURE_SPEECH_VOICE_") and value.strip()}, **(voices or {})}
        self.languages: frozenset[str] | None = frozenset(self.voices)
        self.url = f"https://{self.region}.tts.speech.microsoft.com/cognitiveservices/v1"
        self.min_interval = 60.0 / per_minute
        self.attempts = attempts
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.timeout = timeout
        self.settings = {"voices": dict(sorted(self.voices.items())), "format": self.FORMAT}
        self._session = session
        self._sleep = sleep
        self._clock = clock
        self._lock = threading.Lock()
        self._next_request = -math.inf

    def ssml(self, text: str, lang: str) -> str:
        from xml.sax.saxutils import escape, quoteattr

        voice = self.voices[lang]
        locale = "-".join(voice.split("-")[:2]) or self.LOCALES.get(lang, lang)
        return (f"<speak version='1.0' xml:lang={quoteattr(locale)}>"
                f"<voice name={quoteattr(voice)}>{escape(text)}</voice></speak>")

    def synthesize(self, text: str, lang: str) -> Audio:
        import requests

        if lang not in self.voices:
            raise RenderError(f"azure: no voice set for {lang} (AZURE_SPEECH_VOICE_"
                              f"{lang.upper()})")
        if not _speakable(text):
            raise RenderError("nothing to speak")
        session = self._session or requests.Session()
        self._session = session
        headers = {"Ocp-Apim-Subscription-Key": self.key,
                   "Content-Type": "application/ssml+xml",
                   "X-Microsoft-OutputFormat": self.FORMAT,
                   "User-Agent": "owso-ivr"}
        body = self.ssml(text, lang).encode("utf-8")
        for attempt in range(1, self.attempts + 1):
            self._wait_turn()
            try:
                reply = session.post(self.url, data=body, headers=headers,
                                     timeout=self.timeout)
            except requests.RequestException as exc:
                reason = f"azure: {type(exc).__name__}: {exc}"
                if attempt == self.attempts:
                    raise RenderError(f"{reason} (gave up after {attempt} tries)") from exc
                self._back_off(self._delay(attempt, None))
                continue
            if reply.status_code == 200:
                if not reply.content.startswith(b"RIFF"):
                    raise RenderError("azure: the reply is not a WAV file")
                return Audio(reply.content, "wav")
            reason = f"azure: HTTP {reply.status_code} {reply.reason or ''}".rstrip()
            if reply.status_code in (401, 403):
                raise RenderError(f"{reason}: check AZURE_SPEECH_KEY and AZURE_SPEECH_REGION")
            if reply.status_code != 429 and reply.status_code < 500:
                raise RenderError(f"{reason}: {reply.text[:200]}")
            if attempt == self.attempts:
                raise RenderError(f"{reason} (gave up after {attempt} tries)")
            self._back_off(self._delay(attempt, reply.headers.get("Retry-After")))
        raise AssertionError("unreachable")

    def _delay(self, attempt: int, retry_after: str | None) -> float:
        delay = min(self.max_backoff, self.backoff * 2 ** (attempt - 1))
        if retry_after and retry_after.strip().isdigit():
            delay = max(delay, min(float(retry_after), self.max_backoff))
        return delay


class EngineUnavailable(RenderError):
    """The engine cannot run here (no key, no program): one line, exit status 1."""


class EspeakEngine:
    """espeak-ng: offline and robotic; it has English but (in 1.51) no Khmer voice."""

    name = "espeak"
    VOICES = {"en": "en-us"}

    def __init__(self, program: str = "espeak-ng", speed: int = 150):
        path = shutil.which(program)
        if path is None:
            raise RenderError(f"{program} is not installed (apt-get install espeak-ng)")
        self.program = path
        listing = subprocess.run([path, "--voices"], capture_output=True, text=True,
                                 check=True).stdout
        available = {line.split()[1] for line in listing.splitlines()[1:] if line.split()}
        self.languages = frozenset(
            lang for lang, voice in self.VOICES.items() if voice in available
        ) | frozenset(lang for lang in available if re.fullmatch(r"[a-z]{2,3}", lang))
        version = subprocess.run([path, "--version"], capture_output=True, text=True).stdout
        self.speed = speed
        self.settings = {"speed": speed, "version": version.split("Data at")[0].strip()}

    def synthesize(self, text: str, lang: str) -> Audio:
        if lang not in self.languages:
            raise RenderError(f"espeak-ng has no voice for {lang}")
        voice = self.VOICES.get(lang, lang)
        run = subprocess.run([self.program, "-v", voice, "-s", str(self.speed), "--stdout"],
                             input=text.encode("utf-8"), capture_output=True, timeout=60)
        if run.returncode != 0 or not run.stdout:
            raise RenderError(f"espeak-ng failed: {run.stderr.decode(errors='replace')[:200]}")
        return Audio(run.stdout, "wav")


class PlaceholderEngine:
    """Beeps, not speech: for tests and for trying the line before any voice is available.

    The length follows the text (about `ms_per_char` per character) so a call sounds paced
    like the real one; `ivr check` reports placeholder audio as not ready for production.
    """

    name = "placeholder"
    languages: frozenset[str] | None = None
    RATE = 8000

    def __init__(self, ms_per_char: int = 60, min_ms: int = 400, max_ms: int = 20_000):
        self.ms_per_char = ms_per_char
        self.min_ms = min_ms
        self.max_ms = max_ms
        self.settings = {"ms_per_char": ms_per_char, "min_ms": min_ms, "max_ms": max_ms}

    def duration_ms(self, text: str) -> int:
        return max(self.min_ms, min(self.max_ms, len(text) * self.ms_per_char))

    def synthesize(self, text: str, lang: str) -> Audio:
        # Beeps of 120 ms with 80 ms gaps, alternating 440 and 660 Hz, ending on a beep.
        total = self.duration_ms(text) * self.RATE // 1000
        period = _beeps(self.RATE)
        pcm = (period * (total * 2 // len(period) + 1))[:total * 2]
        samples = array("h", pcm)
        return Audio(_wav_bytes(samples.tobytes(), self.RATE), "wav")


@functools.lru_cache(maxsize=4)
def _beeps(rate: int) -> bytes:
    """One period of the placeholder's sound: a 440 Hz beep, a gap, a 660 Hz beep, a gap."""
    beep, gap = 120 * rate // 1000, 80 * rate // 1000
    samples = array("h")
    for hz in (440, 660):
        step = 2 * math.pi * hz / rate
        samples.extend(int(8000 * math.sin(step * i)) for i in range(beep))
        samples.extend([0] * gap)
    return samples.tobytes()


def _wav_bytes(pcm: bytes, rate: int) -> bytes:
    header = struct.pack("<4sI4s4sIHHIIHH4sI", b"RIFF", 36 + len(pcm), b"WAVE", b"fmt ", 16,
                         1, 1, rate, rate * 2, 2, 16, b"data", len(pcm))
    return header + pcm


ENGINES: dict[str, Callable[[], Engine]] = {
    "azure": AzureEngine,
    "gtts": GttsEngine,
    "espeak": EspeakEngine,
    "placeholder": PlaceholderEngine,
}


def make_engine(name: str) -> Engine:
    """The engine called `name` with its production settings."""
    if name not in ENGINES:
        raise RenderError(f"unknown engine {name!r}; choose from {', '.join(ENGINES)}")
    return ENGINES[name]()


# --- Conversion ------------------------------------------------------------------------------


def decode(audio: Audio) -> AudioSegment:
    """Any input (MP3, or WAV in any encoding, even with espeak's streamed header) as 16-bit
    mono PCM at the output rate. ffmpeg decodes it, not pydub's own WAV reader, which only
    understands plain PCM; the format is given explicitly because there is no ffprobe."""
    rate = CONVERSION["rate"]
    if audio.format == "wav":  # already 16-bit mono PCM at the output rate: no ffmpeg needed
        with suppress(ValueError, struct.error):
            info, offset = _parse_wav(io.BytesIO(audio.data), len(audio.data))
            if (info.format_tag, info.channels, info.rate, info.bits) == (1, 1, rate, 16):
                pcm = audio.data[offset:offset + info.data_bytes]
                return AudioSegment(data=pcm, sample_width=2, frame_rate=rate, channels=1)
            if (info.format_tag, info.channels, info.rate, info.bits) == (7, 1, rate, 8):
                # already telephone mu-law (Azure's riff-8khz-8bit-mono-mulaw, a phone
                # studio's recording): decoded here, without ffmpeg
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", DeprecationWarning)
                    import audioop
                pcm = audioop.ulaw2lin(audio.data[offset:offset + info.data_bytes], 2)
                return AudioSegment(data=pcm, sample_width=2, frame_rate=rate, channels=1)
    run = subprocess.run(
        [FFMPEG, "-hide_banner", "-loglevel", "error", "-f", audio.format, "-i", "pipe:0",
         "-f", "s16le", "-acodec", "pcm_s16le", "-ac", "1", "-ar", str(rate), "pipe:1"],
        input=audio.data, capture_output=True,
    )
    if run.returncode != 0:
        raise RenderError(f"cannot decode {audio.format}: "
                          f"{run.stderr.decode(errors='replace').strip()[:200]}")
    return AudioSegment(data=run.stdout, sample_width=2, frame_rate=rate, channels=1)


def convert(audio: Audio) -> tuple[bytes, int]:
    """Audio as Twilio plays it without resampling: 8 kHz mono mu-law WAV, loudness
    normalised (never clipped), silence trimmed, a short pause at each end. Returns the WAV
    bytes and the duration in milliseconds."""
    segment = decode(audio)
    if len(segment) == 0 or segment.max_dBFS == -math.inf:
        raise RenderError("the audio is silent")
    gain = min(CONVERSION["target_dbfs"] - segment.dBFS,
               CONVERSION["max_peak_dbfs"] - segment.max_dBFS)
    segment = segment.apply_gain(gain)
    threshold = CONVERSION["silence_dbfs"]
    lead = detect_leading_silence(segment, silence_threshold=threshold)
    trail = detect_leading_silence(segment.reverse(), silence_threshold=threshold)
    if lead + trail >= len(segment):
        raise RenderError("the audio is silent")
    segment = segment[lead:len(segment) - trail]
    pad = AudioSegment.silent(duration=CONVERSION["pad_ms"], frame_rate=CONVERSION["rate"])
    segment = pad + segment + pad
    return mulaw_wav(segment.raw_data, CONVERSION["rate"]), len(segment)


def mulaw_wav(pcm: bytes, rate: int) -> bytes:
    """16-bit mono PCM as a G.711 mu-law WAV, laid out as ffmpeg writes it (fmt with cbSize,
    a fact chunk, then data), encoded in this process: no second ffmpeg run per prompt."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import audioop  # audioop-lts on Python 3.13

    data = audioop.lin2ulaw(pcm, 2)
    fmt = struct.pack("<HHIIHHH", 7, 1, rate, rate, 1, 8, 0)
    body = (b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
            + b"fact" + struct.pack("<II", 4, len(data))
            + b"data" + struct.pack("<I", len(data)) + data + (b"\0" if len(data) & 1 else b""))
    return b"RIFF" + struct.pack("<I", len(body)) + body


@dataclass(frozen=True)
class WavInfo:
    format_tag: int  # 1 PCM, 7 mu-law
    channels: int
    rate: int
    bits: int
    data_bytes: int

    @property
    def duration_ms(self) -> int:
        bytes_per_second = self.rate * self.channels * max(1, self.bits // 8)
        return round(self.data_bytes * 1000 / bytes_per_second)


def wav_info(path: Path) -> WavInfo:
    """The fmt and data chunks of a WAV file (Python's wave module cannot read mu-law)."""
    with open(path, "rb") as f:
        return _parse_wav(f, path.stat().st_size)[0]


def _parse_wav(f: IO[bytes], size: int) -> tuple[WavInfo, int]:
    """The WAV's format and where its samples start; the data size is trusted only as far
    as the file goes (streamed WAVs, like espeak's, have no real size in the header)."""
    head = f.read(12)
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        raise ValueError("not a WAV file")
    fmt = None
    while True:
        chunk = f.read(8)
        if len(chunk) < 8:
            raise ValueError("no data chunk")
        name, length = struct.unpack("<4sI", chunk)
        if name == b"fmt ":
            fmt = struct.unpack("<HHIIHH", f.read(16))
            f.seek(length - 16 + (length & 1), os.SEEK_CUR)
        elif name == b"data":
            if fmt is None:
                raise ValueError("data before fmt")
            start = f.tell()
            return WavInfo(fmt[0], fmt[1], fmt[2], fmt[5], min(length, size - start)), start
        else:
            f.seek(length + (length & 1), os.SEEK_CUR)


# --- Planning --------------------------------------------------------------------------------


def find_recording(recordings_dir: Path | None, utterance: Utterance) -> Path | None:
    """A person's recording of this prompt, which wins over any engine."""
    if recordings_dir is None:
        return None
    for suffix in RECORDING_SUFFIXES:
        path = Path(recordings_dir) / utterance.lang / f"{utterance.key}{suffix}"
        if path.is_file():
            return path
    return None


def fingerprint(utterance: Utterance, engine: Engine, recording: Path | None = None) -> str:
    """A hash of everything that shapes the audio: what is said (as the engine gets it), by
    which engine with which settings, or which recording, and how it is converted."""
    if recording is not None:
        source: dict[str, Any] = {
            "engine": RECORDING_ENGINE,
            "sha256": hashlib.sha256(recording.read_bytes()).hexdigest(),
            "format": recording.suffix.lower(),
        }
    else:
        source = {"engine": engine.name, "settings": engine.settings,
                  "lang": utterance.lang, "spoken": prepare(utterance.text, utterance.lang)}
    blob = json.dumps({"v": 1, "source": source, "conversion": CONVERSION},
                      sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def audio_file(lang: str, digest: str) -> str:
    """Where audio with this fingerprint lives, relative to the audio directory."""
    return f"{lang}/{digest[:24]}.wav"


@dataclass
class _Job:
    """One file to render, for every utterance that sounds exactly so (usually one)."""

    fingerprint: str
    file: str
    engine: str
    text: str  # as the engine gets it
    lang: str
    recording: Path | None
    utterances: list[Utterance] = field(default_factory=list)


@dataclass(frozen=True)
class Failure:
    key: str
    lang: str
    reason: str


@dataclass
class RenderSummary:
    """What a run did; `line()` is the one-line summary administrators read."""

    rendered: list[tuple[str, str]] = field(default_factory=list)  # (key, lang)
    unchanged: int = 0
    reused: list[tuple[str, str]] = field(default_factory=list)  # file already there
    failed: list[Failure] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)  # files pruned (or to prune)
    duration_ms: int = 0  # all audio in the manifest for these utterances
    conversions: int = 0
    dry_run: bool = False

    @property
    def ok(self) -> bool:
        return not self.failed

    def line(self) -> str:
        verb = "would render" if self.dry_run else "rendered"
        parts = [f"{verb} {len(self.rendered)}", f"unchanged {self.unchanged}"]
        if self.reused:
            parts.append(f"reused {len(self.reused)}")
        parts.append(f"failed {len(self.failed)}")
        parts.append(f"{'would remove' if self.dry_run else 'removed'} {len(self.removed)}")
        minutes, seconds = divmod(round(self.duration_ms / 1000), 60)
        return ", ".join(parts) + f"; {minutes} min {seconds} s of audio"


Progress = Callable[[int, int, str], None]  # (done, total, what just finished)


def make_progress(stream: IO[str] | None = None) -> Progress:
    """A one-line bar on a terminal; plain lines in a log file or CI."""
    out = stream if stream is not None else sys.stderr
    tty = out.isatty()

    def progress(done: int, total: int, label: str) -> None:
        if tty:
            width = 30
            filled = width * done // max(total, 1)
            bar = "#" * filled + "." * (width - filled)
            out.write(f"\r[{bar}] {done}/{total} {label[:40]:<40}")
            if done == total:
                out.write("\n")
        else:
            out.write(f"{done}/{total} {label}\n")
        out.flush()

    return progress


# --- Manifest --------------------------------------------------------------------------------

ENTRY_FIELDS = ("key", "lang", "text", "file", "duration_ms", "engine", "fingerprint")


def read_manifest(audio_dir: Path) -> dict[tuple[str, str], dict[str, Any]]:
    """Entries by (key, lang). A missing or unreadable manifest is empty: every prompt is
    then re-rendered (or found again by its content-addressed file name)."""
    try:
        data = json.loads((Path(audio_dir) / MANIFEST).read_text(encoding="utf-8"))
        return {(p["key"], p["lang"]): p for p in data["prompts"]
                if isinstance(p, dict) and isinstance(p.get("file"), str)}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def write_manifest(audio_dir: Path, entries: Iterable[dict[str, Any]]) -> None:
    """Write the manifest atomically, keeping only entries whose files exist, sorted by
    (lang, key) so that a re-render gives a small diff."""
    audio_dir = Path(audio_dir)
    kept = sorted((e for e in entries if (audio_dir / e["file"]).is_file()),
                  key=lambda e: (e["lang"], e["key"]))
    prompts = [{name: e.get(name) for name in ENTRY_FIELDS} for e in kept]
    text = json.dumps({"version": MANIFEST_VERSION, "prompts": prompts}, ensure_ascii=False,
                      indent=1)
    data = (text + "\n").encode("utf-8")
    with suppress(OSError):
        if (audio_dir / MANIFEST).read_bytes() == data:  # unchanged: the server need not reload
            return
    write_atomic(audio_dir / MANIFEST, data)


def write_atomic(path: Path, data: bytes) -> None:
    """Write to a temporary file beside `path`, then rename: readers (and the next run) see
    the old file or the whole new one, never a truncated one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a web server may run as another user
        os.replace(tmp, path)
    except BaseException:
        with suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


# --- Rendering -------------------------------------------------------------------------------


def render(
    utterances: Sequence[Utterance],
    audio_dir: Path,
    engine: Engine,
    *,
    recordings_dir: Path | None = None,
    force: bool = False,
    prune: bool = False,
    dry_run: bool = False,
    jobs: int = 1,
    langs: Iterable[str] | None = None,
    progress: Progress | None = None,
) -> RenderSummary:
    """Render what changed since the last run into `audio_dir` and update its manifest.

    `utterances` is the whole set (for the languages in `langs`, or all): manifest entries for
    utterances no longer in it are dropped, and `prune` deletes files nothing refers to. A
    prompt that fails is reported and the others go on; its previous audio, if any, stays.
    """
    audio_dir = Path(audio_dir)
    wanted = set(langs) if langs is not None else None
    selected = [u for u in utterances if wanted is None or u.lang in wanted]
    seen: set[tuple[str, str]] = set()
    for u in selected:
        if (u.key, u.lang) in seen:
            raise ValueError(f"utterance {u.key} [{u.lang}] is listed twice")
        seen.add((u.key, u.lang))

    summary = RenderSummary(dry_run=dry_run)
    old = read_manifest(audio_dir)
    # Entries that stay as they are unless replaced: other languages, and prompts still
    # wanted (even stale ones: their old audio is better than none if the render fails).
    entries = {
        k: e for k, e in old.items()
        if (k in seen or (wanted is not None and k[1] not in wanted))
        and (audio_dir / e["file"]).is_file()
    }

    todo: dict[str, _Job] = {}
    for u in selected:
        recording = find_recording(recordings_dir, u)
        if recording is None and not supports(engine, u.lang):
            summary.failed.append(Failure(u.key, u.lang, f"{engine.name} has no voice for "
                                                         f"{u.lang}"))
            continue
        try:
            digest = fingerprint(u, engine, recording)
        except OSError as exc:  # an unreadable recording
            summary.failed.append(Failure(u.key, u.lang, f"cannot read {recording}: {exc}"))
            continue
        current = entries.get((u.key, u.lang))
        if (not force and current is not None and current.get("fingerprint") == digest):
            summary.unchanged += 1
            continue
        file = audio_file(u.lang, digest)
        # The file may already exist (a run killed before its manifest was written, a text
        # changed back, two prompts that sound the same): its name says it is this audio.
        existing = None if force or digest in todo else _existing_duration(audio_dir / file)
        if existing is not None:
            entries[(u.key, u.lang)] = _entry(u, file, existing, recording, engine, digest)
            summary.reused.append((u.key, u.lang))
            continue
        job = todo.setdefault(digest, _Job(
            digest, file, RECORDING_ENGINE if recording else engine.name,
            prepare(u.text, u.lang), u.lang, recording))
        job.utterances.append(u)

    if dry_run:
        summary.rendered = [(u.key, u.lang) for job in todo.values() for u in job.utterances]
        if prune:
            summary.removed = _orphans(audio_dir, entries.values(), _lang_dirs(
                audio_dir, wanted, selected, entries.values()))
        summary.duration_ms = _duration(entries, seen)
        return summary

    if not audio_dir.is_dir():
        audio_dir.mkdir(parents=True)
    _remove_stale_temp_files(audio_dir)
    total = len(todo)
    done = 0
    since_checkpoint = 0

    def finished(job: _Job, result: tuple[int] | BaseException) -> None:
        nonlocal done, since_checkpoint
        done += 1
        if isinstance(result, BaseException):
            summary.failed.extend(Failure(u.key, u.lang, str(result) or type(result).__name__)
                                  for u in job.utterances)
            status = "FAILED"
        else:
            summary.conversions += 1
            for u in job.utterances:
                entries[(u.key, u.lang)] = _entry(u, job.file, result[0], job.recording,
                                                  engine, job.fingerprint)
                summary.rendered.append((u.key, u.lang))
            status = "ok"
            since_checkpoint += 1
            if since_checkpoint >= CHECKPOINT_EVERY:
                write_manifest(audio_dir, entries.values())
                since_checkpoint = 0
        if progress is not None:
            first = job.utterances[0]
            progress(done, total, f"{first.key} [{first.lang}] {status}")

    try:
        if jobs <= 1:
            for job in todo.values():
                finished(job, _run_job(job, engine, audio_dir))
        else:
            _run_parallel(list(todo.values()), engine, audio_dir, jobs, finished)
    finally:  # also on KeyboardInterrupt: keep what is done, so the next run carries on
        write_manifest(audio_dir, entries.values())

    summary.rendered.sort(key=lambda item: (item[1], item[0]))
    if prune:
        dirs = _lang_dirs(audio_dir, wanted, selected, entries.values())
        for rel in _orphans(audio_dir, entries.values(), dirs):
            with suppress(FileNotFoundError):
                (audio_dir / rel).unlink()
            summary.removed.append(rel)
    summary.duration_ms = _duration(entries, seen)
    return summary


def _run_job(job: _Job, engine: Engine, audio_dir: Path) -> tuple[int] | Exception:
    """Render one file; an ordinary error becomes the result (the run goes on), while
    KeyboardInterrupt and the like stop the run."""
    try:
        if job.recording is not None:
            audio = Audio(job.recording.read_bytes(), job.recording.suffix.lower().lstrip("."))
        else:
            audio = engine.synthesize(job.text, job.lang)
        data, duration_ms = convert(audio)
        write_atomic(audio_dir / job.file, data)
        return (duration_ms,)
    except Exception as exc:  # one prompt's failure must not stop the others
        return exc


def _run_parallel(todo: list[_Job], engine: Engine, audio_dir: Path, jobs: int,
                  finished: Callable[[_Job, Any], None]) -> None:
    """A bounded pool; results are handled in this thread, so only it touches the manifest.
    On an interrupt, queued jobs are cancelled and the running ones finish their file."""
    pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="render")
    pending: dict[Future, _Job] = {}
    queue = iter(todo)
    try:
        for job in queue:
            pending[pool.submit(_run_job, job, engine, audio_dir)] = job
            if len(pending) >= 2 * jobs:
                break
        while pending:
            ready, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in ready:
                job = pending.pop(future)
                finished(job, future.result())  # re-raises a KeyboardInterrupt
                following = next(queue, None)
                if following is not None:
                    pending[pool.submit(_run_job, following, engine, audio_dir)] = following
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _entry(u: Utterance, file: str, duration_ms: int, recording: Path | None, engine: Engine,
           digest: str) -> dict[str, Any]:
    return {"key": u.key, "lang": u.lang, "text": u.text, "file": file,
            "duration_ms": int(duration_ms),
            "engine": RECORDING_ENGINE if recording is not None else engine.name,
            "fingerprint": digest}


def _existing_duration(path: Path) -> int | None:
    try:
        return wav_info(path).duration_ms
    except (OSError, ValueError, struct.error):
        return None


def _duration(entries: dict[tuple[str, str], dict[str, Any]], keys: set[tuple[str, str]]) -> int:
    return sum(int(e.get("duration_ms") or 0) for k, e in entries.items() if k in keys)


def _lang_dirs(audio_dir: Path, wanted: set[str] | None, selected: Sequence[Utterance],
               entries: Iterable[dict[str, Any]]) -> list[Path]:
    """The language directories prune may clean: only those of known languages, never
    anything else someone keeps in the audio directory."""
    langs = wanted if wanted is not None else (
        {u.lang for u in selected} | {e["lang"] for e in entries})
    return [audio_dir / lang for lang in sorted(langs) if (audio_dir / lang).is_dir()]


def _orphans(audio_dir: Path, entries: Iterable[dict[str, Any]], dirs: list[Path]) -> list[str]:
    referenced = {e["file"] for e in entries}
    return sorted(
        path.relative_to(audio_dir).as_posix()
        for folder in dirs for path in folder.iterdir()
        if path.is_file() and path.relative_to(audio_dir).as_posix() not in referenced
    )


def _remove_stale_temp_files(audio_dir: Path) -> None:
    """Temp files of a run that was killed outright (an interrupt cleans up after itself)."""
    limit = time.time() - STALE_TEMP_SECONDS
    for path in list(audio_dir.glob(".*.tmp")) + list(audio_dir.glob("*/.*.tmp")):
        with suppress(OSError):
            if path.stat().st_mtime < limit:
                path.unlink()


# --- Where each utterance's audio comes from -------------------------------------------------

PERSON = "person"  # a person's recording, current
ENGINE = "engine"  # a speech engine's rendering (Source.engine names which), current
PLACEHOLDER = "placeholder"  # beeps, not speech
STALE = "stale"  # audio exists but says an older text, and no current parts to compose from
MISSING = "missing"  # no audio at all
STATUSES = (PERSON, ENGINE, PLACEHOLDER, STALE, MISSING)


@dataclass(frozen=True)
class Source:
    """Where the audio a caller hears for one utterance comes from (`audio_sources`)."""

    key: str
    lang: str
    text: str
    status: str  # one of STATUSES
    engine: str  # "recording", "gtts", "azure", "placeholder", ...; "" when missing
    file: str | None  # the utterance's own audio file (relative to the audio dir), if current
    recording: Path | None  # a person's recording in prompts/recordings/<lang>/, if any
    composed: bool = False  # heard as its parts (its own audio is missing or stale)
    recording_stale: bool = False  # a person recorded an older text of it

    @property
    def playable(self) -> bool:
        """A caller hears audio in this language (not English <Say>)."""
        return self.status not in (STALE, MISSING)


def audio_sources(utterances: Sequence[Utterance], audio_dir: Path,
                  recordings_dir: Path | None = None) -> list[Source]:
    """For each utterance, in order: whether a caller hears a person, an engine, a
    placeholder, or nothing current (stale, missing) -- exactly as the line decides at call
    time (`ivr.steps.Context.play`): the utterance's own audio while its text is current,
    else its parts (`Utterance.parts`) when every part has current audio.

    A composed utterance counts as a person's voice only when every part is one, as
    placeholder when any part is, else as an engine's (`engine` then names the parts'
    engines, joined by "+")."""
    audio_dir = Path(audio_dir)
    entries = read_manifest(audio_dir)
    by_key = {(u.key, u.lang): u for u in utterances}

    def own(u: Utterance) -> tuple[str, str, str | None] | None:
        entry = entries.get((u.key, u.lang))
        if entry is None or not (audio_dir / entry["file"]).is_file():
            return None
        if entry.get("text") != u.text:
            return (STALE, str(entry.get("engine") or ""), None)
        engine = str(entry.get("engine") or "")
        status = (PERSON if engine == RECORDING_ENGINE
                  else PLACEHOLDER if engine == PlaceholderEngine.name else ENGINE)
        return (status, engine, entry["file"])

    result = []
    for u in utterances:
        recording = find_recording(recordings_dir, u)
        found = own(u)
        recording_stale = bool(recording is not None and found is not None
                               and found[0] == STALE and found[1] == RECORDING_ENGINE)
        if found is not None and found[0] != STALE:
            result.append(Source(u.key, u.lang, u.text, found[0], found[1], found[2],
                                 recording))
            continue
        parts = [by_key.get((key, u.lang)) for key in u.parts]
        heard = [own(p) if p is not None else None for p in parts]
        if parts and all(h is not None and h[0] != STALE for h in heard):
            statuses = {h[0] for h in heard if h is not None}
            engines = sorted({h[1] for h in heard if h is not None})
            status = (PERSON if statuses == {PERSON} else
                      PLACEHOLDER if PLACEHOLDER in statuses else ENGINE)
            result.append(Source(u.key, u.lang, u.text, status, "+".join(engines), None,
                                 recording, composed=True, recording_stale=recording_stale))
            continue
        status = STALE if found is not None else MISSING
        result.append(Source(u.key, u.lang, u.text, status, found[1] if found else "", None,
                             recording, recording_stale=recording_stale))
    return result


def source_counts(sources: Iterable[Source]) -> dict[str, dict[str, int]]:
    """lang -> status -> how many utterances (every status present, 0 when none)."""
    counts: dict[str, dict[str, int]] = {}
    for s in sources:
        counts.setdefault(s.lang, dict.fromkeys(STATUSES, 0))[s.status] += 1
    return counts


# --- Command line ----------------------------------------------------------------------------


def load_utterances(catalog_path: Path, prompts_dir: Path) -> list[Utterance]:
    """Everything the line says, from the catalogue and the prompt wording."""
    from ivr.catalog import load_catalog
    from ivr.prompts import all_utterances, load_wording

    catalog = load_catalog(catalog_path)
    wording = load_wording(prompts_dir, catalog.languages)
    return all_utterances(catalog, wording)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="render_prompts.py",
        description="Render the line's prompts to 8 kHz mu-law WAV (only what changed).")
    parser.add_argument("--catalog", type=Path,
                        default=Path(os.environ.get("IVR_CATALOG", "catalog.yaml")))
    parser.add_argument("--prompts", type=Path,
                        default=Path(os.environ.get("IVR_PROMPTS", "prompts")),
                        help="prompt wording; recordings in <prompts>/recordings/<lang>/")
    parser.add_argument("--audio-dir", type=Path,
                        default=Path(os.environ.get("IVR_AUDIO_DIR", "audio")))
    parser.add_argument("--engine", choices=sorted(ENGINES), default="gtts")
    parser.add_argument("--lang", action="append", dest="langs", metavar="LANG",
                        help="only this language (repeatable); default: all")
    parser.add_argument("--force", action="store_true", help="re-render even unchanged prompts")
    parser.add_argument("--prune", action="store_true",
                        help="delete audio files the manifest no longer refers to")
    parser.add_argument("--dry-run", action="store_true", help="list changes, write nothing")
    parser.add_argument("--jobs", type=int, default=1, help="prompts rendered at once")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """`ivr render` and scripts/render_prompts.py. Exit status 1 if any prompt failed,
    2 for bad input, 130 when interrupted."""
    args = build_parser().parse_args(argv)
    if args.jobs < 1:
        print("--jobs must be at least 1", file=sys.stderr)
        return 2
    try:
        utterances = load_utterances(args.catalog, args.prompts)
        engine = make_engine(args.engine)
    except EngineUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except (OSError, ValueError, RenderError) as exc:  # CatalogError is a ValueError
        print(f"error: {exc}", file=sys.stderr)
        return 2
    known = sorted({u.lang for u in utterances})
    unknown = sorted(set(args.langs or ()) - set(known))
    if unknown:
        print(f"error: no prompts in {', '.join(unknown)}; languages: {', '.join(known)}",
              file=sys.stderr)
        return 2
    try:
        summary = render(utterances, args.audio_dir, engine,
                         recordings_dir=Path(os.environ.get("IVR_RECORDINGS")  # the studio's
                                             or args.prompts / "recordings"),
                         force=args.force, prune=args.prune, dry_run=args.dry_run, jobs=args.jobs,
                         langs=args.langs, progress=None if args.dry_run else make_progress())
    except KeyboardInterrupt:
        print("\ninterrupted: finished prompts are saved; run again to carry on",
              file=sys.stderr)
        return 130
    if args.dry_run:
        for key, lang in summary.rendered:
            print(f"would render {key} [{lang}]")
        for rel in summary.removed:
            print(f"would remove {rel}")
    print_failures(summary.failed)
    print(summary.line())
    return 0 if summary.ok else 1


def print_failures(failures: Sequence[Failure], out: IO[str] | None = None) -> None:
    """One line per failed prompt; when many fail for one reason (Google unreachable), one
    line for all of them."""
    by_reason: dict[str, list[Failure]] = {}
    for failure in failures:
        by_reason.setdefault(failure.reason, []).append(failure)
    for reason, group in by_reason.items():
        names = [f"{f.key} [{f.lang}]" for f in group]
        if len(group) <= 3:
            lines = [f"FAILED {name}: {reason}" for name in names]
        else:
            shown = ", ".join(names[:3])
            lines = [f"FAILED {len(group)} prompts ({shown}, ...): {reason}"]
        for line in lines:
            print(line, file=out if out is not None else sys.stdout)
