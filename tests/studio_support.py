"""What the voice studio's tests share: test audio made with the project's ffmpeg, a line
whose recordings go to a temporary folder, and what the next call plays."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from ivr import render, studio
from ivr.config import Settings
from tests.caller import Caller
from tests.support import PASSWORD, ROOT, TOKEN, Twilio

FORMATS = {  # extension -> ffmpeg output options (browsers record ogg or webm)
    "wav": [], "mp3": [], "m4a": [], "ogg": [], "webm": ["-ar", "48000"],
}


_TONES: dict[tuple[str, float, int], bytes] = {}


def tone(folder: Path, ext: str, seconds: float = 1.2, hz: int = 440) -> bytes:
    """A tone with silence around it, in the format `ext`, made by the project's ffmpeg
    (once per kind for the whole run)."""
    if (ext, seconds, hz) not in _TONES:
        path = folder / f"tone-{hz}-{seconds}.{ext}"
        subprocess.run([render.FFMPEG, "-hide_banner", "-loglevel", "error", "-y", "-f",
                        "lavfi", "-i", f"sine=frequency={hz}:duration={seconds}", "-af",
                        "adelay=400,apad=pad_dur=0.5", "-ac", "2", *FORMATS[ext], str(path)],
                       check=True)
        _TONES[(ext, seconds, hz)] = path.read_bytes()
    return _TONES[(ext, seconds, hz)]


def settings_for(tmp_path: Path, **changes) -> Settings:
    return Settings(auth_token=TOKEN, catalog=ROOT / "catalog.yaml", prompts=ROOT / "prompts",
                    audio_dir=tmp_path / "audio", database=tmp_path / "ivr.db",
                    caller_key=b"test-caller-key", recordings=tmp_path / "recordings",
                    admin_password=PASSWORD, **changes)


def fresh(app) -> Path:
    """Empty the line's audio and recordings folders; returns the folder holding them."""
    settings = app.extensions["ivr"].settings
    for path in (settings.audio_dir, settings.recordings_dir):
        shutil.rmtree(path, ignore_errors=True)
    studio.refresh(app.extensions["ivr"].audio)
    conn = app.extensions["ivr"].store.db.conn
    app.config["audit_mark"] = conn.execute("SELECT coalesce(max(id), 0) FROM audit_log"
                                            ).fetchone()[0]
    return settings.audio_dir.parent


def text_of(app, key: str, lang: str = "km") -> str:
    return app.extensions["ivr"].book.text(key, lang)


def manifest(app) -> dict:
    return render.read_manifest(app.extensions["ivr"].settings.audio_dir)


def greeting_played(app, carrier: str = "twilio") -> str:
    """The audio file the first prompt of a new call plays (through the simulator)."""
    caller = Caller(Twilio(app), carrier=carrier)
    caller.call = caller.sim.start()
    first = caller.transcript.steps[0].prompts[0]
    assert first.kind == "play", first
    assert first.text == text_of(app, "greeting")  # what the caller hears: that prompt
    return first.value.split("/audio/", 1)[1]
