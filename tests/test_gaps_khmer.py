"""Khmer tens from 30 to 90, which no published amount of the bundled catalogue needs yet
(TEST-GAPS.md, gap 8): 30 or 45 working days must still be read right."""

from __future__ import annotations

import pytest

from ivr.khmer import khmer_digits, number_words, spell_numbers

TENS = [(30, "សាមសិប"), (40, "សែសិប"), (50, "ហាសិប"), (60, "ហុកសិប"), (70, "ចិតសិប"),
        (80, "ប៉ែតសិប"), (90, "កៅសិប")]


@pytest.mark.parametrize("number, words", TENS)
def test_every_tens_word(number, words):
    assert number_words(number) == words
    assert number_words(number + 5) == words + "ប្រាំ"


def test_tens_inside_larger_numbers_and_sentences():
    assert number_words(345) == "បីរយសែសិបប្រាំ"
    assert number_words(99_000) == "ប្រាំបួនម៉ឺនប្រាំបួនពាន់"
    assert number_words(1_000_090) == "មួយលានកៅសិប"
    assert spell_numbers("រយៈពេល ៤៥ ថ្ងៃ") == "រយៈពេល សែសិបប្រាំ ថ្ងៃ"
    assert spell_numbers("30 ថ្ងៃ") == "សាមសិប ថ្ងៃ"


def test_numbers_written_with_khmer_digits():
    assert khmer_digits(2017) == "២០១៧" and khmer_digits("0105") == "០១០៥"
