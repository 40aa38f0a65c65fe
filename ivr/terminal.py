"""`ivr call` in a terminal: shows what the caller hears, plays it where a player exists,
and reads keys."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import click

from ivr.audio import read_manifest
from ivr.config import Settings
from ivr.simulate import GatherInfo, Transcript

PLAYERS = (["aplay", "-q"], ["paplay"], ["afplay"])


def prompt_texts(settings: Settings) -> Callable[[str], str | None]:
    """Audio URL -> the text that file says, from the manifest (read once per call)."""
    by_file = {entry.file: entry.text for entry in read_manifest(settings.audio_dir).values()}

    def text(url: str) -> str | None:
        path = urlsplit(url).path
        return by_file.get(path.split("/audio/", 1)[-1])

    return text


class TerminalPhone:
    """Prints each prompt (and plays its audio when it can), then asks for keys."""

    def __init__(self, audio_dir: Path, play_sound: bool):
        self.audio_dir = Path(audio_dir)
        self.player = next((cmd for cmd in PLAYERS if shutil.which(cmd[0])), None) \
            if play_sound else None

    def ask(self, gather: GatherInfo) -> str | None:
        for prompt in gather.prompts:
            click.echo(f"  > {prompt.text or prompt.value}")
            self._play(prompt.value if prompt.kind == "play" else "")
        how = "one key" if gather.num_digits == 1 else f"keys, then {gather.finish_on_key}"
        try:
            keys = click.prompt(f"[{how}; Enter = no input; q = hang up]", default="",
                                show_default=False)
        except (EOFError, click.Abort):
            return None
        if keys.strip().lower() == "q":
            return None
        return keys.strip().rstrip(gather.finish_on_key) if gather.num_digits != 1 else \
            keys.strip()

    def finish(self, transcript: Transcript) -> None:
        last = transcript.steps[-1] if transcript.steps else None
        if last is not None and last.gather is None:
            for prompt in last.prompts:
                click.echo(f"  > {prompt.text or prompt.value}")
        click.echo(f"(call ended by {transcript.ended_by} after {transcript.duration} s)")

    def _play(self, url: str) -> None:
        if not url or self.player is None:
            return
        file = self.audio_dir / urlsplit(url).path.split("/audio/", 1)[-1]
        if file.is_file():
            subprocess.run([*self.player, str(file)], check=False, timeout=120)
