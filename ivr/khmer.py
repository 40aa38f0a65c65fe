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


def number_values(n: int) -> list[int]:
    """The words of `number_words(n)` as the values they name, in order, so a number can be
    said from one recording per word: 37500 -> [3, 10000, 7, 1000, 5, 100] (បី ម៉ឺន ប្រាំពីរ
    ពាន់ ប្រាំ រយ); 12 000 000 -> [10, 2, 1000000]."""
    if n < 0:
        raise ValueError(f"cannot spell a negative number: {n}")
    if n == 0:
        return [0]
    values: list[int] = []
    millions, rest = divmod(n, 1_000_000)
    if millions:
        values += [*number_values(millions), 1_000_000]
    for value, _ in UNITS:
        count, rest = divmod(rest, value)
        if count:
            values += [count, value]
    tens, ones = divmod(rest, 10)
    if tens:
        values.append(tens * 10)
    if ones:
        values.append(ones)
    return values


def value_word(value: int) -> str:
    """The Khmer word of one value `number_values` gives: 3 -> "បី", 10000 -> "ម៉ឺន"."""
    if 0 <= value <= 9:
        return ONES[value]
    if value < 100 and value % 10 == 0:
        return TENS[value // 10]
    words = {**dict(UNITS), 1_000_000: "លាន"}
    if value not in words:
        raise ValueError(f"{value} is not one Khmer number word")
    return words[value]


# Every value one Khmer number word names: with these recorded, any number can be said.
WORD_VALUES = [*range(10), *range(10, 100, 10), 100, 1_000, 10_000, 100_000, 1_000_000]

# English, for the same composition: "37,500" -> thirty seven thousand five hundred.
ENGLISH_WORDS = {
    **dict(enumerate("zero one two three four five six seven eight nine ten eleven twelve "
                     "thirteen fourteen fifteen sixteen seventeen eighteen nineteen".split())),
    **{10 * t: w for t, w in enumerate("twenty thirty forty fifty sixty seventy eighty "
                                       "ninety".split(), start=2)},
    100: "hundred", 1_000: "thousand", 1_000_000: "million",
}


def english_values(n: int) -> list[int]:
    """The words of `n` said in English, as values: 37500 -> [30, 7, 1000, 5, 100]."""
    if n < 0:
        raise ValueError(f"cannot spell a negative number: {n}")
    if n == 0:
        return [0]

    def below_1000(k: int) -> list[int]:
        hundreds, rest = divmod(k, 100)
        out = [hundreds, 100] if hundreds else []
        if 0 < rest < 20:
            out.append(rest)
        elif rest:
            out += [rest - rest % 10] + ([rest % 10] if rest % 10 else [])
        return out

    values: list[int] = []
    for scale in (1_000_000, 1_000):
        count, n = divmod(n, scale)
        if count:
            values += [*(english_values(count) if count >= 1000 else below_1000(count)),
                       scale]
    return values + below_1000(n)


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
