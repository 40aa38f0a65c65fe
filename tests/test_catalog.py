"""The catalogue: the bundled one is valid and true to its sources; broken ones are refused
with the file, the line and the field named."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ivr import create_app
from ivr.catalog import CatalogError, FeeChoice, load_catalog
from tests.support import MINIMAL, ROOT, shared_dir


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "catalog.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def error_for(tmp_path: Path, text: str) -> CatalogError:
    with pytest.raises(CatalogError) as info:
        load_catalog(write(tmp_path, text))
    return info.value


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def test_minimal_catalogue_loads(tmp_path):
    catalog = load_catalog(write(tmp_path, MINIMAL))
    assert [s.id for s in catalog.services()] == ["copy"]
    assert catalog.office_by_code("0105").id == "town"


def test_bad_yaml_names_file_and_line(tmp_path):
    text = MINIMAL.replace("    level: district", "    level: [district")
    err = error_for(tmp_path, text)
    assert err.path.endswith("catalog.yaml") and err.line is not None
    assert str(tmp_path) in str(err)


def test_missing_field(tmp_path):
    text = MINIMAL.replace("    max_days: 3\n", "")
    err = error_for(tmp_path, text)
    assert "service 'copy'.max_days" in str(err) and "missing" in str(err)
    assert err.line == line_of(text, "- id: copy")


def test_duplicate_service_id(tmp_path):
    service = MINIMAL[MINIMAL.index("  - id: copy"):MINIMAL.index("survey:")]
    text = MINIMAL.replace("survey:", service + "survey:")
    err = error_for(tmp_path, text)
    assert "duplicate service id 'copy'" in str(err)
    assert err.line == text.splitlines().index("  - id: copy", line_of(text, "- id: copy")) + 1


def test_duplicate_key_in_a_mapping(tmp_path):
    text = MINIMAL.replace("    max_days: 3\n", "    max_days: 3\n    max_days: 4\n")
    err = error_for(tmp_path, text)
    assert "appears twice" in str(err) and err.line == line_of(text, "max_days: 4")


@pytest.mark.parametrize("bad", ["'1,000'", "1000.5", "-5", "cheap"])
def test_fee_that_is_not_a_number(tmp_path, bad):
    text = MINIMAL.replace("riel: 1000}", f"riel: {bad}}}")
    err = error_for(tmp_path, text)
    assert "service 'copy'.fee.riel" in str(err) and "whole number of riel" in str(err)
    assert err.line == line_of(text, "riel:")


def test_unknown_category(tmp_path):
    text = MINIMAL.replace("    category: papers", "    category: paper")
    err = error_for(tmp_path, text)
    assert "unknown category 'paper'" in str(err) and err.line == line_of(text, "category: paper")


def test_menu_that_cannot_be_reached_empty_category(tmp_path):
    text = MINIMAL.replace("services:", "  - id: empty\n    name: {km: ទទេ, en: empty}\nservices:")
    err = error_for(tmp_path, text)
    assert "category 'empty'" in str(err) and "empty menu" in str(err)
    assert err.line == line_of(text, "- id: empty")


def test_menu_that_cannot_be_reached_fee_table_over_eight_keys(tmp_path):
    options = "".join(f"        - label: {{km: ក{i}, en: size {i}}}\n          fee: {{type: flat, "
                      f"riel: {i}000}}\n" for i in range(1, 10))
    table = ("fee:\n      choose:\n        question: {km: 'ទំហំ?', en: 'Size?'}\n"
             f"        options:\n{options}")
    text = MINIMAL.replace("fee: {type: flat, riel: 1000}", table)
    err = error_for(tmp_path, text)
    assert "has 9 options" in str(err) and "one key" in str(err)


def test_text_missing_a_language(tmp_path):
    text = MINIMAL.replace("name: {km: ការចម្លង, en: a copy}", "name: {km: ការចម្លង}")
    err = error_for(tmp_path, text)
    assert "service 'copy'.name.en" in str(err) and err.line == line_of(text, "name: {km: ការចម្លង}")


def test_bad_catalogue_stops_start_up(tmp_path, settings):
    broken = write(tmp_path, MINIMAL.replace("riel: 1000}", "riel: lots}"))
    with pytest.raises(CatalogError, match="fee.riel"):
        create_app(settings, catalog=broken)


def test_placeholders_are_listed_with_their_lines(tmp_path):
    catalog = load_catalog(write(tmp_path, MINIMAL))
    where = {p.where for p in catalog.placeholders}
    assert where == {"office 'town'.hours", "office 'town'.ombudsman.phone",
                     "office 'town'.ombudsman.hours"}
    assert all(p.line == line_of(MINIMAL, "hours: PLACEHOLDER") or p.line ==
               line_of(MINIMAL, "ombudsman:") for p in catalog.placeholders)


# --- the bundled catalogue against its published sources --------------------------------

SHARED = shared_dir() / "data" / "owso_services.yaml"
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


def published_services() -> dict[str, dict]:
    if not SHARED.is_file():
        pytest.skip("shared/data is not beside this checkout")
    data = yaml.safe_load(SHARED.read_text(encoding="utf-8"))
    return {s["id"]: s for c in data["categories"] for s in c["services"]}


def amounts(fee) -> list[int]:
    if fee is None:
        return []
    if isinstance(fee, FeeChoice):
        return [a for o in fee.options for a in amounts(o.fee)]
    found = [p.riel for p in fee.parts] + [fee.riel] + [fee.discounted_riel]
    return [a for a in found if a is not None]


def test_bundled_catalogue_matches_the_published_facts():
    published = published_services()
    catalog = load_catalog(ROOT / "catalog.yaml")
    assert {s.id for s in catalog.services()} == set(SOURCE_IDS)
    for service in catalog.services():
        source = published[SOURCE_IDS[service.id]]
        # Khmer names are the published ones (at most shortened, never reworded).
        km = service.name["km"].replace(" ភូមិគ្រឹះ", "")
        assert source["km_name"].startswith(km), service.id
        text = yaml.safe_dump(source, allow_unicode=True)
        for riel in amounts(service.fee):  # every fee we speak is a published figure
            assert f"{riel}" in text.replace(",", ""), (service.id, riel)
        if service.max_days is not None:
            assert f"max_days: {service.max_days}" in text, service.id
        if service.source:
            assert service.source in text or service.source.rstrip("/") in text or \
                "source" not in source, service.id


def test_bundled_catalogue_has_five_offices_with_official_codes():
    catalog = load_catalog(ROOT / "catalog.yaml")
    assert len(catalog.offices) >= 5
    for office in catalog.offices:
        assert office.district_code.startswith(office.province.code)
        assert office.ombudsman.phone is None  # a PLACEHOLDER, never a made-up number
    placeholders = {p.where for p in catalog.placeholders}
    assert "office 'ou-chrov'.ombudsman.phone" in placeholders
    assert len({o.code for o in catalog.offices}) == len(catalog.offices)
