"""Walk the whole call graph as Twilio would: signed requests, every key at every menu,
every recording and dial outcome.

Every response must be schema-valid TwiML; every menu a one-key Gather (finishOnKey "", so
# and * are keys) with an action asked on silence too, nested prompts and a following verb
(an office code: keys ended by '#'); no 5xx, no dead end; and every service's facts
reachable from the greeting in at most four key presses (fee tables add one or two).
"""

from __future__ import annotations

import re
from collections import deque
from datetime import datetime, timezone
from urllib.parse import parse_qsl, urlsplit

import pytest
from lxml import etree

from ivr import create_app
from ivr.catalog import FeeChoice, load_catalog
from tests.conftest import ROOT, Twilio, twiml_schema_path

KEYS = list("0123456789*#")
JUNK = ["12", "x", "ញ", "*#", "1" * 40]
MAX_PRESSES = 4
DIAL_STATUSES = ["completed", "busy", "no-answer", "failed", "canceled"]


@pytest.fixture(scope="module")
def schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(twiml_schema_path())))


def node_of(url: str) -> str:
    """http://localhost/voice/en/service/x?a=1 -> 'en/service/x'."""
    return urlsplit(url).path.removeprefix("/voice/")


def shape(url: str, params: tuple) -> tuple:
    """Requests that differ only in which office, service or topic was chosen (or in a case
    number) take the same path through the code: walk one of each, or the walk explodes."""
    parts = urlsplit(url)
    path = re.sub(r"/case/\d+", "/case/N", parts.path)
    query = tuple(sorted((k, v if k not in "ost" else "*") for k, v in parse_qsl(parts.query)))
    return path, query, params


def walk(twilio: Twilio, schema: etree.XMLSchema, codes: list[str]) -> dict:
    """0-1 breadth-first search over requests: key presses cost 1, everything else 0."""
    queue = deque([(("http://localhost/voice", ()), 0)])
    seen: set = set()
    reached: dict[str, int] = {}  # node presented by a Gather -> fewest presses
    stats = {"requests": 0, "hangups": 0, "records": 0, "dials": 0, "verbs": set()}
    while queue:
        (url, params), presses = queue.popleft()
        if shape(url, params) in seen:
            continue
        seen.add(shape(url, params))
        response = twilio.post(url, dict(params))
        stats["requests"] += 1
        assert response.status_code == 200, (url, params, response.status_code)
        doc = etree.fromstring(response.data)
        assert schema.validate(doc), (url, params, schema.error_log.last_error)
        verbs = list(doc)
        if "status" in url or "recording" in url:
            continue  # callbacks answer an empty document
        assert verbs, f"dead end: empty response at {url} {params}"
        for i, verb in enumerate(verbs):
            stats["verbs"].add(verb.tag)
            if verb.tag == "Gather":
                target = verb.get("action")
                assert target, url
                # prompts nested; only the wait for the rest of a code (k=...) has none
                assert len(verb) > 0 or "k=" in target, url
                assert all(c.tag in ("Play", "Say") for c in verb), url
                assert verb.get("actionOnEmptyResult") == "true" and "g=1" in target, url
                assert i + 1 < len(verbs), f"nothing follows the Gather at {url}"
                node = node_of(target)
                reached[node] = min(reached.get(node, presses), presses)
                if verb.get("numDigits") == "1":  # '#' and '*' are keys, not terminators
                    assert verb.get("finishOnKey") == "", url
                else:  # an office code, ended with '#'
                    assert verb.get("finishOnKey") == "#" and node.endswith("/office/code")
                if "a=" in target:  # a re-prompt: its keys were tried at the first prompt
                    inputs = [JUNK[0]]
                elif verb.get("numDigits") == "1":
                    inputs = KEYS + JUNK
                else:
                    inputs = codes + ["9999", "0", "*", "#", "x1"]
                for key in inputs:
                    queue.append(((target, (("Digits", key),)), presses + 1))
                queue.append(((target, ()), presses + 1))  # silence: the action, no Digits
            elif verb.tag == "Redirect":
                queue.appendleft(((verb.text, ()), presses))
                assert i == len(verbs) - 1
            elif verb.tag == "Hangup":
                stats["hangups"] += 1
                assert i == len(verbs) - 1
            elif verb.tag == "Record":
                stats["records"] += 1
                assert verb.get("action") and verb.get("recordingStatusCallback")
                assert verb.get("finishOnKey") == "#" and int(verb.get("maxLength")) > 0
                assert i + 1 < len(verbs), "an empty recording would end the call"
                done = (("RecordingDuration", "7"), ("RecordingSid", f"RE{stats['records']}"),
                        ("RecordingUrl", "https://api.twilio.com/rec"))
                queue.appendleft(((verb.get("action"), done), presses))
                queue.appendleft(((verb.get("recordingStatusCallback"),
                                   (*done, ("RecordingStatus", "completed"))), presses))
            elif verb.tag == "Dial":
                stats["dials"] += 1
                assert verb.get("action") and int(verb.get("timeout")) <= 60
                for status in DIAL_STATUSES:
                    queue.appendleft(((verb.get("action"), (("DialCallStatus", status),)),
                                      presses))
        assert verbs[-1].tag in ("Redirect", "Hangup", "Dial"), f"dead end at {url} {params}"
    stats["reached"] = reached
    return stats


def test_whole_call_graph(twilio, schema):
    catalog = load_catalog(ROOT / "catalog.yaml")
    stats = walk(twilio, schema, [o.code for o in catalog.offices])
    reached = stats["reached"]
    for lang in catalog.languages:
        for service in catalog.services():
            node = f"{lang}/service/{service.id}"
            assert node in reached, f"{node} cannot be reached"
            assert reached[node] <= MAX_PRESSES, (node, reached[node])
            if isinstance(service.fee, FeeChoice):  # each fee in the table: one or two more
                for i, option in enumerate(service.fee.options, start=1):
                    depth = 2 if isinstance(option.fee, FeeChoice) else 1
                    leaf = f"{node}/fee/{i}" + (".1" if depth == 2 else "")
                    assert reached[leaf] <= MAX_PRESSES + depth, (leaf, reached[leaf])
        # the other branches: rating, complaint, the Ombudsman's message and case numbers
        for branch in ("rate/q/1", "rate/thanks", "complaint/office", "ombudsman/away/unlisted"):
            assert f"{lang}/{branch}" in reached, branch
        assert any(n.startswith(f"{lang}/case/") for n in reached)
    assert stats["hangups"] > 0 and stats["records"] > 0
    assert stats["dials"] == 0  # no Ombudsman number is published: the line never dials


def test_call_graph_with_an_ombudsman_on_duty(settings, schema, tmp_path):
    """With a real number and open hours the line dials; every dial outcome is handled."""
    text = (ROOT / "catalog.yaml").read_text(encoding="utf-8")
    text = text.replace(
        "    ombudsman:\n      phone: PLACEHOLDER (not published)\n"
        "      hours: PLACEHOLDER (not published)",
        "    ombudsman:\n      phone: \"+85512000999\"\n"
        "      hours: {days: [mon, tue, wed, thu, fri], open: \"07:30\", close: \"17:00\"}", 1)
    path = tmp_path / "catalog.yaml"
    path.write_text(text, encoding="utf-8")
    app = create_app(settings, catalog=path)
    # Monday 2026-11-23 10:00 in Phnom Penh
    app.extensions["ivr"].clock = lambda: datetime(2026, 11, 23, 3, 0, tzinfo=timezone.utc)
    catalog = load_catalog(path)
    stats = walk(Twilio(app), schema, [catalog.offices[0].code])
    assert stats["dials"] > 0
    for reason in ("busy", "no-answer", "failed", "canceled"):
        assert any(n.endswith(f"ombudsman/away/{reason}") for n in stats["reached"]), reason
