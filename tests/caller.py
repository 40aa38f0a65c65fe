"""A caller for scenario tests: presses keys on a handset, and the carrier simulator
(ivr.simulate, Twilio's or Somleng's rules) turns them into the requests the carrier would
make. What the caller heard comes from the rendered audio's texts (the manifest) or <Say>."""

from __future__ import annotations

from lxml import etree

from ivr.simulate import (
    Call,
    FlaskTransport,
    GatherInfo,
    HttpTransport,
    Keys,
    RecordPrompt,
    Simulator,
    Step,
)
from ivr.terminal import prompt_texts

CALLER = "+85512345678"


class Caller:
    """One call, driven one key press at a time through the carrier simulator.

    `twilio` is the tests' request signer (tests.support.Twilio or HttpTwilio): it names the
    app (or the server's base URL) and the auth token.
    """

    def __init__(self, twilio, sid: str | None = None, number: str = CALLER,
                 carrier: str = "twilio", **options):
        if twilio.client is not None:
            transport = FlaskTransport(twilio.client)
            app = twilio.client.application
            options.setdefault("prompt_text", prompt_texts(app.extensions["ivr"].settings))
        else:
            transport = HttpTransport(timeout=30)
        self.twilio = twilio
        self.sim = Simulator(transport, twilio.token, carrier=carrier, caller=number,
                             base_url=twilio.base, pause_at_record=True, **options)
        self.sid = sid
        self.call: Call | None = None
        self.mark = 0  # the first document fetched since the last key press

    # pressing keys

    def start(self, lang_key: str | None = None) -> Caller:
        """Ring the line; then choose the language (or wait: Khmer)."""
        self.call = self.sim.start(self.sid)
        self.sid = self.call.transcript.call_sid
        return self.press(lang_key) if lang_key else self.silence()

    def press(self, keys: str | Keys | None) -> Caller:
        """Keys typed in one go ('0105#'), paced (Keys or '0105@2.5'), or None: silence."""
        assert self.call is not None and not self.call.ended, "the call has ended"
        self.mark = len(self.call.transcript.steps)
        self.call.press(keys)
        self._check()
        return self

    def silence(self) -> Caller:
        return self.press(None)

    def record(self, seconds: int, recording_sid: str | None = None, end: str = "#"
               ) -> Caller:
        """Speak for `seconds` after the tone (0: say nothing), then press `end`."""
        assert self.call is not None
        self.mark = len(self.call.transcript.steps)
        self.call.record(seconds, end, recording_sid)
        self._check()
        return self

    def hangup(self) -> Caller:
        assert self.call is not None
        self.call.hangup()
        return self

    def _check(self) -> None:
        """Every document must be one the carrier accepts (the simulator raises otherwise)."""
        for step in self.steps:
            assert step.status == 200, (step.url, step.status)

    # what happened

    @property
    def steps(self) -> list[Step]:
        """The documents fetched since the last key press."""
        assert self.call is not None
        return self.call.transcript.steps[self.mark:]

    @property
    def doc(self):
        """The last TwiML document, parsed."""
        assert self.call is not None
        return etree.fromstring(self.call.transcript.last.twiml.encode())

    @property
    def waiting(self) -> GatherInfo | RecordPrompt | None:
        assert self.call is not None
        return self.call.waiting

    @property
    def ended(self) -> bool:
        return self.call is None or self.call.ended

    def action(self) -> str:
        """The action of the Gather waiting for the caller."""
        assert isinstance(self.waiting, GatherInfo), self.waiting
        return self.waiting.action

    def heard(self) -> str:
        """Everything the caller heard since the last key press, in order."""
        return " ".join(p.text or "" for step in self.steps for p in step.prompts)

    def repeat_last(self, keys: str, url: str):
        """The carrier retries a request it already sent (a timeout on its side): the same
        action with the same keys, signed as the carrier signs it."""
        assert self.call is not None
        params = {**self.call.params, "Digits": keys}
        response = self.twilio.post(url, params)
        assert response.status_code == 200, (url, response.status_code)
        return response

    @property
    def transcript(self):
        assert self.call is not None
        return self.call.transcript
