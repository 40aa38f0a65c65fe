"""What the attack and fault test of issue 19 found besides the big four: development mode
from the environment, HEAD requests, forged log lines, world-readable files, symbolic links
in audio/, catalogue parsing inside a request, forwarding headers believed without a proxy,
secrets beside the database, one caller under several spellings of a number."""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import stat
import threading
import time

import pytest

from ivr import create_app
from ivr.config import Settings
from ivr.simulate import sign
from ivr.store import Store, caller_hash, e164
from tests.caller import Caller
from tests.support import (
    ROOT,
    TOKEN,
    Gunicorn,
    HttpTwilio,
    Twilio,
    editable_catalogue,
    raise_barber_fee,
    wait_until,
)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


# --- development mode only from `ivr serve` -------------------------------------------------


def test_development_mode_from_the_environment_does_not_start_a_server(tmp_path):
    """IVR_DEVELOPMENT=1 under gunicorn without a token used to start with the public
    development token (anyone could sign webhooks, /phone open): now nothing listens."""
    line = Gunicorn(tmp_path, env={"IVR_DEVELOPMENT": "1", "TWILIO_AUTH_TOKEN": ""},
                    wait=False)
    try:
        assert wait_until(lambda: not line.alive(), 60), "gunicorn is serving"
        assert line.process.returncode != 0
        assert "IVR_DEVELOPMENT is set" in line.log()
    finally:
        line.stop()


def test_development_settings_come_only_with_ivr_serve():
    env = {"IVR_DEVELOPMENT": "1"}
    with pytest.raises(RuntimeError, match="IVR_DEVELOPMENT is set"):
        Settings.from_env(env)
    assert Settings.from_env(env, development=True).development  # what `ivr serve` does
    assert not Settings.from_env({"IVR_DEVELOPMENT": "0"}).development


# --- requests that are not what carriers send -----------------------------------------------


def test_a_head_request_signed_over_its_url_alone_changes_nothing(app, settings):
    """A HEAD's form was read as the request's values without being covered by the
    signature (which, for a non-POST, is the URL's alone)."""
    call = Caller(Twilio(app)).start("2").press("2").press("1").press("0105")
    call.press("1").press("2").press("1")  # on; a barber shop licence: the first question
    url = call.action()
    headers = {"X-Twilio-Signature": sign(TOKEN, url, {})}
    forged = app.test_client().open(url, method="HEAD", headers=headers,
                                    data={"CallSid": call.sid, "Digits": "1"})
    assert forged.status_code == 405
    with sqlite3.connect(settings.database) as conn:
        assert conn.execute("SELECT count(*) FROM answers").fetchone() == (0,)
    call.press("4")  # the caller's own answer still counts
    with sqlite3.connect(settings.database) as conn:
        assert conn.execute("SELECT question, value FROM answers").fetchall() == [
            ("quality", "4")]


def test_an_unsigned_request_cannot_write_lines_into_the_log(app, caplog):
    forged = "2026-12-02 03:00:00,000 CRITICAL ivr.admin: admin signed in from 10.0.0.1"
    caplog.set_level(logging.INFO)
    reply = app.test_client().post("/voice/km%0A" + forged.replace(" ", "%20") + "/main",
                                   data={"Digits": "1"})
    assert reply.status_code == 403
    refusal = [r.getMessage() for r in caplog.records if "rejected a request" in r.getMessage()]
    assert len(refusal) == 1
    assert "\n" not in refusal[0] and "km\\n2026-12-02" in refusal[0]


# --- files: private, never through a symbolic link ------------------------------------------


def test_the_database_its_wal_and_the_spool_are_private_whatever_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        store = Store(tmp_path / "new" / "ivr.db", b"k", busy_timeout_ms=100)
        store.record_step("CA1", "+85512345678", "en", "main", None, "call")
        blocker = sqlite3.connect(store.path, isolation_level=None)
        blocker.execute("BEGIN EXCLUSIVE")
        store.save_answer("CA1", "+85512345678", "ou-chrov", "x", "en", "quality", "4")
        spooled = store.spool_path
        assert spooled.exists() and mode(spooled) == 0o600
        blocker.execute("ROLLBACK")
        blocker.close()
        assert store.wait_for_spool()
        files = [store.path, *store.path.parent.glob("ivr.db*")]
        assert {p.name for p in files} >= {"ivr.db", "ivr.db-wal", "ivr.db-shm",
                                           "ivr.db.migrate.lock", "ivr.db.spool.lock"}
        assert {p.name: mode(p) & 0o077 for p in files} == {p.name: 0 for p in files}
        assert mode(store.path.parent) == 0o700
        store.close()
    finally:
        os.umask(old)


def test_an_existing_world_readable_database_is_made_private(tmp_path):
    database = tmp_path / "ivr.db"
    Store(database, b"k").close()
    os.chmod(database, 0o644)
    Store(database, b"k").close()
    assert mode(database) == 0o640


@pytest.fixture
def audio(settings):
    """A rendered prompt, a secret beside the line, and links from audio/ to the secret."""
    (settings.audio_dir / "km").mkdir(parents=True)
    (settings.audio_dir / "km" / "real.wav").write_bytes(b"RIFF" + b"\0" * 40)
    secret = settings.database.parent / "caller.key.wav"
    secret.write_text("the caller key")
    (settings.audio_dir / "km" / "key.wav").symlink_to(secret)
    (settings.audio_dir / "linked").symlink_to(settings.database.parent)
    return settings


def test_symbolic_links_in_the_audio_folder_are_not_followed(audio):
    client = create_app(audio).test_client()
    assert client.get("/audio/km/real.wav").status_code == 200
    assert client.get("/audio/km/key.wav").status_code == 404
    assert client.get("/audio/linked/caller.key.wav").status_code == 404


def test_an_audio_folder_that_is_itself_a_link_is_served(audio, tmp_path):
    from dataclasses import replace

    link = tmp_path / "audio-link"
    link.symlink_to(audio.audio_dir)
    client = create_app(replace(audio, audio_dir=link)).test_client()
    assert client.get("/audio/km/real.wav").status_code == 200
    assert client.get("/audio/km/key.wav").status_code == 404


# --- a catalogue edit is read beside the calls, not inside one ------------------------------


def test_a_catalogue_edit_is_read_beside_the_calls(settings, tmp_path, monkeypatch):
    """While a (large) edited catalogue is being read, callers are answered from the last
    one; the new one reaches the calls after that."""
    app, path, original = editable_catalogue(settings, tmp_path, monkeypatch)
    twilio = Twilio(app)
    live = app.extensions["ivr"].live
    load, reading, finish = live._load, threading.Event(), threading.Event()

    def slow_load():  # a catalogue that takes as long to read as the test says
        reading.set()
        finish.wait(10)
        return load()

    monkeypatch.setattr(live, "_load", slow_load)

    def barber_fee() -> str:
        return Caller(twilio).start("2").press("1").press("2").press("1").heard()

    raise_barber_fee(path, original)
    heard = barber_fee()
    answered_while_reading = not finish.is_set()
    started_reading = reading.wait(10)
    finish.set()
    assert started_reading and answered_while_reading  # the call did not wait for the read
    assert "20,000 riel" in heard  # ... and heard the catalogue in force
    live.loader.join(10)
    assert "25,000 riel" in barber_fee()  # then the edit reaches the next call


# --- gunicorn: no forwarding header believed without a proxy; its log file private ----------


@pytest.fixture(scope="module")
def plain_gunicorn(tmp_path_factory):
    """The line under gunicorn with the production settings, no proxy (IVR_PROXY_HOPS
    unset), its log in a file."""
    tmp = tmp_path_factory.mktemp("plain")
    line = Gunicorn(tmp, "--error-logfile", str(tmp / "error.log"))
    yield line, tmp
    line.stop()


def test_without_a_proxy_x_forwarded_proto_from_localhost_is_not_believed(plain_gunicorn):
    """gunicorn used to take X-Forwarded-Proto from 127.0.0.1 even with 0 proxy hops, so a
    local client could make a request look https (and the signed URL differ)."""
    line, _ = plain_gunicorn
    twilio = HttpTwilio(line.base)
    spoofed = {"X-Forwarded-Proto": "https"}
    assert twilio.post("/voice", **spoofed).status_code == 200  # still http, as sent
    https = line.base.replace("http://", "https://") + "/voice"
    assert twilio.post("/voice", signed_url=https, **spoofed).status_code == 403


def test_gunicorn_s_log_and_the_database_it_creates_are_private(plain_gunicorn):
    line, tmp = plain_gunicorn
    Caller(HttpTwilio(line.base)).start("2").hangup()
    assert (tmp / "error.log").stat().st_size > 0
    for path in (tmp / "error.log", line.database, tmp / "ivr.db-wal"):
        assert mode(path) & 0o077 == 0, (path, oct(mode(path)))


# --- secrets apart from the database ---------------------------------------------------------


def test_secrets_can_be_files_apart_from_the_database(tmp_path, settings):
    secrets = tmp_path / "etc"
    secrets.mkdir()
    (secrets / "token").write_text(TOKEN + "\n")
    (secrets / "caller.key").write_text("a key kept apart\n")
    env = {"TWILIO_AUTH_TOKEN_FILE": str(secrets / "token"),
           "IVR_CALLER_KEY_FILE": str(secrets / "caller.key"),
           "IVR_DATABASE": str(tmp_path / "db" / "ivr.db"),
           "IVR_CATALOG": str(ROOT / "catalog.yaml"), "IVR_PROMPTS": str(ROOT / "prompts"),
           "IVR_AUDIO_DIR": str(tmp_path / "audio")}
    app = create_app(Settings.from_env(env))
    Caller(Twilio(app)).start("2")  # webhooks signed with the token from the file
    line = app.extensions["ivr"]
    assert line.settings.caller_key == b"a key kept apart"
    assert not (tmp_path / "db" / "caller.key").exists()  # nothing generated beside it
    with pytest.raises(RuntimeError, match="both TWILIO_AUTH_TOKEN and TWILIO_AUTH_TOKEN_FILE"):
        Settings.from_env({**env, "TWILIO_AUTH_TOKEN": "x"})
    with pytest.raises(RuntimeError, match="IVR_CALLER_KEY_FILE: cannot read"):
        Settings.from_env({**env, "IVR_CALLER_KEY_FILE": str(secrets / "missing")})


def test_a_caller_key_generated_beside_the_database_is_warned_about(tmp_path, caplog):
    env = {"TWILIO_AUTH_TOKEN": TOKEN, "IVR_DATABASE": str(tmp_path / "ivr.db")}
    Settings.from_env(env).resolved()
    assert "caller key is kept in" in caplog.text and "IVR_CALLER_KEY_FILE" in caplog.text


# --- one caller, however the number is written ------------------------------------------------


def test_the_same_number_written_differently_is_one_caller(app, settings):
    spellings = ["012 345 678", "85512345678", "+855 12 345 678", "+85512345678",
                 "0085512345678"]
    for i, number in enumerate(spellings):
        Caller(Twilio(app), sid=f"CA{i:032d}", number=number).start("2").hangup()
    Caller(Twilio(app), sid="CA" + "9" * 32, number="+85512345679").start("2").hangup()
    with sqlite3.connect(settings.database) as conn:
        hashes = dict(conn.execute("SELECT sid, caller_hash FROM calls"))
    same = {hashes[f"CA{i:032d}"] for i in range(len(spellings))}
    assert same == {caller_hash(settings.caller_key, "+85512345678")}
    assert hashes["CA" + "9" * 32] not in same  # another number is another caller


@pytest.mark.parametrize("number, expected", [
    ("+85512345678", "+85512345678"), ("012 345 678", "+85512345678"),
    ("85512345678", "+85512345678"), ("+855 (0)12-345-678", "+855012345678"),
    ("0085597123456", "+85597123456"), ("097 123 4567", "+855971234567"),
    ("12345678", "+85512345678"), ("+1 415 555 0100", "+14155550100"),
    ("anonymous", ""), ("", "")])
def test_numbers_are_read_as_e164(number, expected):
    assert e164(number) == expected


# --- the backup job ------------------------------------------------------------------------


def test_the_backup_job_copies_a_busy_database_privately_and_drops_old_copies(tmp_path):
    from click.testing import CliRunner

    from ivr.cli import main

    database = tmp_path / "ivr.db"
    store = Store(database, b"k")
    store.save_answer("CA1", "+85512345678", "ou-chrov", "x", "en", "quality", "4")
    backups = tmp_path / "backups"
    backups.mkdir()
    old, recent = backups / "ivr-2026-01-01.db", backups / "ivr-2026-11-30.db"
    for path, days in ((old, 40), (recent, 2)):
        path.write_bytes(b"")
        os.utime(path, (time.time() - days * 86400,) * 2)
    blocker = sqlite3.connect(database, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")  # the line is writing meanwhile
    blocker.execute("INSERT INTO calls (sid) VALUES ('not committed yet')")
    try:
        done = CliRunner().invoke(main, ["backup", "--to", str(backups), "--keep-days", "30"],
                                  env={"IVR_DATABASE": str(database)})
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert done.exit_code == 0, done.output
    copies = sorted(p.name for p in backups.iterdir())
    assert "ivr-2026-01-01.db" not in copies and "ivr-2026-11-30.db" in copies
    copy = backups / f"ivr-{time.strftime('%Y-%m-%d', time.gmtime())}.db"
    assert mode(copy) == 0o600
    with sqlite3.connect(copy) as conn:
        assert conn.execute("SELECT question, value FROM answers").fetchall() == [
            ("quality", "4")]
        assert conn.execute("SELECT count(*) FROM calls").fetchone() == (0,)
    store.close()
    json.dumps(copies)  # (the listing is plain names)
