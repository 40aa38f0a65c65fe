"""Serving rendered prompts to Twilio: cacheable forever, because file names are content hashes."""

from __future__ import annotations

from flask import Blueprint, Response, abort, current_app, send_from_directory

bp = Blueprint("audio", __name__)
TYPES = {".wav": "audio/wav", ".mp3": "audio/mpeg"}
ONE_YEAR = 365 * 24 * 3600


@bp.route("/audio/<path:filename>", methods=["GET", "HEAD"])
def file(filename: str) -> Response:
    suffix = filename[filename.rfind("."):].lower() if "." in filename else ""
    if suffix not in TYPES:
        abort(404)
    audio_dir = current_app.extensions["ivr"].settings.audio_dir.resolve()
    response = send_from_directory(audio_dir, filename, mimetype=TYPES[suffix],
                                   conditional=True, etag=True, max_age=ONE_YEAR)
    response.cache_control.public = True
    response.cache_control.immutable = True
    return response
