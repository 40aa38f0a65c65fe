"""The voice studio's pages: every utterance per language with its script number, text and
the source of its audio, a player; recording in the browser (MediaRecorder) or uploading a
file, replacing or removing a person's recording, a bulk import (a folder or a zip of files
named by key or script number) and the printable recording script (and its CSV).

Only administrators record (access.py: recording changes what every caller hears, so it is
the role that also manages accounts). Every recording stored, removed or imported is in the
audit log. The work is done by ivr.studio; this module is the pages around it."""

from __future__ import annotations

import csv
import io
import logging
from typing import Any

from flask import Response, flash, jsonify, redirect, request, url_for

from ivr import studio
from ivr.admin.web import (
    Table,
    audit,
    bp,
    csv_cell,
    deny,
    line,
    page_number,
    paginate,
    render,
    t,
    today,
    user,
)

log = logging.getLogger("ivr.admin")
PAGE_SIZE = 50
SOURCES = ("person", "engine", "placeholder", "stale", "missing")
SHOWS = ("all", "todo", *SOURCES)
UPLOAD_ENDPOINTS = {"admin.voice_upload": studio.MAX_FILE_BYTES + 1024 * 1024,
                    "admin.voice_import": studio.MAX_IMPORT_BYTES + 1024 * 1024}


@bp.before_app_request
def _room_for_audio() -> None:
    """Audio is bigger than the webhooks' 64 KB limit: these two forms may send more (set
    before the admin guard reads the form for its CSRF token)."""
    limit = UPLOAD_ENDPOINTS.get(request.endpoint or "")
    if limit is not None:
        request.max_content_length = limit


def folders() -> tuple[Any, Any]:
    settings = line().settings
    return settings.audio_dir, settings.recordings_dir


def language() -> str:
    """The language whose prompts are shown (?language=; the line's first by default)."""
    languages = line().catalog.languages
    chosen = request.values.get("language", "")
    return chosen if chosen in languages else languages[0]


def script_lines(lang: str) -> list[studio.Line]:
    audio_dir, recordings_dir = folders()
    return studio.script(line().book, lang, audio_dir, recordings_dir)


def target(lang: str, key: str) -> studio.Line:
    """The utterance a form names; 404 when the language or key does not exist."""
    if lang not in line().catalog.languages:
        deny(404, "voice.error.no_prompt")
    audio_dir, recordings_dir = folders()
    found = studio.find_line(line().book, lang, audio_dir, recordings_dir, key=key)
    if found is None:
        deny(404, "voice.error.no_prompt")
    assert found is not None
    return found


def back(lang: str) -> Response:
    """To the studio page the form was sent from (its filters), else the language's page."""
    query: dict[str, Any] = {k: v for k, v in request.form.items()
                             if k in ("show", "q", "page") and v}
    target = url_for("admin.voice", language=lang, **query)
    if request.headers.get("Accept") == "application/json":  # the page's recorder (voice.js)
        return jsonify(next=target)  # it goes there itself: a followed redirect eats the flash
    return redirect(target)  # type: ignore[return-value]


@bp.get("/voice")
def voice() -> str:
    lang = language()
    show = request.args.get("show", "all")
    show = show if show in SHOWS else "all"
    query = request.args.get("q", "").strip()[:100]
    lines = script_lines(lang)
    totals = studio.counts(lines)
    shown = [x for x in lines
             if (show == "all" or (show == "todo" and x.to_record) or x.source == show)
             and (not query or query.lower() in x.key.lower() or query in x.text
                  or query == str(x.number))]
    page = page_number(request.args)
    rows: list[Any] = shown[(page - 1) * PAGE_SIZE:page * PAGE_SIZE]  # Lines, not dicts
    table = Table("voice", t("voice.title"), [], rows, total=len(shown))
    paginate(table, page, PAGE_SIZE)
    return render("admin/voice.html", table=table, lines=table.rows, totals=totals,
                  total=len(lines), sources=SOURCES, shows=SHOWS, show=show, query=query,
                  language=lang, languages=line().catalog.languages, page_no=page,
                  max_mb=studio.MAX_FILE_BYTES // (1024 * 1024),
                  max_seconds=studio.MAX_SECONDS)


@bp.post("/voice/<lang>/<key>")
def voice_upload(lang: str, key: str) -> Response:
    """A recording from the browser's microphone or an uploaded file; a refused one changes
    nothing and says why (400)."""
    found = target(lang, key)
    upload = request.files.get("audio")
    data = upload.read() if upload is not None else b""
    via = "browser" if request.form.get("via") == "browser" else "upload"
    audio_dir, recordings_dir = folders()
    try:
        duration_ms = studio.store(found.utterance, data, audio_dir, recordings_dir,
                                   by=user().name, via=via, library=line().audio)
    except studio.StudioError as exc:
        audit("voice.refused", f"{lang}/{key}", f"{via}: {exc.key}")
        deny(503 if exc.key == "voice.error.storage" else 400, exc.key, **exc.values)
    action = "voice.replace" if found.recorded else "voice.record"
    audit(action, f"{lang}/{key}", f"{via}, {duration_ms / 1000:.1f} s, replaced "
          f"{found.source}{' ' + found.engine if found.engine else ''}")
    flash(t("voice.saved", number=str(found.number), seconds=f"{duration_ms / 1000:.1f}"))
    return back(lang)


@bp.post("/voice/<lang>/<key>/remove")
def voice_remove(lang: str, key: str) -> Response:
    found = target(lang, key)
    audio_dir, recordings_dir = folders()
    try:
        outcome = studio.remove(found.utterance, audio_dir, recordings_dir, line().audio)
    except OSError:
        log.exception("could not remove the recording of %s [%s]", key, lang)
        deny(503, "voice.error.storage")
    if outcome == "none":
        deny(404, "voice.error.no_recording")
    audit("voice.remove", f"{lang}/{key}", outcome)
    flash(t(f"voice.removed.{outcome}", number=str(found.number)))
    return back(lang)


@bp.post("/voice/import")
def voice_import() -> Response:
    """Files named by key or script number: one or many (a folder), or zips of them."""
    lang = language()
    uploads = [(f.filename or "", f.read()) for f in request.files.getlist("files")
               if f.filename]
    if not uploads:
        deny(400, "voice.error.no_files")
    audio_dir, recordings_dir = folders()
    result = studio.import_files(uploads, line().book, lang, audio_dir, recordings_dir,
                                 by=user().name, library=line().audio)
    audit("voice.import", lang, f"{len(result.stored)} stored, {len(result.skipped)} skipped"
          + (": " + ", ".join(key for _, key in result.stored[:20]) if result.stored else ""))
    flash(t("voice.import.done", stored=str(len(result.stored)),
            skipped=str(len(result.skipped))))
    for name, key, values in result.skipped[:20]:
        flash(t("voice.import.skipped", name=name[:80], reason=t(key, **values)))
    return back(lang)


def script_rows(lang: str) -> tuple[list[studio.Line], bool]:
    everything = request.args.get("all") == "1"
    lines = [x for x in script_lines(lang) if everything or x.to_record]
    return lines, everything


@bp.get("/voice/script")
def voice_script() -> str:
    lang = language()
    lines, everything = script_rows(lang)
    return render("admin/voice_script.html", lines=lines, everything=everything,
                  language=lang, languages=line().catalog.languages)


@bp.get("/voice/script.csv")
def voice_script_csv() -> Response:
    lang = language()
    lines, everything = script_rows(lang)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([t("voice.col.number"), t("voice.col.key"), t("voice.col.text"),
                     t("voice.col.source")])
    for x in lines:
        writer.writerow([x.number, x.key, csv_cell(x.text), t(f"voice.source.{x.source}")])
    audit("export", f"voice/script-{lang}.csv", f"{len(lines)} rows"
          + ("; all" if everything else ""))
    filename = f"recording-script-{lang}-{today():%Y%m%d}.csv"
    return Response("\ufeff" + out.getvalue(), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})

