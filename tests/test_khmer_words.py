"""Text cut for gTTS is never cut inside a Khmer word: not in any utterance of the bundled
catalogue, nor in its names run together without spaces (where only a word segmenter can
find a place to cut). Words are checked with the segmenter, khmercut."""

from __future__ import annotations

import re

import pytest
from khmercut import tokenize

from ivr.catalog import load_catalog
from ivr.khmer_text import BREAKS, gtts_length, prepare, split_for_tts
from ivr.render import GttsEngine, load_utterances
from tests.support import ROOT

LIMIT = GttsEngine.SPLIT_LIMIT
_BREAK = re.compile(f"[{re.escape(BREAKS)}]+")


def boundaries(run: str) -> set[int]:
    """Offsets in `run` (text without spaces) where one word ends and the next begins."""
    ends, at = set(), 0
    for token in tokenize(run):
        at += len(token)
        ends.add(at)
    return ends


def cuts_inside_words(text: str, pieces: list[str]) -> list[str]:
    """Each cut between two pieces that falls inside a word, shown as 'before|after'."""
    bad = []
    rest = text
    for piece, following in zip(pieces, pieces[1:] + [None], strict=True):
        at = rest.index(piece) + len(piece)
        left, rest = rest[:at], rest[at:]
        if following is None or _BREAK.match(rest) or _BREAK.search(left[-1:]):
            continue  # cut at a space: between words by definition
        # the run of text around the cut with no space in it
        start = max((m.end() for m in _BREAK.finditer(left)), default=0)
        end_match = _BREAK.search(rest)
        run = left[start:] + rest[:end_match.start() if end_match else len(rest)]
        if len(left) - start not in boundaries(run):
            bad.append(f"{left[-8:]}|{rest[:8]}")
    return bad


def test_no_utterance_is_cut_inside_a_word_and_every_piece_fits_gtts():
    cut = 0
    for u in load_utterances(ROOT / "catalog.yaml", ROOT / "prompts"):
        if u.lang != "km":
            continue
        text = prepare(u.text, u.lang)
        pieces = split_for_tts(text, LIMIT, gtts_length)
        cut += len(pieces) - 1
        assert all(gtts_length(p) <= LIMIT for p in pieces), (u.key, pieces)
        assert cuts_inside_words(text, pieces) == [], u.key
    assert cut > 20  # the long sentences are cut


def names_without_spaces() -> list[str]:
    catalog = load_catalog(ROOT / "catalog.yaml")
    names = [s.name["km"] for s in catalog.services()]
    names += [d["km"] for s in catalog.services() for d in (s.documents or ())]
    return sorted({prepare(n, "km").replace(" ", "") for n in names if len(n) > 40})


@pytest.mark.parametrize("limit", [40, 50, 60, 70, 80, 100])
def test_names_run_together_are_cut_between_words(limit):
    names = names_without_spaces()
    assert names
    cut = 0
    for name in names:
        pieces = split_for_tts(name, limit, gtts_length)
        assert "".join(pieces) == name
        cut += len(pieces) - 1
        assert cuts_inside_words(name, pieces) == [], (name, pieces)
    assert limit == 100 or cut > 0


def test_gtts_counts_a_space_after_a_question_mark():
    question = "ក" * 98 + "?"  # 99 characters, 100 as gTTS counts them
    assert gtts_length(question) == 100
    assert split_for_tts(question + " ខ", 100, gtts_length) == [question, "ខ"]
    longer = "ក" * 99 + "?"
    assert all(gtts_length(p) <= 100 for p in split_for_tts(longer, 100, gtts_length))
