"""Serving rendered prompts to Twilio: cacheable forever, because file names are content hashes.

Only regular files inside the audio folder are served: never through a symbolic link, which
could point anywhere the line's user can read (its database, its keys)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from flask import Blueprint, Response, abort, current_app, send_from_directory
from werkzeug.security import safe_join

bp = Blueprint("audio", __name__)
TYPES = {".wav": "audio/wav", ".mp3": "audio/mpeg"}
ONE_YEAR = 365 * 24 * 3600


@bp.route("/audio/<path:filename>", methods=["GET", "HEAD"])
def file(filename: str) -> Response:
    suffix = filename[filename.rfind("."):].lower() if "." in filename else ""
    if suffix not in TYPES:
        abort(404)
    audio_dir = current_app.extensions["ivr"].settings.audio_dir.resolve()
    if not _plain_file(audio_dir, filename):
        abort(404)
    response = send_from_directory(audio_dir, filename, mimetype=TYPES[suffix],
                                   conditional=True, etag=True, max_age=ONE_YEAR)
    response.cache_control.public = True
    response.cache_control.immutable = True
    return response


def _plain_file(folder: Path, filename: str) -> bool:
    """`filename` names a regular file below `folder`, and no part of the way there is a
    symbolic link (the folder itself may be one: it is resolved first)."""
    joined = safe_join(str(folder), filename)
    if joined is None:
        return False
    current = folder
    mode = 0
    for part in Path(joined).relative_to(folder).parts:
        current = current / part
        try:
            mode = os.lstat(current).st_mode
        except OSError:
            return False
        if stat.S_ISLNK(mode):
            return False
    return stat.S_ISREG(mode)
