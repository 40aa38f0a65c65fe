"""Every sentence the line builds from the catalogue can be said from its parts, and its parts
say what the sentence says (Khmer: the same words in the same order)."""

from __future__ import annotations

import re

from ivr.catalog import load_catalog
from ivr.check import recordings_needed
from ivr.khmer import WORD_VALUES, number_values, number_words, value_word
from ivr.prompts import PromptBook, load_wording
from tests.support import ROOT

_NOT_SAID = re.compile(r"[\s\u200b។៕.,;:៖?!()]+")


def book() -> PromptBook:
    catalog = load_catalog(ROOT / "catalog.yaml")
    return PromptBook(catalog, load_wording(ROOT / "prompts", catalog.languages))


def test_every_filled_in_sentence_has_parts_that_say_the_same():
    prompts = book()
    fixed = {(k, lang) for lang, table in prompts.wording.sentences.items() for k in table}
    for u in prompts.utterances():
        if (u.key, u.lang) in fixed or prompts.only_part(u.key, u.lang):
            continue
        if u.key.startswith("digit."):
            continue
        assert u.parts, f"{u.key} [{u.lang}] cannot be said from parts"
        assert all(prompts.has(p, u.lang) and not prompts.parts(p, u.lang) for p in u.parts)
        if u.lang == "km":
            said = "".join(prompts.text(p, "km") for p in u.parts)
            assert _NOT_SAID.sub("", said) == _NOT_SAID.sub("", u.text), u.key


def test_a_fee_is_its_phrase_its_number_words_and_its_unit():
    prompts = book()
    parts = prompts.parts("service.barber-2-4-chairs.fee.reminder", "km")
    assert [prompts.text(p, "km") for p in parts] == [
        "តម្លៃសេវាផ្លូវការ គឺ", "ពីរ", "ម៉ឺន", "រៀល", "ក្នុងមួយច្បាប់"]
    english = prompts.parts("service.barber-2-4-chairs.fee.reminder", "en")
    assert [prompts.text(p, "en") for p in english] == [
        "The official fee is", "twenty", "thousand", "riel", "per licence"]


def test_every_khmer_number_word_is_an_utterance():
    prompts = book()
    for value in WORD_VALUES:
        key = f"digit.{value}" if value < 10 else f"number.{value}"
        assert prompts.text(key, "km") == value_word(value)
    for n in (0, 7, 15, 500, 7500, 37500, 420000, 1_400_000, 12_000_000):
        assert "".join(value_word(v) for v in number_values(n)) == number_words(n)


def test_a_voice_talent_records_fewer_utterances_than_sentences():
    leaves, whole = recordings_needed(book())["km"]
    assert len(leaves) < whole


def test_a_phrase_that_is_also_a_fixed_sentence_is_one_recording(tmp_path):
    """An administrator's wording where a template's phrase is a fixed sentence word for
    word: the sentence's recording says it, and the wording still loads."""
    import shutil

    for name in ("km.yaml", "en.yaml"):
        shutil.copyfile(ROOT / "prompts" / name, tmp_path / name)
    km = tmp_path / "km.yaml"
    old = "  documents.incomplete: ប្រហែលជាត្រូវការឯកសារផ្សេងទៀត។ សូមសួរនៅការិយាល័យ។\n"
    text = km.read_text(encoding="utf-8")
    assert old in text
    km.write_text(text.replace(old, "  documents.incomplete: សូមអភ័យទោស យើងមិនបានទទួល"
                                    "ការចុចលេខពីអ្នកទេ។\n"), encoding="utf-8")
    catalog = load_catalog(ROOT / "catalog.yaml")
    prompts = PromptBook(catalog, load_wording(tmp_path, catalog.languages))
    users = [u for u in prompts.utterances() if "error.noinput" in u.parts]
    assert users and all(u.key.endswith(".info") for u in users)
