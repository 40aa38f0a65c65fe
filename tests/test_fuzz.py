"""Hostile and random input against the whole app: signed requests always get well-formed
TwiML or a clean 4xx (never a 5xx, never a dead end); unsigned ones change nothing."""

from __future__ import annotations

import logging
import sqlite3

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st
from lxml import etree

from ivr import create_app
from ivr.simulate import CARRIERS, RECORDING_CALLBACK_ORDERS, Keys, Simulator
from ivr.terminal import prompt_texts
from tests.support import TOKEN, Twilio

pytestmark = pytest.mark.filterwarnings("ignore")

JUNK = st.one_of(st.text(max_size=30), st.text(alphabet="0123456789*#", max_size=12),
                 st.sampled_from(["", " ", "\x00", "ញ", "1" * 5000, "%s", "{}", "../.."]))
NODES = st.sampled_from([
    "main", "categories", "category/transport", "category/nope", "service/rental-rooms",
    "service/construction-permit-villa/fee/1.3", "service/x/fee/9.9.9", "rate/office",
    "rate/office/code", "rate/q/1", "rate/q/99", "rate/thanks", "complaint",
    "complaint/notice", "complaint/recorded", "ombudsman/call", "ombudsman/dialled",
    "ombudsman/away/busy", "case/123456", "case/abc", "welcome", "", "//", "main/../main",
])
QUERY = st.dictionaries(st.sampled_from(["p", "a", "o", "s", "t", "noinput", "zz"]),
                        st.one_of(JUNK, st.sampled_from(["ou-chrov", "licence-a-exam",
                                                         "other", "1", "-1", "99999"])),
                        max_size=4)
FORM = st.dictionaries(st.sampled_from(["Digits", "CallSid", "From", "RecordingSid",
                                        "RecordingDuration", "DialCallStatus", "CallStatus",
                                        "RecordingUrl", "Junk"]), JUNK, max_size=5)


@pytest.fixture(scope="module")
def fuzz_app(tmp_path_factory):
    from ivr.config import Settings
    from tests.support import ROOT

    tmp = tmp_path_factory.mktemp("fuzz")
    return create_app(Settings(auth_token=TOKEN, catalog=ROOT / "catalog.yaml",
                               prompts=ROOT / "prompts", audio_dir=tmp / "audio",
                               database=tmp / "ivr.db", caller_key=b"k"))


def check_twiml(response) -> etree._Element:
    assert response.status_code < 500, response.data[:300]
    if response.status_code >= 400:
        return None
    doc = etree.fromstring(response.data)
    assert doc.tag == "Response"
    verbs = list(doc)
    if verbs:  # callbacks answer an empty document; everything else leads on
        assert verbs[-1].tag in ("Redirect", "Hangup", "Dial"), response.data[:500]
    return doc


# No caller can press these: junk, forged or oversized requests only an attacker can send.
@hyp_settings(max_examples=250, deadline=None, suppress_health_check=list(HealthCheck))
@given(lang=st.sampled_from(["km", "en", "xx", ""]), node=NODES, query=QUERY, form=FORM)
def test_signed_junk_gets_twiml_or_a_clean_4xx(fuzz_app, lang, node, query, form):
    from urllib.parse import urlencode

    path = f"/voice/{lang}/{node}" if lang else f"/voice/{node}"
    url = "http://localhost" + path + ("?" + urlencode(query) if query else "")
    form = {k: v.replace("\x00", "") for k, v in form.items()}
    check_twiml(Twilio(fuzz_app).post(url, form))


class Faults(logging.Handler):
    """Everything the app logs at ERROR or above (a fault the caller may not even notice)."""

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(scope="module")
def faults():
    handler = Faults()
    logger = logging.getLogger("ivr")
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)


KEY = st.sampled_from(list("0123456789*#"))  # one key, as most menus take
BURST = st.text(alphabet="0123456789*#", min_size=1, max_size=5)  # typed in one go
PACED = st.builds(Keys, BURST, st.floats(0.1, 3.0))  # the same, with a gap between keys
SCRIPT = st.lists(st.one_of(KEY, BURST, PACED, st.none()), min_size=1, max_size=25)
# Random keys alone seldom get past three wrong keys: these openings take a call somewhere
# first (None: silence, so Khmer), and random keys follow.
SURVEY = ["2", "1", "0105#", "1", "2", "1"]  # rate, by code, on, business licences, barber
OPENINGS = st.sampled_from([
    [], ["2"], [None], ["2", "1", "2", "1"], ["2", "1", "4", "1"],  # a service, a fee table
    ["2", "2", "1"], ["2", *SURVEY], [None, *SURVEY], ["2", *SURVEY, "3", "3", "2"],
    ["2", "2", "2", "2"], ["2", "4", "1", "1"], ["2", "4", "1", "1", "0105#"],
    [None, "4", "3", "2", "2", "1"], ["2", "3", "1", "0105#"], ["2", "3", "1", "0105#", "1"],
    ["2", "3", "1", "0105#", "1", "1"]])


@hyp_settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(carrier=st.sampled_from(sorted(CARRIERS)), opening=OPENINGS, script=SCRIPT,
       record_seconds=st.sampled_from([0, 4]),
       order=st.sampled_from(RECORDING_CALLBACK_ORDERS))
def test_random_key_sequences_never_break_a_call(fuzz_app, faults, carrier, opening, script,
                                                 record_seconds, order):
    """Random keys on a handset, through the carrier simulator with that carrier's rules
    (a <Record> on the way is spoken into for `record_seconds`, or left empty)."""
    line = fuzz_app.extensions["ivr"]
    faults.records.clear()
    sim = Simulator(fuzz_app, TOKEN, carrier=carrier, record_seconds=record_seconds,
                    recording_callback=order, prompt_text=prompt_texts(line.settings))
    transcript = sim.call([*opening, *script])  # raises SimulatorError on an HTTP error, bad TwiML,
    #                                      a verb the carrier refuses, or a redirect loop
    assert all(step.status == 200 for step in transcript.steps), transcript.text()
    assert all(200 <= c.status < 300 for c in transcript.callbacks), transcript.text()
    assert transcript.ended_by in ("caller", "hangup"), transcript.text()  # never a dead end
    apologies = [line.book.text("error.apology", lang) for lang in line.catalog.languages]
    heard = transcript.heard()
    assert not [text for text in heard if text in apologies], transcript.text()
    assert not faults.records, [faults.format(r) for r in faults.records]


# No caller can press these: requests without our carrier's signature.
@hyp_settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
@given(node=NODES, form=FORM, signature=st.one_of(st.none(), st.text(
    alphabet=st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",)),
    max_size=40)))
def test_unsigned_or_forged_requests_have_no_effect(fuzz_app, node, form, signature):
    database = fuzz_app.extensions["ivr"].settings.database
    before = sqlite3.connect(database).execute(
        "SELECT (SELECT count(*) FROM events) + (SELECT count(*) FROM answers) + "
        "(SELECT count(*) FROM recordings) + (SELECT count(*) FROM calls)").fetchone()
    headers = {} if signature is None else {"X-Twilio-Signature": signature}
    form = {k: v.replace("\x00", "") for k, v in form.items()}
    response = fuzz_app.test_client().post(f"/voice/en/{node}", data=form, headers=headers)
    assert response.status_code in (403, 404, 405)
    after = sqlite3.connect(database).execute(
        "SELECT (SELECT count(*) FROM events) + (SELECT count(*) FROM answers) + "
        "(SELECT count(*) FROM recordings) + (SELECT count(*) FROM calls)").fetchone()
    assert before == after


# No caller can press this: a body no carrier sends.
def test_oversized_bodies_are_refused_cleanly(fuzz_app):
    response = Twilio(fuzz_app).post("/voice/en/main", {"Digits": "1", "Junk": "x" * 200_000})
    assert response.status_code == 413


# No caller can press this: every route probed without a signature.
def test_every_webhook_route_requires_a_signature(fuzz_app):
    """Enumerated from the URL map, so a new webhook cannot be added without the check."""
    client = fuzz_app.test_client()
    webhooks = [r for r in fuzz_app.url_map.iter_rules() if r.rule.startswith("/voice")]
    assert len(webhooks) >= 4
    for rule in webhooks:
        url = rule.rule.replace("<lang>", "en").replace("<path:node>", "main")
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            response = client.open(url, method=method, data={"Digits": "1", "CallSid": "CAx"})
            assert response.status_code == 403, (rule.rule, method)
