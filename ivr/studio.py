"""The voice studio: people's recordings of the line's prompts, made in the admin pages (the
browser's microphone, an uploaded file, a folder or zip of files) or on the phone studio
line, converted to the telephone format and played to callers from the next call.

A person's recording of a prompt is `<recordings>/<lang>/<key>.wav` (IVR_RECORDINGS, by
default `prompts/recordings`, the folder `ivr render` already reads): 8 kHz mono mu-law,
loudness-normalised and trimmed by `render.convert`. Beside it, `<key>.json` says who made
it, how, from which text, and which audio it replaced (the manifest entry), so removing the
recording brings that audio back if its file is still there. Storing one also writes its
content-addressed file into the audio folder and its manifest entry, with the fingerprint
`ivr render` computes for it: callers hear it at once, and the next render leaves it alone.

The recording script numbers every utterance worth reading aloud: the fixed sentences in
the order of prompts/<lang>.yaml, then the catalogue's prompts by key; a prompt has the same
number in every language. The numbers follow the current catalogue: print the script again
after a catalogue edit.
"""

from __future__ import annotations

import fcntl
import io
import json
import logging
import subprocess
import tempfile
import zipfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ivr import render
from ivr.audio import AudioLibrary
from ivr.prompts import PromptBook
from ivr.utterance import Utterance

log = logging.getLogger(__name__)

MAX_SECONDS = 600  # longer input is cut: no prompt is read for ten minutes
MAX_FILE_BYTES = 25 * 1024 * 1024  # one uploaded file
MAX_IMPORT_BYTES = 200 * 1024 * 1024  # a whole import, unpacked (a zip bomb stops here)
PLACEHOLDER = "placeholder"
# What the studio accepts, recognised by the file's first bytes (never by its name), and the
# ffmpeg demuxer each is read with: an explicit demuxer, so that a playlist or any other
# format ffmpeg could follow to other files is never opened.
DEMUXERS = {"wav": "wav", "mp3": "mp3", "m4a": "mov", "ogg": "ogg", "webm": "matroska"}


class StudioError(Exception):
    """A recording was refused; `key` names the admin pages' message (and `values`)."""

    def __init__(self, key: str, **values: str):
        super().__init__(key)
        self.key = key
        self.values = values


# --- the recording script --------------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    """One utterance of the script: its number, key, language, current text, and where its
    audio comes from: 'person', 'engine' (which: `engine`), 'placeholder', 'missing' or
    'stale' (audio of an older text, or a person's recording of an older text)."""

    number: int
    key: str
    lang: str
    text: str
    source: str
    engine: str = ""
    file: str = ""  # the audio callers hear now, relative to the audio folder ('' if none)
    recorded: bool = False  # a person's recording exists for it
    recorded_by: str = ""
    recorded_at: str = ""
    composed: bool = False  # heard as its parts (number words, names), not its own audio

    @property
    def utterance(self) -> Utterance:
        return Utterance(self.key, self.lang, self.text)

    @property
    def to_record(self) -> bool:
        """Still to record by a person: no recording of the current text."""
        return self.source != "person"


def speakable(text: str) -> bool:
    return any(char.isalnum() for char in text)


def numbers(book: PromptBook) -> dict[str, int]:
    """Script number by key: the fixed sentences in their file's order, then the rest by key."""
    languages = book.catalog.languages
    first = languages[0]
    keys = [k for k in book.wording.sentences.get(first, {}) if book.has(k, first)]
    known = set(keys)
    keys += sorted({u.key for u in book.utterances()} - known)
    wanted = [k for k in keys if any(book.has(k, lang) and speakable(book.text(k, lang))
                                     for lang in languages)]
    return {key: number for number, key in enumerate(wanted, start=1)}


def script(book: PromptBook, lang: str, audio_dir: Path, recordings_dir: Path) -> list[Line]:
    """Every utterance of `lang` worth reading aloud, by number, with its audio's source as
    the line decides it at call time and `ivr check` counts it (`render.audio_sources`:
    its own audio, or its parts when that is missing or stale)."""
    utterances = {u.key: u for u in book.utterances() if u.lang == lang}
    sources = {s.key: s for s in render.audio_sources(list(utterances.values()), audio_dir,
                                                      recordings_dir)}
    lines = []
    for key, number in numbers(book).items():
        u = utterances.get(key)
        if u is None or not speakable(u.text):
            continue
        lines.append(describe(number, u, sources[key], recordings_dir))
    return lines


def describe(number: int, u: Utterance, source: Any, recordings_dir: Path) -> Line:
    meta = read_meta(recordings_dir, u) if source.recording is not None else {}
    status = source.status
    if status == "person" and not source.composed and meta.get("text", u.text) != u.text:
        status = "stale"  # a person's voice of an older text (it outlived a catalogue edit)
    return Line(number, u.key, u.lang, u.text, status, source.engine, source.file or "",
                source.recording is not None, str(meta.get("by", "")),
                str(meta.get("at", "")), source.composed)


def find_line(book: PromptBook, lang: str, audio_dir: Path, recordings_dir: Path, *,
              key: str | None = None, number: int | None = None) -> Line | None:
    """One utterance of the script by key or number (None when there is none)."""
    for line in script(book, lang, audio_dir, recordings_dir):
        if (key is not None and line.key == key) or (number is not None
                                                     and line.number == number):
            return line
    return None


# --- audio in ----------------------------------------------------------------------------------


def sniff(data: bytes) -> str | None:
    """The accepted format these bytes are ('wav', 'mp3', 'm4a', 'ogg', 'webm'), or None."""
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return "wav"
    if data[:3] == b"ID3" or (len(data) > 1 and data[0] == 0xFF and data[1] & 0xE0 == 0xE0):
        return "mp3"
    if data[4:8] == b"ftyp":
        return "m4a"
    if data[:4] == b"OggS":
        return "ogg"
    if data[:4] == b"\x1a\x45\xdf\xa3":
        return "webm"
    return None


def telephone(data: bytes) -> tuple[bytes, int]:
    """A person's recording in any accepted format as the line plays it: 8 kHz mono mu-law
    WAV, trimmed and normalised (`render.convert`). StudioError when it is not audio."""
    if not data:
        raise StudioError("voice.error.empty")
    if len(data) > MAX_FILE_BYTES:
        raise StudioError("voice.error.too_big", mb=str(MAX_FILE_BYTES // (1024 * 1024)))
    kind = sniff(data)
    if kind is None:
        raise StudioError("voice.error.not_audio")
    with tempfile.TemporaryDirectory(prefix="ivr-studio-") as folder:
        source, pcm = Path(folder) / "in", Path(folder) / "out.wav"
        source.write_bytes(data)  # a file, not a pipe: an m4a's index may be at its end
        run = subprocess.run(
            [render.FFMPEG, "-hide_banner", "-loglevel", "error", "-nostdin",
             "-f", DEMUXERS[kind], "-i", str(source), "-vn", "-t", str(MAX_SECONDS),
             "-acodec", "pcm_s16le", "-ac", "1", "-ar", str(render.CONVERSION["rate"]),
             "-f", "wav", str(pcm)], capture_output=True, timeout=120)
        if run.returncode != 0 or not pcm.is_file():
            log.info("an upload (%s) could not be decoded: %s", kind,
                     run.stderr.decode(errors="replace").strip()[:300])
            raise StudioError("voice.error.not_audio")
        decoded = pcm.read_bytes()
    try:
        return render.convert(render.Audio(decoded, "wav"))
    except render.RenderError as exc:
        raise StudioError("voice.error.silent") from exc


# --- storing and removing --------------------------------------------------------------------


def meta_path(recordings_dir: Path, u: Utterance) -> Path:
    return Path(recordings_dir) / u.lang / f"{u.key}.json"


def recording_path(recordings_dir: Path, u: Utterance) -> Path:
    return Path(recordings_dir) / u.lang / f"{u.key}.wav"


def read_meta(recordings_dir: Path, u: Utterance) -> dict[str, Any]:
    try:
        data = json.loads(meta_path(recordings_dir, u).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


@contextmanager
def _locked(audio_dir: Path) -> Iterator[None]:
    """One writer of the manifest at a time, across threads, workers and the studio line."""
    audio_dir.mkdir(parents=True, exist_ok=True)
    with open(audio_dir / ".studio.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _fingerprint(u: Utterance, recording: Path) -> str:
    # the engine is not part of a recording's fingerprint: any engine gives the same hash
    return render.fingerprint(u, render.PlaceholderEngine(), recording)


def store(u: Utterance, data: bytes, audio_dir: Path, recordings_dir: Path, *, by: str,
          via: str, library: AudioLibrary | None = None) -> int:
    """Make `data` (any accepted format) the person's recording of `u` and what callers
    hear from the next call; returns its duration in ms. StudioError when it is refused,
    and then nothing has changed."""
    audio, duration_ms = telephone(data)
    try:
        _store(u, audio, duration_ms, Path(audio_dir), Path(recordings_dir), by, via)
    except OSError as exc:  # a folder that is not writable, a full disk
        log.error("could not store the recording of %s [%s]: %s", u.key, u.lang, exc)
        raise StudioError("voice.error.storage") from exc
    refresh(library)
    log.info("a person's recording of %s [%s] (%s, %d ms, by %s) is live", u.key, u.lang,
             via, duration_ms, by)
    return duration_ms


def _store(u: Utterance, audio: bytes, duration_ms: int, audio_dir: Path,
           recordings_dir: Path, by: str, via: str) -> None:
    path = recording_path(recordings_dir, u)
    with _locked(audio_dir):
        entries = render.read_manifest(audio_dir)
        old = entries.get((u.key, u.lang))
        before = read_meta(recordings_dir, u) if path.is_file() else {}
        if old is not None and old.get("engine") != render.RECORDING_ENGINE:
            replaced: dict[str, Any] | None = old  # an engine's audio: back when removed
        else:
            replaced = before.get("replaced")  # replacing a person: keep what it replaced
        render.write_atomic(path, audio)
        digest = _fingerprint(u, path)
        file = render.audio_file(u.lang, digest)
        render.write_atomic(audio_dir / file, audio)
        entries[(u.key, u.lang)] = {
            "key": u.key, "lang": u.lang, "text": u.text, "file": file,
            "duration_ms": duration_ms, "engine": render.RECORDING_ENGINE,
            "fingerprint": digest}
        meta = {"key": u.key, "lang": u.lang, "text": u.text, "by": by, "via": via,
                "at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "duration_ms": duration_ms, "replaced": replaced}
        render.write_atomic(meta_path(recordings_dir, u),
                            json.dumps(meta, ensure_ascii=False, indent=1).encode("utf-8"))
        render.write_manifest(audio_dir, entries.values())  # last: then callers hear it


def remove(u: Utterance, audio_dir: Path, recordings_dir: Path,
           library: AudioLibrary | None = None) -> str:
    """Remove the person's recording of `u`; callers hear again what it replaced, when that
    audio is still there. Returns 'restored', 'removed' (nothing to go back to) or 'none'."""
    audio_dir, recordings_dir = Path(audio_dir), Path(recordings_dir)
    path = recording_path(recordings_dir, u)
    if not path.is_file():
        return "none"
    with _locked(audio_dir):
        meta = read_meta(recordings_dir, u)
        entries = render.read_manifest(audio_dir)
        replaced = meta.get("replaced")
        outcome = "removed"
        current = entries.get((u.key, u.lang))
        if current is not None and current.get("engine") == render.RECORDING_ENGINE:
            del entries[(u.key, u.lang)]
        if isinstance(replaced, dict) and isinstance(replaced.get("file"), str) \
                and (audio_dir / replaced["file"]).is_file():
            entries[(u.key, u.lang)] = replaced
            outcome = "restored"
        path.unlink()
        with suppress(FileNotFoundError):
            meta_path(recordings_dir, u).unlink()
        render.write_manifest(audio_dir, entries.values())
    refresh(library)
    log.info("the person's recording of %s [%s] is removed (%s)", u.key, u.lang, outcome)
    return outcome


def refresh(library: AudioLibrary | None) -> None:
    """This worker's line reads the new manifest at its next prompt (the others within
    audio.RECHECK_SECONDS)."""
    if library is not None:
        library._checked = 0.0  # noqa: SLF001 - the library's own re-check, made due now
        library.version()


# --- bulk import ---------------------------------------------------------------------------


def files_of(name: str, data: bytes) -> Iterator[tuple[str, bytes]]:
    """(name, bytes) of each file in an upload: a zip's members (not folders, hidden files
    or macOS's resource forks), or the file itself. StudioError for a zip too big unpacked."""
    if not zipfile.is_zipfile(io.BytesIO(data)):
        yield name, data
        return
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        members = [m for m in archive.infolist() if not m.is_dir()]
        if sum(m.file_size for m in members) > MAX_IMPORT_BYTES:
            raise StudioError("voice.error.too_big", mb=str(MAX_IMPORT_BYTES // (1024 * 1024)))
        for member in members:
            base = member.filename.replace("\\", "/").rsplit("/", 1)[-1]
            if not base or base.startswith(".") or "__MACOSX/" in member.filename:
                continue
            yield base, archive.read(member)


def target_of(name: str, by_number: dict[int, str], keys: set[str]) -> str | None:
    """The key a file is for, from its name: `<key>.<ext>`, or the script number, alone or
    first ('0042.wav', '42 greeting.m4a', '42-greeting.mp3')."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    stem = base.rsplit(".", 1)[0] if "." in base else base
    if stem in keys:
        return stem
    digits = ""
    for char in stem:
        if not char.isascii() or not char.isdigit():
            break
        digits += char
    rest = stem[len(digits):]
    if digits and (not rest or rest[0] in " -_."):
        return by_number.get(int(digits))
    return None


@dataclass
class Imported:
    stored: list[tuple[str, str]]  # (file name, key)
    skipped: list[tuple[str, str, dict[str, str]]]  # (file name, message key, its values)


def import_files(uploads: Iterable[tuple[str, bytes]], book: PromptBook, lang: str,
                 audio_dir: Path, recordings_dir: Path, *, by: str,
                 library: AudioLibrary | None = None) -> Imported:
    """Store every file named by a key or a script number; the others are skipped, each
    with the reason (one bad file does not stop the rest)."""
    by_number = {n: k for k, n in numbers(book).items()}
    keys = {k for k in by_number.values() if book.has(k, lang)}
    result = Imported([], [])
    for upload_name, data in uploads:
        try:
            members = list(files_of(upload_name, data))
        except (StudioError, zipfile.BadZipFile) as exc:
            reason, values = (exc.key, exc.values) if isinstance(exc, StudioError) \
                else ("voice.error.not_audio", {})
            result.skipped.append((upload_name, reason, values))
            continue
        for name, content in members:
            found = target_of(name, by_number, keys)
            if found is None or found not in keys:
                result.skipped.append((name, "voice.import.unnamed", {}))
                continue
            try:
                store(Utterance(found, lang, book.text(found, lang)), content, audio_dir,
                      recordings_dir, by=by, via="import", library=library)
            except StudioError as exc:
                result.skipped.append((name, exc.key, exc.values))
                continue
            result.stored.append((name, found))
    return result


def counts(lines: Iterable[Line]) -> dict[str, int]:
    """How many utterances have each source."""
    found: dict[str, int] = {}
    for line in lines:
        found[line.source] = found.get(line.source, 0) + 1
    return found

