"""Khmer numbers as words, because TTS reads "20,000" badly and callers hear amounts, not digits.

Khmer counts with its own units above a thousand: ម៉ឺន (10 000), សែន (100 000) and លាន
(1 000 000), so 20 000 riel is "ពីរម៉ឺនរៀល" and 1 500 000 is "មួយលានប្រាំសែន".
"""

from __future__ import annotations

import re

ONES = ["សូន្យ", "មួយ", "ពីរ", "បី", "បួន", "ប្រាំ", "ប្រាំមួយ", "ប្រាំពីរ", "ប្រាំបី", "ប្រាំបួន"]
TENS = ["", "ដប់", "ម្ភៃ", "សាមសិប", "សែសិប", "ហាសិប", "ហុកសិប", "ចិតសិប", "ប៉ែតសិប", "កៅសិប"]
# (value, word), largest first; លាន may itself be multiplied by a number of any size.
UNITS = [(100_000, "សែន"), (10_000, "ម៉ឺន"), (1_000, "ពាន់"), (100, "រយ")]
KHMER_DIGITS = "០១២៣៤៥៦៧៨៩"
_TO_ASCII = str.maketrans(KHMER_DIGITS, "0123456789")


def number_words(n: int) -> str:
    """Spell a non-negative integer in Khmer words, e.g. 37500 -> "បីម៉ឺនប្រាំពីរពាន់ប្រាំរយ"."""
    if n < 0:
        raise ValueError(f"cannot spell a negative number: {n}")
    if n == 0:
        return ONES[0]
    return _below_a_million_or_more(n)


def _below_a_million_or_more(n: int) -> str:
    words = []
    millions, rest = divmod(n, 1_000_000)
    if millions:
        words.append(_below_a_million_or_more(millions) + "លាន")
    for value, word in UNITS:
        count, rest = divmod(rest, value)
        if count:
            words.append(ONES[count] + word)
    tens, ones = divmod(rest, 10)
    if tens:
        words.append(TENS[tens])
    if ones:
        words.append(ONES[ones])
    return "".join(words)


def khmer_digits(n: int | str) -> str:
    """Write a number with Khmer digits, e.g. 2017 -> "២០១៧" (for text shown, not spoken)."""
    return str(n).translate(str.maketrans("0123456789", KHMER_DIGITS))


def digits_one_by_one(reference: str) -> str:
    """Read a reference number digit by digit, as callers key it in: "4071" -> "បួន សូន្យ ប្រាំពីរ មួយ"."""
    return " ".join(ONES[int(d)] for d in reference.translate(_TO_ASCII) if d.isdigit())


_D = "[0-9០-៩]"
# "5,000", "5 000" and "5000" are one number; "1 3" (two numbers) is not.
_NUMBER = re.compile(rf"{_D}{{1,3}}(?:[,\u00a0 ]{_D}{{3}})+(?!{_D})|{_D}+")


def spell_numbers(text: str) -> str:
    """Replace every number in Khmer text (Latin or Khmer digits, thousands separated by
    commas or spaces) with its words, so TTS never reads digits or separators."""

    def words(match: re.Match[str]) -> str:
        raw = match.group(0)
        digits = re.sub(r"[,\u00a0 ]", "", raw).translate(_TO_ASCII)
        return number_words(int(digits))

    return _NUMBER.sub(words, text)
