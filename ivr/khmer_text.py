"""Preparing prompt text for TTS, and cutting it where a speech engine may safely pause.

gTTS sends at most 100 characters per request and cuts longer text only at Latin
punctuation and spaces. Khmer writes no spaces between words and ends sentences with ។ or ៕,
so gTTS would cut a long Khmer sentence in the middle of a word, or even between a consonant
and its vowel, and the caller would hear a broken syllable. `split_for_tts` cuts first at
sentence ends, then at spaces (or zero-width spaces, which Khmer writers use to mark word
breaks), then between words found by a Khmer word segmenter (khmercut, a CRF model), and
only as a last resort -- a single word longer than the limit -- between grapheme clusters,
never inside one.

gTTS adds a space after each ? and ! before it counts its 100 characters, so the lengths
here can be counted its way (`gtts_length`), and a piece that fits here fits there.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Callable

from ivr.khmer import spell_numbers

COENG = "\u17d2"  # subscript marker: the next consonant is written below and belongs here
ZWSP = "\u200b"
ZWNJ = "\u200c"
ZWJ = "\u200d"
SENTENCE_ENDS = "។៕?!"
# Where text may be cut: a space or a zero-width space. These are dropped at a cut.
BREAKS = " \t\r\n" + ZWSP
_BREAK_RUN = re.compile(f"[{re.escape(BREAKS)}]+")
# A sentence ends with one or more end marks (or a Latin full stop before a space).
_SENTENCE_END = re.compile(rf"(?:[{re.escape(SENTENCE_ENDS)}]+|\.(?=[{re.escape(BREAKS)}]))")
MIN_LIMIT = 10


def prepare(text: str, lang: str) -> str:
    """The text a TTS engine should read: Unicode NFC, single spaces, and for Khmer every
    number written as words (engines read "20,000" as digits or in English)."""
    text = unicodedata.normalize("NFC", text)
    if lang == "km":
        text = spell_numbers(text)
    text = re.sub(r"[ \t\r\n]+", " ", text)
    return text.strip(BREAKS)


def is_dependent(char: str) -> bool:
    """True for a character that belongs to the character before it and must never start a
    piece: Khmer dependent vowels and signs (any combining mark), coeng, and the joiners."""
    return unicodedata.category(char) in ("Mn", "Mc", "Me") or char in (COENG, ZWJ, ZWNJ)


def clusters(text: str) -> list[str]:
    """Grapheme clusters, Khmer style: a base character with its dependent vowels and signs,
    and with coeng plus the subscript consonant that follows it (which may carry more signs)."""
    result: list[str] = []
    for i, char in enumerate(text):
        joined = i > 0 and (is_dependent(char) or text[i - 1] in (COENG, ZWJ))
        if joined:
            result[-1] += char
        else:
            result.append(char)
    return result


TONE_MARKS = "?!？！"  # gTTS's tone_marks pre-processor adds a space after each


def gtts_length(text: str) -> int:
    """The length gTTS counts for `text`: one more for each ? or ! (the space it adds)."""
    return len(text) + sum(text.count(mark) for mark in TONE_MARKS)


def split_for_tts(text: str, limit: int = 100,
                  length: Callable[[str], int] = len) -> list[str]:
    """Cut `text` into pieces of at most `limit` characters (as `length` counts them),
    preferring sentence ends, then spaces and zero-width spaces (dropped at the cut), then
    Khmer word boundaries, and only then grapheme-cluster boundaries. Pieces are packed
    greedily, so short sentences share one piece (one request)."""
    if limit < MIN_LIMIT:
        raise ValueError(f"limit must be at least {MIN_LIMIT} characters, not {limit}")
    text = text.strip(BREAKS)
    if not text:
        return []
    return [piece for piece in _split(text, limit, 0, length) if piece]


def _can_start(text: str, index: int) -> bool:
    """A piece may start here (a stray mark after a space still belongs to what precedes)."""
    return index >= len(text) or not is_dependent(text[index])


def _sentences(text: str) -> list[tuple[str, str]]:
    """(sentence with its end marks, the spaces after it) pairs."""
    parts: list[tuple[str, str]] = []
    start = 0
    for match in _SENTENCE_END.finditer(text):
        end = match.end()
        gap = _BREAK_RUN.match(text, end)
        after = gap.end() if gap else end
        if not _can_start(text, after):
            continue
        parts.append((text[start:end], text[end:after]))
        start = after
    if start < len(text):
        parts.append((text[start:], ""))
    return [(chunk, sep) for chunk, sep in parts if chunk]


def _words(text: str) -> list[tuple[str, str]]:
    """(word, the spaces after it) pairs."""
    parts: list[tuple[str, str]] = []
    start = 0
    for match in _BREAK_RUN.finditer(text):
        if not _can_start(text, match.end()):
            continue
        parts.append((text[start:match.start()], match.group(0)))
        start = match.end()
    parts.append((text[start:], ""))
    return [(chunk, sep) for chunk, sep in parts if chunk]


def _clusters(text: str) -> list[tuple[str, str]]:
    return [(cluster, "") for cluster in clusters(text)]


@functools.lru_cache(maxsize=1)
def _segmenter() -> Callable[[str], list[str]]:
    from khmercut import tokenize

    return tokenize


def words(text: str) -> list[str]:
    """Khmer words (khmercut), each starting where a piece may start; "".join() of them is
    `text`. Without a segmenter's answer that keeps every character, the clusters."""
    tokens = _segmenter()(text)
    if "".join(tokens) != text:
        return clusters(text)
    result: list[str] = []
    for token in tokens:
        if result and token and not _can_start(token, 0):
            result[-1] += token  # a stray mark belongs to what precedes it
        elif token:
            result.append(token)
    return result


def _segmented(text: str) -> list[tuple[str, str]]:
    return [(word, "") for word in words(text)]


_LEVELS = (_sentences, _words, _segmented, _clusters)


def _split(text: str, limit: int, level: int, length: Callable[[str], int] = len
           ) -> list[str]:
    if length(text) <= limit:
        return [text]
    if level == len(_LEVELS):  # one cluster longer than the limit: cannot be cut safely
        return [text]
    pieces: list[str] = []
    current = ""
    separator = ""
    for chunk, sep in _LEVELS[level](text):
        if length(chunk) > limit:
            if current:
                pieces.append(current)
            pieces.extend(_split(chunk, limit, level + 1, length))
            current, separator = "", ""
            continue
        joined = current + separator + chunk if current else chunk
        if length(joined) <= limit:
            current = joined
        else:
            pieces.append(current)
            current = chunk
        separator = sep
    if current:
        pieces.append(current)
    return pieces
