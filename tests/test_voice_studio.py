"""The voice studio's pages (/admin/voice): an upload in each accepted format becomes the
prompt's 8 kHz mono mu-law audio and the next call through the simulator plays it; a file
that is not audio is refused and changes nothing; replacing and removing a recording; the
bulk import; the recording script; who may use it. Test audio is made with the project's
ffmpeg; recordings go to a temporary folder (IVR_RECORDINGS), never into the repository."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import zipfile

import pytest

from ivr import create_app, render, studio
from ivr.admin import accounts
from tests.studio_support import (
    FORMATS,
    fresh,
    greeting_played,
    manifest,
    settings_for,
    text_of,
    tone,
)
from tests.support import PASSWORD, csrf_of


def log_in(client, username: str = "admin", password: str = PASSWORD):
    token = csrf_of(client.get("/admin/login").get_data(as_text=True))
    return client.post("/admin/login", data={"csrf": token, "username": username,
                                             "password": password})


@pytest.fixture(scope="module")
def shared_app(tmp_path_factory):
    """One line for the module (its catalogue is read once); each test gets empty audio and
    recordings folders (`studio_app`)."""
    return create_app(settings_for(tmp_path_factory.mktemp("studio")))


@pytest.fixture
def studio_app(shared_app):
    fresh(shared_app)
    return shared_app


@pytest.fixture
def tmp_path(studio_app):
    """This module's tests' folder is the line's: recordings/ and audio/ are in it."""
    return studio_app.extensions["ivr"].settings.audio_dir.parent


@pytest.fixture(scope="module")
def signed_in(shared_app):
    client = shared_app.test_client()
    assert log_in(client, username="admin").status_code == 302
    return client


@pytest.fixture
def admin(signed_in, studio_app):
    return signed_in


def csrf(client) -> str:
    with client.session_transaction() as session:
        return session["csrf"]


def upload(client, key: str, data: bytes, name: str, lang: str = "km", via: str = "upload"):
    return client.post(f"/admin/voice/{lang}/{key}", data={
        "csrf": csrf(client), "via": via, "audio": (io.BytesIO(data), name)},
        content_type="multipart/form-data")


def audit_actions(app) -> list[tuple[str, str, str]]:
    conn = app.extensions["ivr"].store.db.conn
    return [tuple(r) for r in conn.execute(
        "SELECT user, action, target FROM audit_log WHERE action LIKE 'voice.%' AND id > ? "
        "ORDER BY id", [app.config.get("audit_mark", 0)])]


@pytest.mark.parametrize("ext", list(FORMATS))
def test_an_upload_in_each_format_is_heard_on_the_next_call(studio_app, admin, tmp_path, ext):
    reply = upload(admin, "greeting", tone(tmp_path, ext), f"take.{ext}")
    assert reply.status_code == 302, reply.get_data(as_text=True)
    stored = tmp_path / "recordings" / "km" / "greeting.wav"
    info = render.wav_info(stored)
    assert (info.format_tag, info.channels, info.rate, info.bits) == (7, 1, 8000, 8)  # mu-law
    assert 1200 <= info.duration_ms <= 1600  # the silence around the tone is trimmed
    entry = manifest(studio_app)[("greeting", "km")]
    assert entry["engine"] == "recording" and entry["text"] == text_of(studio_app, "greeting")
    assert greeting_played(studio_app) == entry["file"]
    played = studio_app.extensions["ivr"].settings.audio_dir / entry["file"]
    assert played.read_bytes() == stored.read_bytes()
    assert audit_actions(studio_app) == [("admin", "voice.record", "km/greeting")]
    page = admin.get(reply.headers["Location"]).get_data(as_text=True)
    assert "សារលេខ 1 ត្រូវបានថតហើយ" in page  # the flash, in Khmer


@pytest.mark.parametrize("name, data", [
    ("notes.wav", "សួស្តី this is text, not audio".encode()),
    ("playlist.m4a", b"#EXTM3U\n#EXTINF:1,\nfile:///etc/passwd\n"),  # never followed
    ("picture.mp3", bytes.fromhex("89504e470d0a1a0a") + b"\0" * 64),
    ("broken.wav", b"RIFF\x24\0\0\0WAVEfmt " + b"\0" * 40),  # looks like WAV, is not audio
    ("empty.ogg", b""),
])
def test_a_file_that_is_not_audio_is_refused_and_changes_nothing(studio_app, admin, tmp_path,
                                                                  name, data):
    before = manifest(studio_app)
    reply = upload(admin, "greeting", data, name)
    assert reply.status_code == 400
    page = reply.get_data(as_text=True)
    assert "គ្មានអ្វីត្រូវបានផ្លាស់ប្តូរទេ" in page or "ឯកសារនេះទទេ" in page
    assert not (tmp_path / "recordings" / "km" / "greeting.wav").exists()
    assert manifest(studio_app) == before
    assert audit_actions(studio_app)[-1][1] == "voice.refused"


def test_a_folder_that_cannot_be_written_is_a_503_that_says_so(studio_app, admin, tmp_path,
                                                                monkeypatch):
    def refuse(path, data):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(render, "write_atomic", refuse)
    reply = upload(admin, "greeting", tone(tmp_path, "wav"), "a.wav")
    assert reply.status_code == 503
    assert "មិនអាចសរសេរចូលថតឯកសាររបស់វាបាន" in reply.get_data(as_text=True)
    assert manifest(studio_app) == {}


def test_silence_is_refused_with_its_own_reason(studio_app, admin, tmp_path):
    path = tmp_path / "silence.wav"
    subprocess.run([render.FFMPEG, "-loglevel", "error", "-f", "lavfi", "-i",
                    "anullsrc=r=8000:cl=mono", "-t", "1", str(path)], check=True)
    reply = upload(admin, "greeting", path.read_bytes(), "silence.wav", via="browser")
    assert reply.status_code == 400
    assert "ការថតនេះគ្មានសំឡេងទេ" in reply.get_data(as_text=True)


def test_replacing_keeps_what_it_replaced_until_the_recording_is_removed(studio_app, admin,
                                                                         tmp_path):
    line = studio_app.extensions["ivr"]
    audio_dir = line.settings.audio_dir
    greeting = [u for u in line.book.utterances() if (u.key, u.lang) == ("greeting", "km")]
    render.render(greeting, audio_dir, render.PlaceholderEngine())  # an engine's audio first
    engine_entry = manifest(studio_app)[("greeting", "km")]
    assert engine_entry["engine"] == "placeholder"

    assert upload(admin, "greeting", tone(tmp_path, "wav", hz=440), "a.wav").status_code == 302
    first = manifest(studio_app)[("greeting", "km")]["file"]
    assert upload(admin, "greeting", tone(tmp_path, "mp3", hz=660), "b.mp3").status_code == 302
    second = manifest(studio_app)[("greeting", "km")]["file"]
    assert second != first and greeting_played(studio_app) == second
    page = admin.get("/admin/voice?language=km&q=greeting").get_data(as_text=True)
    assert 'data-key="greeting" data-number="1" data-source="person"' in page

    # `ivr render` after the studio: the recording is what it would have made; nothing moves
    summary = render.render(greeting, audio_dir, render.PlaceholderEngine(),
                            recordings_dir=line.settings.recordings_dir)
    assert summary.unchanged == 1 and not summary.rendered
    assert manifest(studio_app)[("greeting", "km")]["file"] == second

    token = csrf_of(page)
    reply = admin.post("/admin/voice/km/greeting/remove", data={"csrf": token})
    assert reply.status_code == 302
    assert manifest(studio_app)[("greeting", "km")] == engine_entry  # the engine's, again
    assert greeting_played(studio_app) == engine_entry["file"]
    assert not (tmp_path / "recordings" / "km" / "greeting.wav").exists()
    assert [a for _, a, _ in audit_actions(studio_app)] == [
        "voice.record", "voice.replace", "voice.remove"]
    assert admin.post("/admin/voice/km/greeting/remove", data={"csrf": token}
                      ).status_code == 404  # nothing left to remove


def test_a_stale_recording_is_shown_as_stale(studio_app, admin, tmp_path):
    assert upload(admin, "greeting", tone(tmp_path, "wav"), "a.wav").status_code == 302
    meta = tmp_path / "recordings" / "km" / "greeting.json"
    data = json.loads(meta.read_text())
    meta.write_text(json.dumps({**data, "text": "an older wording"}))  # the text changed since
    page = admin.get("/admin/voice?language=km&show=stale").get_data(as_text=True)
    assert 'data-key="greeting" data-number="1" data-source="stale"' in page


def test_bulk_import_of_a_zip_named_by_number_and_key(studio_app, admin, tmp_path):
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("takes/0001-greeting.wav", tone(tmp_path, "wav"))
        z.writestr("takes/menu.main.intro.m4a", tone(tmp_path, "m4a"))
        z.writestr("takes/99999.wav", tone(tmp_path, "wav"))  # no such number
        z.writestr("takes/readme.txt", b"read me")
        z.writestr("__MACOSX/takes/._0001-greeting.wav", b"\0\5\26\7")
    ogg = tone(tmp_path, "ogg")
    token = csrf(admin)
    reply = admin.post("/admin/voice/import", data={
        "csrf": token, "language": "en",
        "files": [(io.BytesIO(archive.getvalue()), "takes.zip"), (io.BytesIO(ogg), "3.ogg")]},
        content_type="multipart/form-data")
    assert reply.status_code == 302
    entries = manifest(studio_app)
    assert {k for k, e in entries.items() if e["engine"] == "recording"} == {
        ("greeting", "en"), ("menu.main.intro", "en")}
    numbers = studio.numbers(studio_app.extensions["ivr"].book)
    assert numbers["menu.main.intro"] == 3  # so "3.ogg" is menu.main.intro too (replaced)
    page = admin.get(reply.headers["Location"]).get_data(as_text=True)
    assert "បាននាំចូលការថតចំនួន 3" in page and "បានរំលងឯកសារចំនួន 2" in page
    assert "99999.wav" in page and "readme.txt" in page
    assert audit_actions(studio_app)[-1][1] == "voice.import"


def test_the_recording_script_and_its_csv(studio_app, admin, tmp_path):
    assert upload(admin, "greeting", tone(tmp_path, "wav"), "a.wav").status_code == 302
    page = admin.get("/admin/voice/script?language=km").get_data(as_text=True)
    assert 'data-key="greeting"' not in page  # recorded: no longer to read
    assert 'data-key="language.offer"' in page and text_of(studio_app, "language.offer") in page
    reply = admin.get("/admin/voice/script.csv?language=en&all=1")
    assert reply.headers["Content-Disposition"].startswith("attachment")
    rows = list(csv.reader(io.StringIO(reply.get_data(as_text=True).lstrip("\ufeff"))))
    assert rows[1] == ["1", "greeting", text_of(studio_app, "greeting", "en"), "គ្មានសំឡេង"]
    book = studio_app.extensions["ivr"].book
    english = [k for k in studio.numbers(book) if book.has(k, "en")]  # some words are km only
    assert [row[1] for row in rows[1:]] == english
    numbers = [int(row[0]) for row in rows[1:]]
    assert numbers == sorted(set(numbers))  # in script order, each number once
    todo = admin.get("/admin/voice/script.csv?language=km").get_data(as_text=True)
    assert "\n1,greeting," not in todo and "\n2,language.offer," in todo


def test_only_administrators_record_and_every_form_needs_its_token(studio_app, admin,
                                                                   tmp_path):
    line = studio_app.extensions["ivr"]
    offices = [o.id for o in line.catalog.offices]
    accounts.add_user(line.store.db.conn, "analyst", "analyst", [], "analyst-password",
                      offices)
    other = studio_app.test_client()
    assert log_in(other, username="analyst", password="analyst-password").status_code == 302
    assert other.get("/admin/voice").status_code == 403
    assert other.get("/admin/voice/script").status_code == 403
    reply = admin.post("/admin/voice/km/greeting", data={
        "audio": (io.BytesIO(tone(tmp_path, "wav")), "a.wav")},
        content_type="multipart/form-data")
    assert reply.status_code == 400  # no CSRF token
    assert not (tmp_path / "recordings" / "km" / "greeting.wav").exists()
    assert admin.get("/admin/voice?page=999").status_code == 404
    assert upload(admin, "no.such.prompt", tone(tmp_path, "wav"), "a.wav").status_code == 404
    assert 'href="/admin/voice"' in admin.get("/admin/scorecard").get_data(as_text=True)


def test_a_prompt_heard_from_its_parts_shows_the_parts_source(studio_app, admin):
    line = studio_app.extensions["ivr"]
    book = {(u.key, u.lang): u for u in line.book.utterances()}
    whole = next(u for u in line.book.utterances() if u.lang == "km" and u.parts)
    parts = [book[(key, "km")] for key in whole.parts]
    render.render(parts, line.settings.audio_dir, render.PlaceholderEngine())  # parts only
    number = studio.numbers(line.book)[whole.key]
    page = admin.get(f"/admin/voice?language=km&q={number}").get_data(as_text=True)
    assert f'data-key="{whole.key}" data-number="{number}" data-source="placeholder"' in page
    assert "និយាយដោយភ្ជាប់ផ្នែកតូចៗរបស់វា" in page  # said from its parts
