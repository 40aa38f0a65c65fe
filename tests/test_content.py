"""What the line says is what the review of its Khmer and English asked for (shared/
KHMER-REVIEW.md): each test is a sentence a caller hears, in both languages where it matters."""

from __future__ import annotations

import pytest

from ivr.catalog import load_catalog
from ivr.prompts import PromptBook, load_wording
from tests.support import ROOT


@pytest.fixture(scope="module")
def book() -> PromptBook:
    catalog = load_catalog(ROOT / "catalog.yaml")
    return PromptBook(catalog, load_wording(ROOT / "prompts", catalog.languages))


def everything(book: PromptBook, lang: str) -> str:
    return "\n".join(u.text for u in book.utterances() if u.lang == lang)


def test_the_practical_exam_is_called_as_published(book):
    for service in ("licence-a-retest", "licence-b-retest"):
        assert "ប្រឡងដៃចង្កូត" in book.text(f"service.{service}.info", "km")
    assert "ប្រឡងអនុវត្ត" not in everything(book, "km")


def test_not_more_than_instead_of_a_learned_word(book):
    assert "អតិបរមា" not in everything(book, "km")
    assert "តម្លៃសេវាផ្លូវការ មិនលើសពី មួយពាន់រៀល ក្នុងមួយសន្លឹក។" in book.text(
        "service.notarize-business-certificate.info", "km")
    assert "រយៈពេលផ្តល់សេវា មិនលើសពី បីថ្ងៃធ្វើការ។" in book.text(
        "service.notarize-business-certificate.info", "km")


def test_the_concession_is_what_an_entitled_person_pays_instead_per_unit(book):
    en = book.text("service.notarize-business-certificate.info", "en")
    km = book.text("service.notarize-business-certificate.info", "km")
    assert "If you are entitled to the concession fee, you pay only 500 riel per sheet " \
           "instead." in en and "also applies" not in en
    assert "អ្នកដែលមានសិទ្ធិទទួលតម្លៃអនុគ្រោះ បង់ត្រឹមតែ ប្រាំរយរៀល ក្នុងមួយសន្លឹក។" in km
    table = book.text("service.transfer-unregistered-land-town.fee.1", "en")
    assert "you pay only 37,500 riel per transfer instead" in table


def test_the_ends_of_the_rating_scale_are_unambiguous(book):
    km = book.text("survey.scale.explain", "km")
    assert "លេខមួយ មានន័យថា មិនពេញចិត្តសោះ។" in km and "ពេញចិត្តខ្លាំងណាស់" in km
    assert "not satisfied at all" in book.text("survey.scale.explain", "en")


def test_a_recording_s_length_is_said_in_minutes(book):
    for key in ("complaint.notice", "ombudsman.notice"):
        assert "ពីរនាទី" in book.text(key, "km") and "វិនាទី" not in book.text(key, "km")
        assert "up to 2 minutes" in book.text(key, "en")


def test_transport_fees_are_for_citizens_and_foreigners_are_told(book):
    exam = book.text("service.licence-a-exam.info", "en")
    assert "This is the fee for Cambodian citizens. Foreigners pay 100,000 riel." in exam
    assert "Foreigners pay 180,000 riel." in book.text("service.licence-b-exam.info", "en")
    assert "តម្លៃនេះសម្រាប់ពលរដ្ឋខ្មែរ។ ជនបរទេសបង់ មួយសែនរៀល។" in book.text(
        "service.licence-a-exam.info", "km")
    for service in ("licence-a-retest", "licence-a-renew", "licence-b-retest",
                    "licence-b-renew"):
        assert "Foreigners pay a different fee" in book.text(f"service.{service}.info", "en")


def test_the_transport_ministry_s_documents_are_said_and_no_latin_x(book):
    exam = book.text("service.licence-a-exam.info", "en")
    assert "a medical fitness certificate" in exam and "four by six" in exam
    assert "There may be other documents" in exam
    km = book.text("service.licence-b-renew.info", "km")
    assert "លិខិតបញ្ជាក់កាយសម្បទា" in km and "ប័ណ្ណបើកបរចាស់" in km and "x" not in km


def test_offices_are_said_with_their_unit(book):
    assert book.text("office.poipet.connecting", "km") == \
        "កំពុងភ្ជាប់អ្នកទៅការិយាល័យប្រជាពលរដ្ឋក្រុងប៉ោយប៉ែត។ សូមរង់ចាំ។"
    assert "ស្រុកបវេល" in book.text("office.bavel.choice", "km")
    assert "ខណ្ឌឫស្សីកែវ" in book.text("office.russey-keo.choice", "km")
    assert "ក្រុង ស្រុក ឬខណ្ឌ" in book.text("menu.main.ombudsman", "km")


def test_the_hash_key_has_its_common_name_and_its_place(book):
    km = everything(book, "km")
    assert "សញ្ញាការ៉េ" not in km and "សញ្ញាទ្រុង" in km
    assert "សញ្ញាទ្រុង ដែលនៅខាងស្តាំលេខសូន្យ" in book.text("nav.hint", "km")
    assert "hash, right of 0" in book.text("nav.hint", "en")


def test_no_promise_the_line_cannot_keep(book):
    # who listens is what the admin roles allow (tests/test_admin_roles.py): nobody else
    for lang in ("km", "en"):
        notice = book.text("complaint.notice", lang)
        assert "confidential" not in notice and "សម្ងាត់" not in notice
    assert "wall" not in everything(book, "en")
    assert "If you know your district code" in book.text("office.how", "en")


def test_spoken_names_say_what_the_service_is(book):
    assert "លិខិតអនុញ្ញាតបើកហាងកាត់សក់បុរស" in book.text("service.barber-2-4-chairs.choice", "km")
    assert "នីត្យានុកូលកម្ម" in book.text("service.notarize-business-permit.choice", "km")
    assert "ដំណើការ" not in everything(book, "km")
    assert "(" not in book.text("service.rental-rooms.info", "km")


def test_a_fee_table_says_the_days_before_its_question(book):
    info = book.text("service.construction-permit-villa.info", "en")
    assert info.index("25 working days") < info.index("Please answer the next question")
    assert book.text("service.construction-permit-villa.fee.1.2", "en").startswith(
        "A building outside town")
