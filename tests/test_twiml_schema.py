"""The project's own TwiML schema (tests/twiml.xsd): it accepts what the line answers and
refuses the mistakes Twilio's documentation rules out; the shared TwiML.xsd, where present,
agrees on the line's documents."""

from __future__ import annotations

import pytest
from lxml import etree

from tests.caller import Caller
from tests.support import OWN_TWIML_XSD, TwimlSchemas, twiml_schema_paths

OWN = TwimlSchemas([OWN_TWIML_XSD])

GOOD = [
    '<Response><Gather action="http://x/a" method="POST" numDigits="1" finishOnKey="" '
    'timeout="6" actionOnEmptyResult="true"><Play>http://x/a.wav</Play><Say language="en-US">'
    'Hi</Say></Gather><Redirect method="POST">http://x/b</Redirect></Response>',
    '<Response><Record action="http://x/r" method="POST" maxLength="120" finishOnKey="#" '
    'playBeep="true" timeout="7" recordingStatusCallback="http://x/c" '
    'recordingStatusCallbackMethod="POST"/><Redirect>http://x/e</Redirect></Response>',
    '<Response><Dial action="http://x/d" method="POST" timeout="25" callerId="+85523000000">'
    '<Number>+85512000999</Number></Dial></Response>',
    '<Response><Reject reason="busy"/></Response>',
    '<Response><Say>Bye</Say><Hangup/></Response>',
    '<Response><Pause length="2"/><Play digits="ww12#"/></Response>',
]
BAD = {
    "a method Twilio does not know": '<Response><Redirect method="PUSH">http://x</Redirect>'
                                     '</Response>',
    "two keys ending a Gather": '<Response><Gather finishOnKey="##"/></Response>',
    "a Gather in a Gather": '<Response><Gather><Gather/></Gather></Response>',
    "a Record in a Gather": '<Response><Gather><Record/></Gather></Response>',
    "numDigits 0": '<Response><Gather numDigits="0"/></Response>',
    "a boolean written yes": '<Response><Gather actionOnEmptyResult="yes"/></Response>',
    "a Dial ringing 2 s": '<Response><Dial timeout="2">+85512000999</Dial></Response>',
    "an unknown verb": '<Response><Speak>Hi</Speak></Response>',
    "an unknown attribute": '<Response><Play volume="3">http://x/a.wav</Play></Response>',
    "a Play inside a Say": '<Response><Say><Play>http://x/a.wav</Play></Say></Response>',
    "an empty Redirect": '<Response><Redirect></Redirect></Response>',
    "a Reject reason": '<Response><Reject reason="nope"/></Response>',
    "a Record that ends on a letter": '<Response><Record finishOnKey="x"/></Response>',
}


@pytest.mark.parametrize("document", GOOD)
def test_documented_twiml_is_accepted(document):
    assert OWN.validate(etree.fromstring(document)), OWN.error_log.last_error


@pytest.mark.parametrize("what", BAD)
def test_what_the_documentation_rules_out_is_refused(what):
    assert not OWN.validate(etree.fromstring(BAD[what])), what


def test_the_line_s_documents_pass_every_schema(twilio):
    schemas = TwimlSchemas()
    call = Caller(twilio).start("2")
    for keys in ("1", "5", "2", "1", "*", "#", "2", "1", "0105#"):
        call.press(keys)
    docs = [etree.fromstring(step.twiml.encode()) for step in call.transcript.steps]
    assert len(docs) >= 8
    for doc in docs:
        assert schemas.validate(doc), schemas.error_log.last_error


def test_the_own_schema_is_used_even_without_the_shared_one(monkeypatch, tmp_path):
    monkeypatch.setenv("IVR_SHARED", str(tmp_path / "nowhere"))
    monkeypatch.delenv("IVR_TWIML_XSD", raising=False)
    assert twiml_schema_paths() == [OWN_TWIML_XSD]
