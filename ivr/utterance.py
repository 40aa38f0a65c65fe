"""One thing the line can say: a key, a language and its text, and what it is made of."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Utterance:
    key: str  # e.g. "menu.main.services", "service.barber-2-4-chairs.info"
    lang: str  # "km" or "en"
    text: str  # what is spoken, numbers already as words in Khmer
    # The keys of the smaller utterances (fixed phrases, number words, unit words, names)
    # this one is said with, in order, when its own audio is missing or stale; () for an
    # utterance that is one piece (a fixed sentence, a word, a name).
    parts: tuple[str, ...] = ()
