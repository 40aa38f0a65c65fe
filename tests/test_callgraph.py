"""Walk the whole call graph as Twilio would: signed requests, every key at every menu.

Every response must be schema-valid TwiML; every menu a one-key Gather with an action,
nested prompts and a following verb; no 5xx, no dead end; and every service's facts
reachable from the greeting in at most four key presses (fee tables add one or two).
"""

from __future__ import annotations

from collections import deque
from urllib.parse import urlsplit

import pytest
from lxml import etree

from ivr.catalog import FeeChoice, load_catalog
from tests.conftest import ROOT, Twilio, twiml_schema_path

KEYS = list("0123456789*#")
JUNK = ["12", "x", "ញ", "*#", "1" * 40]
MAX_PRESSES = 4


@pytest.fixture(scope="module")
def schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(twiml_schema_path())))


def node_of(url: str) -> str:
    """/voice/en/service/x?a=1 -> ('en', 'service/x')."""
    path = urlsplit(url).path
    return path.removeprefix("/voice/")


def walk(twilio: Twilio, schema: etree.XMLSchema) -> dict:
    """0-1 breadth-first search over (url, keys): key presses cost 1, redirects cost 0."""
    start = ("http://localhost/voice", None)
    queue = deque([(start, 0)])
    seen: set = set()
    reached: dict[str, int] = {}  # node presented by a Gather -> fewest presses
    stats = {"requests": 0, "hangups": 0}
    while queue:
        (url, digits), presses = queue.popleft()
        if (url, digits) in seen:
            continue
        seen.add((url, digits))
        params = {"Digits": digits} if digits is not None else {}
        response = twilio.post(url, params)
        stats["requests"] += 1
        assert response.status_code == 200, (url, digits, response.status_code)
        doc = etree.fromstring(response.data)
        assert schema.validate(doc), (url, digits, schema.error_log.last_error)
        verbs = list(doc)
        assert verbs, f"dead end: empty response at {url} {digits!r}"
        for i, verb in enumerate(verbs):
            if verb.tag == "Gather":
                assert verb.get("numDigits") == "1", url
                assert verb.get("action"), url
                assert len(verb) > 0 and all(c.tag in ("Play", "Say") for c in verb), url
                assert i + 1 < len(verbs), f"nothing follows the Gather at {url}"
                target = verb.get("action")
                node = node_of(target)
                reached[node] = min(reached.get(node, presses), presses)
                for key in KEYS + JUNK:
                    queue.append(((target, key), presses + 1))
            elif verb.tag == "Redirect":
                queue.appendleft(((verb.text, None), presses))
                assert i == len(verbs) - 1
            elif verb.tag == "Hangup":
                stats["hangups"] += 1
                assert i == len(verbs) - 1
        assert verbs[-1].tag in ("Redirect", "Hangup"), f"dead end at {url} {digits!r}"
    stats["reached"] = reached
    return stats


def test_whole_call_graph(twilio, schema):
    stats = walk(twilio, schema)
    reached = stats["reached"]
    catalog = load_catalog(ROOT / "catalog.yaml")
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
    assert stats["hangups"] > 0  # silence and wrong keys end politely
    assert stats["requests"] > 1000
