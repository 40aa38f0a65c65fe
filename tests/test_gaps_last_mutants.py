"""The last survivors of mutation testing in ivr/cases.py: when a closed Ombudsman line
says it opens again. The other survivors of that run were killed by tests already in
tests/test_gaps_*.py that the tool had not selected (see the helper's report).

A weekday is named only for the coming six days: the same weekday a week ahead would be
heard as today ("It opens again on Monday", said on a Monday morning when the office is
closed for a holiday), so then the caller is only offered to leave a message.
"""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from ivr import create_app
from tests.caller import Caller
from tests.support import ROOT, Twilio, with_ombudsman

CARRIERS = ["twilio", "somleng"]
MONDAYS = '{days: [mon], open: "07:30", close: "17:00"}'  # an Ombudsman on duty one day a week
CLOSED = "The Ombudsman's office is closed now."


def closed_ombudsman(settings, tmp_path, moment: datetime, carrier: str) -> Caller:
    """Ou Chrov's Ombudsman on duty on Mondays only, Monday 23 November 2026 a public
    holiday; a caller at `moment` asks to be put through (3, by code, Ou Chrov, go on)."""
    text = with_ombudsman((ROOT / "catalog.yaml").read_text(encoding="utf-8"), hours=MONDAYS)
    path = tmp_path / "mondays.yaml"
    path.write_text(text.replace("public_holidays: []", "public_holidays: [2026-11-23]"),
                    encoding="utf-8")
    app = create_app(settings.__class__(**{**settings.__dict__, "catalog": path}))
    app.extensions["ivr"].clock = lambda: moment
    call = Caller(Twilio(app), carrier=carrier).start("2")
    call.press("3").press("1").press("0105#").press("1")
    assert not any(step.dial is not None for step in call.steps)
    assert CLOSED in call.heard() and "leave a voice message" in call.heard(), call.heard()
    return call


@pytest.mark.parametrize("carrier", CARRIERS)
def test_a_closed_line_names_the_weekday_it_opens_within_six_days(settings, tmp_path, carrier):
    """Tuesday 1 December (Phnom Penh 10:00): next Monday is six days ahead."""
    call = closed_ombudsman(settings, tmp_path,
                            datetime(2026, 12, 1, 3, 0, tzinfo=timezone.utc), carrier)
    assert f"{CLOSED} It opens again on Monday at 7:30 in the morning." in call.heard()


@pytest.mark.parametrize("carrier", CARRIERS)
@pytest.mark.parametrize("moment", [
    datetime(2026, 11, 22, 23, 0, tzinfo=timezone.utc),  # Monday 06:00, the holiday
    datetime(2026, 11, 30, 11, 0, tzinfo=timezone.utc),  # Monday 18:00, after hours
], ids=["holiday-morning", "after-hours"])
def test_a_closed_line_does_not_name_today_s_weekday_for_next_week(
        settings, tmp_path, carrier, moment):
    """On a Monday the next opening is next Monday: "on Monday" would be taken for today
    (on the holiday morning, for 7:30 today), so no opening is said."""
    call = closed_ombudsman(settings, tmp_path, moment, carrier)
    assert "opens again" not in call.heard() and "Monday" not in call.heard(), call.heard()
    call.press("0")  # heard again: the same
    assert CLOSED in call.heard() and "opens again" not in call.heard()
