"""Key presses: every office of the catalogue can be reached through the province and
district menus, and the figures the README gives are the ones scripts/measure_keys.py
measures (a catalogue or menu change that alters them fails here until the README says so)."""

from __future__ import annotations

import importlib.util
import re

import pytest

from tests.support import ROOT


@pytest.fixture(scope="module")
def measured() -> dict:
    spec = importlib.util.spec_from_file_location("measure_keys", ROOT / "scripts/measure_keys.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    return script.measure(ROOT / "catalog.yaml")


def test_every_office_is_reached_by_province_and_district(measured):
    from ivr.catalog import load_catalog

    catalog = load_catalog(ROOT / "catalog.yaml")
    assert measured["unreachable"] == []
    assert set(measured["offices"]) == {o.id for o in catalog.offices}
    assert measured["office_summary"]["count"] == len(catalog.offices) == 235


def row(readme: str, start: str) -> list[str]:
    line = next(line for line in readme.splitlines() if line.startswith(f"| {start}"))
    return [cell.strip() for cell in line.strip("|").split("|")]


def test_the_readme_gives_the_measured_figures(measured):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "at most four key presses" not in readme
    for start, key in (("a service's documents", "service_summary"),
                       ("one fee of a fee table", "fee_summary"),
                       ("an office by province and district", "office_summary")):
        figures = measured[key]
        assert row(readme, start)[2:] == [f"{figures[k]:g}" for k in ("fewest", "median",
                                                                       "worst")], start
    assert row(readme, "an office by its code")[2:] == [str(measured["by_code"])] * 3
    flat = re.sub(r"\s+", " ", readme)
    for presses, offices in measured["office_summary"]["spread"].items():
        assert f"{offices} take {presses}" in flat or f"{offices} offices take {presses}" in flat
