"""Replies to cases, as callers hear them (main menu 5): an audio file recorded in the
browser or uploaded (WAV, MP3, M4A, Ogg or WebM), converted to what phones carry (8 kHz
mono mu-law WAV, loudness-normalised and trimmed, by the project's ffmpeg: ivr.render).

Where they live: `<database folder>/replies/<random>.wav`, readable by the line's user only,
never below `audio/` (which is served publicly). The carrier fetches a reply with a URL
that only this line can make and that expires: `/reply/<id>/<expires>/<signature>.wav`, an
HMAC of the reply's id and the expiry, keyed by a key derived from the caller key (so every
worker signs alike). The expiry is rounded to the hour, so within an hour the URL (and the
carrier's cache of it) stays the same; a URL copied from a carrier's log is dead hours
later. Nothing is served for a reply that does not exist, or whose file is gone.
"""

from __future__ import annotations

import hmac
import os
import secrets
import time
from pathlib import Path

from flask import Blueprint, Response, abort, current_app, send_file, url_for

bp = Blueprint("replies", __name__)
MAX_BYTES = 8 * 1024 * 1024  # an upload or a browser recording (a few minutes of speech)
FORMATS = ("wav", "mp3", "m4a", "ogg", "webm")
URL_HOURS = 3  # a reply's URL lives between 2 and 3 hours


class ReplyError(ValueError):
    """Audio that cannot be a reply; `key` names the page's message (translations)."""

    def __init__(self, key: str, detail: str = ""):
        super().__init__(f"{key}: {detail}" if detail else key)
        self.key = key


# the studio's refusals, in the case page's words
REFUSALS = {"voice.error.empty": "reply.error.empty",
            "voice.error.too_big": "reply.error.size",
            "voice.error.not_audio": "reply.error.format",
            "voice.error.silent": "reply.error.silent"}


def to_telephone_wav(data: bytes) -> tuple[bytes, int]:
    """Bytes of WAV, MP3, M4A, Ogg or WebM -> (8 kHz mono mu-law WAV bytes, duration in ms),
    converted as the voice studio converts a person's recording (`studio.telephone`)."""
    from ivr import studio  # pydub and the studio: only when converting

    if len(data) > MAX_BYTES:
        raise ReplyError("reply.error.size")
    try:
        return studio.telephone(data)
    except studio.StudioError as exc:
        raise ReplyError(REFUSALS.get(exc.key, "reply.error.decode")) from exc


def folder_of(database: Path) -> Path:
    return Path(database).parent / "replies"


def keep(folder: Path, wav: bytes) -> str:
    """Write a converted reply under a random name (owner-only); returns the name."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    name = f"{secrets.token_hex(16)}.wav"
    fd = os.open(folder / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, wav)
        os.fsync(fd)
    finally:
        os.close(fd)
    return name


def url_key(caller_key: bytes) -> bytes:
    return hmac.digest(caller_key, b"ivr reply audio URLs", "sha256")


def signature(key: bytes, reply_id: int, expires: int) -> str:
    return hmac.digest(key, f"{reply_id}:{expires}".encode(), "sha256").hex()[:32]


def audio_url(reply_id: int, moment: float | None = None) -> str:
    """The URL the carrier plays a reply from (in a request: absolute, as url_for makes)."""
    store = current_app.extensions["ivr"].store
    hour = int((time.time() if moment is None else moment) // 3600)
    expires = (hour + URL_HOURS) * 3600
    return url_for("replies.audio", reply_id=reply_id, expires=expires,
                   sig=signature(url_key(store.caller_key), reply_id, expires), _external=True)


@bp.get("/reply/<int:reply_id>/<int:expires>/<sig>.wav")
def audio(reply_id: int, expires: int, sig: str) -> Response:
    line = current_app.extensions["ivr"]
    wanted = signature(url_key(line.store.caller_key), reply_id, expires)
    if not hmac.compare_digest(wanted, sig) or expires < time.time():
        abort(404)
    row = line.store.db.execute("SELECT file FROM case_replies WHERE id = ? AND kind = "
                                "'recorded'", [reply_id]).fetchone()
    if row is None or not row[0] or "/" in row[0] or row[0].startswith("."):
        abort(404)
    path = folder_of(line.settings.database) / row[0]
    if not path.is_file() or path.is_symlink():
        abort(404)
    response = send_file(path, mimetype="audio/wav", conditional=True, etag=True,
                         max_age=max(0, int(expires - time.time())))
    response.cache_control.private = True
    return response
