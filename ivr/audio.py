"""Runtime lookup of rendered prompts: key + language -> audio file, from audio/manifest.json.

The manifest is re-read when it changes on disk, so a re-render reaches the next call
without a restart. An entry is used only while its text equals the current prompt text:
stale audio (say, an old fee) is never played.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)
MANIFEST = "manifest.json"
RECHECK_SECONDS = 1.0


@dataclass(frozen=True)
class AudioEntry:
    key: str
    lang: str
    text: str
    file: str  # relative to the audio directory
    duration_ms: int
    engine: str


def read_manifest(audio_dir: Path) -> dict[tuple[str, str], AudioEntry]:
    """Entries by (key, lang); an absent or unreadable manifest is empty, not an error."""
    path = Path(audio_dir) / MANIFEST
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        prompts = data["prompts"]
        return {
            (p["key"], p["lang"]): AudioEntry(
                key=p["key"], lang=p["lang"], text=p["text"], file=p["file"],
                duration_ms=int(p.get("duration_ms", 0)), engine=p.get("engine", "?"),
            )
            for p in prompts
        }
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.error("audio manifest %s is unreadable (%s); speaking prompts as text", path, exc)
        return {}


class AudioLibrary:
    """The rendered prompts of one audio directory, reloaded when the manifest changes."""

    def __init__(self, audio_dir: Path):
        self.audio_dir = Path(audio_dir)
        self._entries: dict[tuple[str, str], AudioEntry] = {}
        self._stamp: tuple[int, int] | None = None
        self._checked = 0.0
        self._lock = threading.Lock()
        self._gaps_logged: set[tuple[str, str]] = set()
        self._reload()

    def _reload(self) -> None:
        try:
            st = os.stat(self.audio_dir / MANIFEST)
            stamp = (st.st_mtime_ns, st.st_size)
        except OSError:
            stamp = None
        if stamp != self._stamp:
            self._entries = read_manifest(self.audio_dir)
            self._stamp = stamp

    def version(self) -> tuple[int, int] | None:
        """The manifest's identity (re-checked at most once a second): what was rendered
        from one version is valid until the next."""
        now = time.monotonic()
        if now - self._checked > RECHECK_SECONDS:
            with self._lock:
                self._checked = now
                self._reload()
        return self._stamp

    def find(self, key: str, lang: str, text: str) -> AudioEntry | None:
        """The audio for this prompt, if rendered from exactly this text and present."""
        self.version()
        entry = self._entries.get((key, lang))
        if entry is not None and entry.text == text:
            return entry
        if not self._entries:  # nothing rendered at all: say so once, not once per prompt
            if ("*", "*") not in self._gaps_logged:
                self._gaps_logged.add(("*", "*"))
                log.warning("no rendered audio in %s: every prompt is spoken as English text; "
                            "run `ivr render`", self.audio_dir)
        elif (key, lang) not in self._gaps_logged:
            self._gaps_logged.add((key, lang))
            reason = "stale (text changed)" if entry else "not rendered"
            log.warning("no audio for prompt %s [%s]: %s; run `ivr render`", key, lang, reason)
        return None
