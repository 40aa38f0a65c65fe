"""One thing the line can say: a key, a language and its text."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Utterance:
    key: str  # e.g. "menu.main.services", "service.barber-2-4-chairs.info"
    lang: str  # "km" or "en"
    text: str  # what is spoken, numbers already as words in Khmer
