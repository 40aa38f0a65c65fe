"""Fees and day counts as Khmer words: checked against published OWSO amounts."""

import pytest

from ivr.khmer import digits_one_by_one, number_words, spell_numbers

PUBLISHED = [
    # working days from service cards
    (3, "បី"), (5, "ប្រាំ"), (7, "ប្រាំពីរ"), (10, "ដប់"), (15, "ដប់ប្រាំ"),
    (25, "ម្ភៃប្រាំ"), (28, "ម្ភៃប្រាំបី"),
    # fees in riel
    (500, "ប្រាំរយ"), (1000, "មួយពាន់"), (5000, "ប្រាំពាន់"), (7500, "ប្រាំពីរពាន់ប្រាំរយ"),
    (20000, "ពីរម៉ឺន"), (30000, "បីម៉ឺន"), (37500, "បីម៉ឺនប្រាំពីរពាន់ប្រាំរយ"),
    (50000, "ប្រាំម៉ឺន"), (75000, "ប្រាំពីរម៉ឺនប្រាំពាន់"), (90000, "ប្រាំបួនម៉ឺន"),
    (100000, "មួយសែន"), (200000, "ពីរសែន"), (420000, "បួនសែនពីរម៉ឺន"),
    (560000, "ប្រាំសែនប្រាំមួយម៉ឺន"), (980000, "ប្រាំបួនសែនប្រាំបីម៉ឺន"),
    (1000000, "មួយលាន"), (1400000, "មួយលានបួនសែន"), (1500000, "មួយលានប្រាំសែន"),
]


@pytest.mark.parametrize("number, words", PUBLISHED)
def test_published_amounts_are_spoken_as_khmer_words(number, words):
    assert number_words(number) == words


def test_small_and_irregular_numbers():
    assert number_words(0) == "សូន្យ"
    assert number_words(11) == "ដប់មួយ"
    assert number_words(21) == "ម្ភៃមួយ"
    assert number_words(101) == "មួយរយមួយ"
    assert number_words(2017) == "ពីរពាន់ដប់ប្រាំពីរ"
    assert number_words(12_000_000) == "ដប់ពីរលាន"
    with pytest.raises(ValueError):
        number_words(-1)


def test_numbers_inside_text_with_separators_and_khmer_digits():
    assert spell_numbers("តម្លៃ 5,000 រៀល") == "តម្លៃ ប្រាំពាន់ រៀល"
    assert spell_numbers("១ ៥០០ ០០០ រៀល") == "មួយលានប្រាំសែន រៀល"
    assert spell_numbers("ចំនួន ១ច្បាប់ ក្នុង ៣ ថ្ងៃ") == "ចំនួន មួយច្បាប់ ក្នុង បី ថ្ងៃ"


def test_reference_numbers_are_read_digit_by_digit():
    assert digits_one_by_one("407105") == "បួន សូន្យ ប្រាំពីរ មួយ សូន្យ ប្រាំ"
