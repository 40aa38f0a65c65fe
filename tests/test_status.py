"""Main menu 5 (issue 15): a caller keys the reference of a message or rating they left and
hears its kind, office, day received, status and the office's reply; 1 again, 2 a
follow-up kept on the case. Wrong references are limited per call and per caller per day
(in SQLite, shared by every worker) and never reveal whether a case exists. The case page
replies (standard, uploaded); the scorecard's median reply time per office."""

from __future__ import annotations

import io
import re
import sqlite3
import subprocess
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from ivr import create_app, replies
from ivr.admin import accounts
from ivr.render import FFMPEG
from tests.caller import Caller
from tests.support import ROOT, TOKEN, Twilio, csrf_of

CARRIERS = ["twilio", "somleng"]
ADMIN_PASSWORD = "status-admin-password"
ACCOUNT = "AC" + "0" * 32
WRONG = "Sorry, we cannot find that reference number. Please check it and key it again."
REFUSED = "This phone cannot look up a reference number again today."
ASK = "Key in the six-digit reference number you were given, then press hash."


@pytest.fixture
def line_app(tmp_path):
    from ivr.config import Settings

    settings = Settings(auth_token=TOKEN, catalog=ROOT / "catalog.yaml", prompts=ROOT / "prompts",
                        audio_dir=tmp_path / "audio", database=tmp_path / "ivr.db",
                        caller_key=b"test-caller-key")
    return create_app(settings, admin_password=ADMIN_PASSWORD, twilio_account_sid=ACCOUNT)


@pytest.fixture
def tw(line_app):
    return Twilio(line_app)


def store_of(app):
    return app.extensions["ivr"].store


def complaint(tw, carrier: str = "twilio", number: str = "+85512345678") -> str:
    """A complaint about Poipet (code 0110); the reference the caller hears."""
    call = Caller(tw, carrier=carrier, number=number).start("2")
    call.press("4").press("1").press("1").press("0110").press("1").record(20)
    found = re.search(r"Your reference number is((?: \d){6})", call.heard())
    assert found, call.heard()
    call.hangup()
    return found.group(1).replace(" ", "")


def lookup(tw, carrier: str = "twilio", number: str = "+85512345678") -> Caller:
    call = Caller(tw, carrier=carrier, number=number).start("2").press("5")
    assert call.heard() == ASK
    return call


def key(call: Caller, reference: str, carrier: str) -> Caller:
    """A reference and #, as a person keys it: on Somleng slowly (each gap past its 2 s)."""
    return call.press(f"{reference}#@2.5" if carrier == "somleng" else f"{reference}#")


def gathers(call: Caller) -> list[str]:
    """The documents fetched since the last key press, without the call's own ids."""
    return [re.sub(r"CallSid=[^&\"]+", "", step.twiml) for step in call.steps]


# --- hearing back --------------------------------------------------------------------------


@pytest.mark.parametrize("carrier", CARRIERS)
def test_a_second_call_hears_status_and_reply_and_leaves_a_follow_up(tw, line_app, carrier):
    reference = complaint(tw, carrier)
    store = store_of(line_app)
    call = key(lookup(tw, carrier, number="+85599000111"), "1" * 6, carrier)  # another phone
    assert call.heard().startswith(WRONG)
    key(call, reference, carrier)
    heard = call.heard()
    assert heard.startswith("Your complaint about the Paoy Paet Municipality One Window "
                            "Service Office was received on ")
    day = datetime.now(timezone(timedelta(hours=7)))
    assert f"received on {day.day} {day:%B} {day.year}." in heard
    assert "It has not been looked at yet. There is no reply yet." in heard
    store.add_reply(reference, "standard", prompt_key="reply.standard.received", by="admin")
    store.set_case_status(reference, "reviewed")
    call.press("1")  # hear it again: now with the reply
    assert ("It is being looked at. The office has left you this reply. Your message was "
            "received and is being looked at. Please call again in two weeks.") in call.heard()
    gather = call.doc.find("Gather")
    assert (gather.get("numDigits"), gather.get("finishOnKey")) == ("1", "")
    call.press("2")
    assert "say your follow-up message" in call.heard()
    call.record(15)
    assert call.heard().startswith("Thank you. Your follow-up message has been added")
    ((ref, seconds, lang, hashed),) = sqlite3.connect(store.path).execute(
        "SELECT reference, duration_s, lang, caller_hash FROM case_followups").fetchall()
    assert (ref, seconds, lang) == (reference, 15, "en") and len(hashed) == 32
    assert sqlite3.connect(store.path).execute(
        "SELECT count(*) FROM recordings").fetchone() == (1,)  # no new case
    call.press("#")
    assert call.heard().startswith("Main menu.")


def test_a_rating_reference_says_it_is_counted_and_offers_no_follow_up(tw, line_app):
    rate = Caller(tw).start("2")
    rate.press("2").press("1").press("0105#").press("1").press("2").press("1")
    rate.press("3").press("3").press("2").press("2").press("2")  # no comment
    reference = re.search(r"Your reference number is((?: \d){6})", rate.heard()).group(1)
    call = key(lookup(tw), reference.replace(" ", ""), "twilio")
    assert call.heard().startswith("Your rating about the Ou Chrov District One Window "
                                   "Service Office was received on ")
    assert "It is counted in the office's scorecard." in call.heard()
    assert "press 2" not in call.heard()
    call.press("2")
    assert call.heard().startswith("Sorry, that key is not on this menu.")


def test_a_recorded_reply_is_played_from_a_signed_url_that_expires(tw, line_app, tmp_path):
    reference = complaint(tw)
    store = store_of(line_app)
    wav, duration = replies.to_telephone_wav(tone(tmp_path, "mp3"))
    name = replies.keep(replies.folder_of(store.path), wav)
    reply = store.add_reply(reference, "recorded", file=name, duration_ms=duration)
    call = key(lookup(tw), reference, "twilio")
    assert "The office has left you this reply." in call.heard()
    plays = [p.get("url") or p.text for p in call.doc.iter("Play")]
    (url,) = [u for u in plays if "/reply/" in u]
    assert re.fullmatch(rf"http://localhost/reply/{reply}/\d+/[0-9a-f]{{32}}\.wav", url)
    client = line_app.test_client()
    answer = client.get(url.removeprefix("http://localhost"))
    assert answer.status_code == 200 and answer.mimetype == "audio/wav"
    assert answer.data == wav and answer.data[20:22] == b"\x07\x00"  # mu-law
    assert "private" in answer.headers["Cache-Control"]
    _, _, reply_id, expires, signed = url.rsplit("/", 4)
    forged = signed[:-5].replace("a", "b") + "00000"
    assert client.get(f"/reply/{reply_id}/{expires}/{forged}").status_code == 404
    assert client.get(f"/reply/{int(reply_id) + 1}/{expires}/{signed}").status_code == 404
    stale = int(time.time()) // 3600 * 3600 - 3600
    old = replies.signature(replies.url_key(store.caller_key), reply, stale)
    assert client.get(f"/reply/{reply}/{stale}/{old}.wav").status_code == 404
    assert not list(Path(line_app.extensions["ivr"].settings.audio_dir).glob("**/*.wav"))


# --- wrong references ----------------------------------------------------------------------


@pytest.mark.parametrize("carrier", CARRIERS)
def test_a_wrong_reference_gets_one_sentence_and_another_try(tw, line_app, carrier):
    reference = complaint(tw, carrier)
    call = key(lookup(tw, carrier), "123", carrier)  # too short
    if carrier == "twilio":  # "123#": the line waits a moment for the rest, as for a code
        assert call.heard() == ""
        call.silence()
    assert call.heard() == f"{WRONG} {ASK}"
    key(call, reference, carrier)
    assert call.heard().startswith("Your complaint")


def test_three_wrong_references_in_a_call_end_the_lookup_for_the_day(tw, line_app):
    reference = complaint(tw)
    call = lookup(tw)
    for _ in range(2):
        assert call.press("999999#").heard() == f"{WRONG} {ASK}"
    call.press("999998#")
    assert REFUSED in call.heard() and "For the main menu, press hash." in call.heard()
    assert call.press("#").heard().startswith("Main menu.")
    assert REFUSED in call.press("5").heard()  # not offered again in this call
    again = Caller(tw).start("2").press("5")  # nor in the next call from this phone today
    assert REFUSED in again.heard() and ASK not in again.heard()
    other = key(lookup(tw, number="+85577000222"), reference, "twilio")
    assert other.heard().startswith("Your complaint")


def test_the_daily_limit_per_caller_is_kept_in_the_database_for_every_worker(tw, line_app,
                                                                            tmp_path):
    """Two apps on one database stand for two gunicorn workers: 2 + 2 + 1 wrong references
    in three calls reach the day's limit of 5, whichever worker answered."""
    reference = complaint(tw)
    other_worker = Twilio(create_app(line_app.extensions["ivr"].settings,
                                     admin_password=ADMIN_PASSWORD))
    for worker, wrong in ((tw, 2), (other_worker, 2), (tw, 1)):
        call = lookup(worker)
        for _ in range(wrong):
            call.press("555555#")
        if worker is tw and wrong == 1:  # the fifth of the day: no more tries today
            assert REFUSED in call.heard()
        else:
            assert call.heard() == f"{WRONG} {ASK}"
        call.hangup()
    refused = lookup_refused(other_worker)
    assert REFUSED in refused.heard()
    assert sqlite3.connect(store_of(line_app).path).execute(
        "SELECT count(*), sum(found) FROM case_lookups").fetchone() == (5, 0)
    assert key(lookup(tw, number="+85577000333"), reference, "twilio").heard().startswith(
        "Your complaint")


def lookup_refused(tw) -> Caller:
    return Caller(tw).start("2").press("5")


def test_no_response_to_a_wrong_reference_reveals_whether_a_case_exists(tw, line_app):
    reference = complaint(tw)
    rating_call = Caller(tw).start("2")
    rating_call.press("2").press("1").press("0105#").press("1").press("2").press("1")
    rating_call.press("3").press("3").press("2").press("2").press("2")
    near = reference[:5] + str((int(reference[5]) + 1) % 10)
    documents = set()
    for number, wrong in (("+85510000001", "000000"), ("+85510000002", near),
                          ("+85510000003", "12345678")):
        call = lookup(tw, number=number)
        documents.add(tuple(gathers(call.press(f"{wrong}#"))))
    assert len(documents) == 1  # the same words and the same next step
    # once a limit is reached, the lookup is refused before any reference is keyed, so a
    # real reference is never looked up: two such callers hear the same
    for number in ("+85510000009", "+85510000008"):
        call = lookup(tw, number=number)
        for wrong in ("000001", "000003", "000004"):
            call.press(f"{wrong}#")
        assert REFUSED in call.heard()
        call.hangup()
    refused = []
    for number in ("+85510000009", "+85510000008"):
        blocked = Caller(tw, number=number).start("2").press("5")
        refused.append(gathers(blocked))
        assert REFUSED in blocked.heard()
    assert refused[0] == refused[1]


def test_the_case_is_not_said_in_a_call_that_did_not_key_its_reference(tw, line_app):
    """Even a signed request for the case's step (the carrier's own URL) says nothing
    without this call's lookup of the reference."""
    reference = complaint(tw)
    response = tw.post(f"http://localhost/voice/en/hear-back/case?c={reference}",
                       {"CallSid": "CAnobody", "From": "+85512000000"})
    assert response.status_code == 200
    text = response.get_data(as_text=True)
    assert "Your complaint" not in text and "Paoy Paet" not in text
    assert "not on this menu" in text


# --- the case page and the scorecard -------------------------------------------------------


def tone(folder: Path, fmt: str, seconds: float = 1.5) -> bytes:
    path = folder / f"tone.{fmt}"
    subprocess.run([FFMPEG, "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    f"sine=frequency=440:duration={seconds}", "-ac", "1", str(path)], check=True)
    return path.read_bytes()


@pytest.mark.parametrize("fmt", replies.FORMATS)
def test_every_upload_format_becomes_telephone_audio(tmp_path, fmt):
    wav, duration_ms = replies.to_telephone_wav(tone(tmp_path, fmt))
    assert wav[:4] == b"RIFF" and wav[20:22] == b"\x07\x00"  # mu-law
    assert int.from_bytes(wav[22:24], "little") == 1  # mono
    assert int.from_bytes(wav[24:28], "little") == 8000
    assert 1400 <= duration_ms <= 2000


def test_junk_or_silence_is_no_reply(tmp_path):
    for data, key in ((b"", "reply.error.empty"), (b"not audio at all", "reply.error.format")):
        with pytest.raises(replies.ReplyError) as refused:
            replies.to_telephone_wav(data)
        assert refused.value.key == key
    silent = tmp_path / "silence.wav"
    subprocess.run([FFMPEG, "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i",
                    "anullsrc=r=8000:cl=mono", "-t", "1", str(silent)], check=True)
    with pytest.raises(replies.ReplyError) as refused:
        replies.to_telephone_wav(silent.read_bytes())
    assert refused.value.key == "reply.error.silent"


def admin_client(app, name: str = "admin", password: str = ADMIN_PASSWORD):
    client = app.test_client()
    token = csrf_of(client.get("/admin/login").get_data(as_text=True))
    signed = client.post("/admin/login", data={"csrf": token, "username": name,
                                               "password": password})
    assert signed.status_code == 302, signed.get_data(as_text=True)[:500]
    client.get("/admin/?lang=en")
    return client


def test_the_case_page_replies_and_everything_is_audited(tw, line_app, tmp_path):
    reference = complaint(tw)
    store = store_of(line_app)
    conn = store.db.conn
    offices = [o.id for o in line_app.extensions["ivr"].catalog.offices]
    accounts.add_user(conn, "ombud-other", "ombudsman", ["ou-chrov"], "other ombudsman pw",
                      offices)
    accounts.add_user(conn, "ombud-poipet", "ombudsman", ["poipet"], "poipet ombudsman pw",
                      offices)
    other = admin_client(line_app, "ombud-other", "other ombudsman pw")
    page = other.get(f"/admin/cases/{reference}")
    assert page.status_code == 404  # not their office: as if there were no case
    assert other.post(f"/admin/cases/{reference}/reply", data={
        "csrf": csrf_of(other.get("/admin/cases").get_data(as_text=True)),
        "standard": "reply.standard.received"}).status_code == 404
    client = admin_client(line_app, "ombud-poipet", "poipet ombudsman pw")
    page = client.get(f"/admin/cases/{reference}").get_data(as_text=True)
    assert "Your message was received and is being looked at." in page  # a standard reply
    csrf = csrf_of(page)
    answer = client.post(f"/admin/cases/{reference}/reply",
                         data={"csrf": csrf, "standard": "reply.standard.more"})
    assert answer.status_code == 302
    upload = client.post(f"/admin/cases/{reference}/reply", data={
        "csrf": csrf, "audio": (io.BytesIO(tone(tmp_path, "m4a", 3)), "r.m4a")},
        content_type="multipart/form-data")
    assert upload.status_code == 302
    junk = client.post(f"/admin/cases/{reference}/reply", data={
        "csrf": csrf, "audio": (io.BytesIO(b"junk" * 100), "r.mp3")},
        content_type="multipart/form-data")
    assert junk.status_code == 400 and "not a recording the line can read" in junk.get_data(
        as_text=True)
    rows = conn.execute("SELECT kind, prompt_key, created_by FROM case_replies ORDER BY id"
                        ).fetchall()
    assert rows == [("standard", "reply.standard.more", "ombud-poipet"),
                    ("recorded", None, "ombud-poipet")]
    ((status,),) = conn.execute("SELECT status FROM recordings").fetchall()
    assert status == "reviewed"
    audited = conn.execute("SELECT user, action, detail FROM audit_log WHERE target = ? "
                           "AND action IN ('case.reply', 'case.update') ORDER BY id",
                           [reference]).fetchall()
    assert audited[0] == ("ombud-poipet", "case.reply", "standard reply reply.standard.more")
    assert audited[1] == ("ombud-poipet", "case.update", "status new -> reviewed (replied)")
    assert audited[2][1] == "case.reply" and audited[2][2].startswith("recorded reply, 3.")
    page = client.get(f"/admin/cases/{reference}").get_data(as_text=True)
    (item,) = re.findall(rf"/admin/cases/{reference}/replies/(\d+)\.wav", page)
    heard = client.get(f"/admin/cases/{reference}/replies/{item}.wav")
    assert heard.status_code == 200 and heard.data[20:22] == b"\x07\x00"
    call = key(lookup(tw), reference, "twilio")  # the caller hears the latest: recorded
    assert any("/reply/" in (p.text or "") for p in call.doc.iter("Play"))


def seeded_case(store, reference: str, office: str, received: datetime,
                replied: list[datetime], followups: int = 0) -> None:
    conn = store.db.conn
    conn.execute("INSERT INTO recordings (kind, call_sid, office_id, reference, status, "
                 "created_at, recording_sid) VALUES ('complaint', ?, ?, ?, 'new', ?, ?)",
                 [f"CA{reference}", office, reference, received.isoformat(), f"RE{reference}"])
    for moment in replied:
        conn.execute("INSERT INTO case_replies (reference, kind, prompt_key, created_at) "
                     "VALUES (?, 'standard', 'reply.standard.received', ?)",
                     [reference, moment.isoformat()])
    for i in range(followups):
        conn.execute("INSERT INTO case_followups (reference, recording_sid, created_at) "
                     "VALUES (?, ?, ?)", [reference, f"FU{reference}{i}", received.isoformat()])


def test_the_scorecard_shows_follow_ups_and_median_days_to_the_first_reply(line_app):
    store = store_of(line_app)
    start = datetime(2026, 11, 2, 3, 0, tzinfo=timezone.utc)
    day = timedelta(days=1)
    # Poipet: first replies after 1, 3 and 10 days (a later second reply does not count),
    # one case without a reply: median 3.0. Ou Chrov: 2 and 5.5 days: median 3.75.
    seeded_case(store, "100001", "poipet", start, [start + day, start + 20 * day], 2)
    seeded_case(store, "100002", "poipet", start, [start + 3 * day])
    seeded_case(store, "100003", "poipet", start, [start + 10 * day], 1)
    seeded_case(store, "100004", "poipet", start, [])
    seeded_case(store, "100005", "ou-chrov", start, [start + 2 * day])
    seeded_case(store, "100006", "ou-chrov", start, [start + 5 * day + day / 2], 1)
    client = admin_client(line_app)
    page = client.get("/admin/scorecard").get_data(as_text=True)
    table = page[page.index('data-table="replies"'):]
    table = table[:table.index("</table>")]
    rows = {}
    for row in re.findall(r"<tr[^>]*>(.*?)</tr>", table, re.S)[1:]:
        cells = dict(re.findall(r'data-col="(\w+)" data-value="([^"]*)"', row))
        rows[cells["name"]] = cells
    poipet = rows["Paoy Paet Municipality"]
    ou_chrov = rows["Ou Chrov District"]
    assert (poipet["cases"], poipet["followups"], poipet["replied"]) == ("4", "3", "3")
    assert float(poipet["median_reply"]) == 3.0
    assert (ou_chrov["cases"], ou_chrov["followups"], ou_chrov["replied"]) == ("2", "1", "2")
    assert float(ou_chrov["median_reply"]) == 3.75  # (2 + 5.5) / 2
    csv = client.get("/admin/export/scorecard/replies.csv").get_data(as_text=True)
    assert "3.75" in csv and "Median days to the first reply" in csv
    offices = [o.id for o in line_app.extensions["ivr"].catalog.offices]
    accounts.add_user(store.db.conn, "chief", "office", ["poipet"], "office chief password",
                      offices)
    chief = admin_client(line_app, "chief", "office chief password")
    assert 'data-table="replies"' not in chief.get("/admin/scorecard").get_data(as_text=True)
