"""Gap 10 of TEST-GAPS.md, the catalogue: validation an administrator relies on when editing
catalog.yaml by hand, which no test checked. Each broken catalogue must be refused with the
field named as the administrator wrote it, what is wrong in plain words, and the line to fix,
one error for one mistake."""

from __future__ import annotations

import pytest

from ivr.catalog import load_catalog, problems_of
from tests.support import MINIMAL, catalogue_error, line_of, only_error, write_catalogue

TOWN_HOURS = "    hours: PLACEHOLDER (not published)\n    ombudsman:\n"
GENDER_OPTIONS = ("      options:\n        - {id: woman, label: {km: ស្ត្រី, en: a woman}}\n"
                  "        - {id: man, label: {km: បុរស, en: a man}}\n")
NINE_OPTIONS = "      options:\n" + "".join(
    f"        - {{id: o{i}, label: {{km: ជម្រើស{i}, en: option {i}}}}}\n" for i in range(1, 10))
MORE_PAPERS = "  - id: papers\n    name: {km: ឯកសារផ្សេង, en: more papers}\nservices:"

# (the text replaced, its replacement, the field named, what it says, the line's text and
# which line holding it is meant)
BROKEN = [
    # an office code callers cannot key in (catalog-0448)
    ('    code: "0105"', '    code: "1234567"', "office 'town'.code",
     "must be 1 to 6 digits a caller can key in, got '1234567'", 'code: "1234567"', 1),
    ('    code: "0105"', '    code: "01a5"', "office 'town'.code",
     "must be 1 to 6 digits a caller can key in, got '01a5'", 'code: "01a5"', 1),
    # a district office given its province's code, not a district's (catalog-0470)
    ('gazetteer_code: "0105"', 'gazetteer_code: "01"', "office 'town'.gazetteer_code",
     "'01' is not a district code of province 01 (4 digits starting with 01)",
     'gazetteer_code: "01"', 1),
    # two categories with one id: callers keying the second reach the first (catalog-0243)
    ("services:", MORE_PAPERS, "category 'papers'.id", "another category already has id "
     "'papers'", "- id: papers", 2),
    # no office at all (catalog-0492)
    (MINIMAL[MINIMAL.index("offices:"):], "offices: []\n", "offices",
     "must list at least one office", "offices: []", 1),
    # survey questions (catalog-0594, -0609)
    ("      optional: true", "      optional: maybe", "survey question 'gender'.optional",
     "must be true or false, got 'maybe'", "optional: maybe", 1),
    (GENDER_OPTIONS, GENDER_OPTIONS.rsplit("        -", 1)[0].rstrip() + "\n",
     "survey question 'gender'.options", "has 1 items; it needs at least 2", "options:", 1),
    (GENDER_OPTIONS, NINE_OPTIONS, "survey question 'gender'.options",
     "has 9 items; at most 8 fit one menu (callers choose with one key)", "options:", 1),
    (GENDER_OPTIONS, "", "survey question 'gender'.options",
     "is missing: a choice question needs 2 to 8 options", "- id: gender", 1),
    ("      type: scale\n", "      type: scale\n" + GENDER_OPTIONS,
     "survey question 'quality'.options", "only a choice question has options (this one is "
     "scale)", "options:", 1),
    # the longest message a caller may record (catalog-0650)
    ("  max_seconds: 60", "  max_seconds: 9", "complaints.max_seconds",
     "must be 10 to 600 seconds, got 9", "max_seconds", 1),
    ("  max_seconds: 60", "  max_seconds: 601", "complaints.max_seconds",
     "must be 10 to 600 seconds, got 601", "max_seconds", 1),
    # texts that are blank or not text (catalog-0164)
    ("{km: ឯកសារ, en: papers}", "{km: ឯកសារ, en: '   '}", "category 'papers'.name.en",
     "is empty: write the text", "en: '   '", 1),
    ("{km: ឯកសារ, en: papers}", "{km: ឯកសារ, en: true}", "category 'papers'.name.en",
     "must be text; true is read as a value, so put the text in quotes", "en: true", 1),
    ("{km: ឯកសារ, en: papers}", "{km: ឯកសារ, en: [a, b]}", "category 'papers'.name.en",
     "must be text; a list is read as a value", "en: [a, b]", 1),
    ("name: {km: ឯកសារ, en: papers}", "name: papers", "category 'papers'.name",
     "must give the text in each language (km, en), like {km: ..., ...}, got 'papers'",
     "name: papers", 1),
    ("legal_ref: unpublished\n    source: https://example.org/copy",
     "legal_ref: '  '\n    source: https://example.org/copy", "service 'copy'.legal_ref",
     "must be text, got '  '", "legal_ref: '  '", 1),
    ("legal_ref: unpublished\n    source: https://example.org/copy",
     "legal_ref: true\n    source: https://example.org/copy", "service 'copy'.legal_ref",
     "must be text, got true", "legal_ref: true", 1),
    ("    level: district", "    published_name: ' '\n    level: district",
     "service 'copy'.published_name", "must be text, got ' '", "published_name", 1),
    ("validity: unpublished\n    legal_ref: unpublished\n    source: https://example.org/copy",
     "validity: forever\n    legal_ref: unpublished\n    source: https://example.org/copy",
     "service 'copy'.validity", "must give the text in each language (km, en)",
     "validity: forever", 1),
    ("documents: unpublished\n    fee: {type: flat",
     "documents:\n      - {km: ពាក្យស្នើសុំ, en: a form}\n      - {km: ' ', en: a photo}\n"
     "    fee: {type: flat", "service 'copy'.documents[1].km", "is empty: write the text",
     "- {km: ' '", 1),
    ("    source: https://example.org/copy", "    source: example.org/copy",
     "service 'copy'.source", "must be the address of the published page (https://...), got "
     "'example.org/copy'", "source: example.org", 1),
    ("    source: https://example.org/copy",
     "    source:\n      - https://example.org/copy\n      - example.org/more",
     "service 'copy'.source[1]", "must be the address of the published page", "- example.org",
     1),
    ("fee: {type: flat, riel: 1000}", "fee: {type: flat, riel: 1000, foreigners_riel: lots}",
     "service 'copy'.fee.foreigners_riel", "must be a whole number of riel without separators",
     "foreigners_riel", 1),
    # list-level errors keep the line of their list (catalog-0116)
    (TOWN_HOURS, "    hours:\n      days: []\n      open: \"07:30\"\n      close: \"17:00\"\n"
     "    ombudsman:\n", "office 'town'.hours.days", "has 0 items; it needs at least 1",
     "days: []", 1),
    (TOWN_HOURS, "    hours:\n      days:\n        - mon\n        - friday\n"
     "      open: \"07:30\"\n      close: \"17:00\"\n    ombudsman:\n",
     "office 'town'.hours.days[1]", "must be one of mon, tue, wed, thu, fri, sat, sun (did you "
     "mean fri?), got 'friday'", "- friday", 1),
    ("public_holidays: [2027-01-07]", "public_holidays:\n  - 2027-01-07\n  - 2027-02-30",
     "public_holidays[1]", "2027-02-30 is not a day of the calendar", "- 2027-02-30", 1),
    (MINIMAL[MINIMAL.index("  questions:"):MINIMAL.index("complaints:")], "  questions: []\n",
     "survey.questions", "has 0 items; it needs at least 1", "questions: []", 1),
]


@pytest.mark.parametrize("old, new, where, says, at, nth", BROKEN,
                         ids=[f"{row[2]}: {row[3][:40]}" for row in BROKEN])
def test_a_broken_value_is_named_with_its_field_and_line(tmp_path, old, new, where, says, at,
                                                        nth):
    """The administrator sees one error for the one mistake, at the field as written in the
    file (not a name of the loader's), saying what to write, on the line to edit."""
    assert MINIMAL.count(old) == 1, old
    text = MINIMAL.replace(old, new)
    err = only_error(tmp_path, text)
    assert err.where == where, str(err)
    assert says in err.message, str(err)
    assert err.line == line_of(text, at, nth), str(err)


@pytest.mark.parametrize("seconds", [10, 600])
def test_the_longest_recording_may_be_10_or_600_seconds(tmp_path, seconds):
    """The limits the error message names are allowed themselves."""
    text = MINIMAL.replace("  max_seconds: 60", f"  max_seconds: {seconds}")
    assert load_catalog(write_catalogue(tmp_path, text)).max_recording_seconds == seconds


def test_an_empty_office_list_is_reported_with_the_other_errors(tmp_path):
    """Every error at once: emptying the office list and misspelling a number in the same
    edit gives both errors, not one now and the other after the first is fixed."""
    text = (MINIMAL[:MINIMAL.index("offices:")] + "offices: []\n").replace(
        "    max_days: 3", "    max_days: soon")
    found = problems_of(catalogue_error(tmp_path, text))
    assert [(e.where, e.line) for e in found] == [
        ("service 'copy'.max_days", line_of(text, "max_days: soon")),
        ("offices", line_of(text, "offices: []"))]
    assert found[1].message == "must list at least one office"


def test_a_value_that_is_neither_a_text_nor_unpublished_is_one_error(tmp_path):
    """A field that takes a text or `unpublished` names itself once; it does not add a second
    error saying it must be `unpublished`, nor name a member of the loader's types."""
    text = MINIMAL.replace("    documents: unpublished\n    fee: {type: flat",
                           "    documents: none\n    fee: {type: flat")
    err = only_error(tmp_path, text)
    assert (err.where, err.line) == ("service 'copy'.documents", line_of(text, "documents: none"))
    assert err.message == "must be a list (lines starting with '- '), got 'none'"
