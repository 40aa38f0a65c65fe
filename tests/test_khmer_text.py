"""Khmer text for TTS: numbers as words, and pieces that never cut a word's cluster."""

from __future__ import annotations

import re
import unicodedata
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ivr.khmer_text import clusters, prepare, split_for_tts

WELCOME = (
    "សូមស្វាគមន៍មកកាន់ខ្សែទូរស័ព្ទព័ត៌មានអំពីសេវារបស់ការិយាល័យច្រកចេញចូលតែមួយ។ "
    "ដើម្បីស្តាប់ជាភាសាខ្មែរ សូមចុចលេខមួយ។ For English, press two. "
    "សេវានេះមិនគិតថ្លៃទេ ហើយព័ត៌មានទាំងអស់មកពីបញ្ជីសេវាផ្លូវការរបស់ក្រសួងមហាផ្ទៃ៕"
)
PRIVACY = (
    "សាររបស់អ្នកជាការសម្ងាត់។ មានតែការិយាល័យប្រជាពលរដ្ឋ "
    "និងមន្ត្រីដែលដោះស្រាយបណ្តឹងប៉ុណ្ណោះដែលនឹងស្តាប់សារនេះ ដើម្បីពិនិត្យបណ្តឹងរបស់អ្នក។ "
    "យើងមិនរក្សាទុកលេខទូរស័ព្ទរបស់អ្នកទេ។ ក្រោយពេលឮសំឡេងប៊ីប "
    "សូមនិយាយមិនលើសពី មួយរយម្ភៃវិនាទី រួចចុចសញ្ញាការ៉េ។"
)
# One long sentence with no space at all: only cluster boundaries are left to cut at.
NO_SPACES = (
    "ការិយាល័យច្រកចេញចូលតែមួយផ្តល់សេវារដ្ឋបាលជាច្រើនដល់ប្រជាពលរដ្ឋនៅថ្នាក់ស្រុក"
    "ដោយមានតម្លាភាពនិងគណនេយ្យភាពហើយប្រជាពលរដ្ឋអាចដាក់ពាក្យបណ្តឹងបានគ្រប់ពេលវេលា"
    "តាមរយៈការិយាល័យប្រជាពលរដ្ឋនៃស្រុកខណ្ឌរបស់ខ្លួនផ្ទាល់។"
)
TEXTS = [WELCOME, PRIVACY, NO_SPACES]
WHITESPACE = re.compile("[\\s\u200b]")


def starts_badly(piece: str) -> bool:
    """A piece must not start with a dependent vowel or sign, nor with coeng."""
    return unicodedata.category(piece[0]) in ("Mn", "Mc") or piece[0] == "\u17d2"


def check_pieces(text: str, pieces: list[str], limit: int) -> None:
    assert pieces, "nothing to speak"
    assert all(0 < len(p) <= limit for p in pieces), [len(p) for p in pieces]
    assert WHITESPACE.sub("", "".join(pieces)) == WHITESPACE.sub("", text)
    for before, after in pairwise(pieces):
        assert not starts_badly(after), (before, after)
        assert not before.endswith("\u17d2"), (before, after)
    assert all(p == p.strip(" \u200b") for p in pieces)


@pytest.mark.parametrize("text", TEXTS, ids=["welcome", "privacy", "no-spaces"])
@pytest.mark.parametrize("limit", [100, 60, 37, 20])
def test_pieces_fit_rejoin_and_never_start_inside_a_cluster(text: str, limit: int) -> None:
    check_pieces(text, split_for_tts(text, limit), limit)


def test_cuts_at_sentence_ends_when_sentences_fit() -> None:
    sentences = ["សាររបស់អ្នកជាការសម្ងាត់។", "យើងមិនរក្សាទុកលេខទូរស័ព្ទរបស់អ្នកទេ។",
                 "ដើម្បីស្តាប់ជាភាសាខ្មែរ សូមចុចលេខមួយ។"]
    assert split_for_tts(" ".join(sentences), 50) == sentences


def test_short_sentences_share_a_piece() -> None:
    text = "សូមចុចលេខមួយ។ សូមចុចលេខពីរ។"
    assert split_for_tts(text, 100) == [text]


def test_a_sentence_too_long_is_cut_at_spaces_first() -> None:
    pieces = split_for_tts(PRIVACY, 40)
    check_pieces(PRIVACY, pieces, 40)
    words = set(WHITESPACE.split(PRIVACY))
    # Only the one 53-character run without a space is cut between clusters, in two.
    cut_inside_words = [p for p in pieces if not set(WHITESPACE.split(p)) <= words]
    assert len(cut_inside_words) == 2
    assert "".join(cut_inside_words) == "និងមន្ត្រីដែលដោះស្រាយបណ្តឹងប៉ុណ្ណោះដែលនឹងស្តាប់សារនេះ"


def test_zero_width_spaces_are_word_breaks() -> None:
    words = ["ការិយាល័យ", "ច្រកចេញចូល", "តែមួយ", "ផ្តល់", "សេវា", "រដ្ឋបាល"] * 3
    text = "\u200b".join(words)
    pieces = split_for_tts(text, 30)
    check_pieces(text, pieces, 30)
    for piece in pieces:  # every piece is whole words
        assert all(word in words for word in piece.split("\u200b"))


def test_a_cluster_with_subscripts_stays_whole() -> None:
    assert clusters("ស្ត្រី") == ["ស្ត្រី"]
    assert clusters("កម្ពុជា") == ["ក", "ម្ពុ", "ជា"]
    assert clusters("ខ្ញុំ") == ["ខ្ញុំ"]


def test_empty_and_blank_text_has_no_pieces() -> None:
    assert split_for_tts("") == []
    assert split_for_tts(" \u200b ") == []


def test_prepare_speaks_khmer_numbers_as_words() -> None:
    spoken = prepare("តម្លៃសេវា 5,000 រៀល  ក្នុងរយៈពេល ១៥ ថ្ងៃ", "km")
    assert "ប្រាំពាន់" in spoken and "ដប់ប្រាំ" in spoken
    assert not re.search(r"[0-9០-៩]", spoken)
    assert "  " not in spoken


def test_prepare_leaves_english_numbers_to_the_engine() -> None:
    assert prepare("  The fee is 5,000 riel.\n", "en") == "The fee is 5,000 riel."


KHMER_LETTERS = [chr(c) for c in range(0x1780, 0x17DE)] + [" ", "\u200b", "។"]


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=KHMER_LETTERS, min_size=1, max_size=400), st.integers(10, 120))
def test_any_khmer_text_is_cut_safely(text: str, limit: int) -> None:
    pieces = split_for_tts(text, limit)
    if not WHITESPACE.sub("", text):
        assert pieces == []
        return
    assert WHITESPACE.sub("", "".join(pieces)) == WHITESPACE.sub("", text)
    for piece in pieces:
        longest_cluster = max(len(c) for c in clusters(piece))
        assert len(piece) <= max(limit, longest_cluster)
    for after in pieces[1:]:  # random text may start with a mark; later pieces never do
        assert not starts_badly(after)
