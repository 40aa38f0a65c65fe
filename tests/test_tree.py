"""The phone tree (ivr.tree): every node declared once, each with one builder, its name
spelt nowhere else, and the modules of the line free of import cycles."""

from __future__ import annotations

import ast
import random
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import ivr.flow  # noqa: F401 - the menus attach their builders when the engine is imported
from ivr import tree
from ivr.catalog import load_catalog
from tests.support import ROOT

# Literals that are the same word as a node but another thing; each says what it is.
OTHER_MEANINGS = {
    ("ivr/flow.py", "main"): "the event '#' logs (the funnel's events)",
    ("ivr/admin/funnel.py", "main"): "the event '#' logs, read by the funnel",
    ("ivr/admin/web.py", "complaint"): "a recording's kind in the store (the cases filter)",
    ("ivr/catalog.py", "categories"): "the catalogue's YAML key",
    ("ivr/cases.py", "complaint"): "a recording's kind in the store",
    ("ivr/voice.py", "complaint"): "a recording's kind in the store",
    ("scripts/loadtest.py", "complaint"): "a kind of scripted call",
    ("scripts/seed_demo.py", "complaint"): "a recording's kind in the store",
}


def sources() -> list[Path]:
    return sorted((ROOT / "ivr").rglob("*.py"))


def modules() -> dict[str, Path]:
    """Every module of the package (subpackages too), by its dotted name."""
    found = {}
    for path in sources():
        parts = path.relative_to(ROOT).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if len(parts) > 1:
            found[".".join(parts)] = path
    return found


def literals(path: Path) -> Iterator[tuple[int, str]]:
    """Every string constant of a module (f-strings' fixed parts included), but docstrings."""
    module = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {id(node.body[0].value) for node in ast.walk(module)
                  if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef)
                  and node.body and isinstance(node.body[0], ast.Expr)}
    for node in ast.walk(module):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                and id(node) not in docstrings:
            yield node.lineno, node.value


def node_name_in(text: str) -> tree.Node | None:
    """The row whose name `text` spells, or begins (the fixed part of a name with parts)."""
    exact = next((row for row in tree.TABLE if text == row.pattern), None)
    return exact or next((row for row in tree.TABLE
                          if row.parts and text.startswith(row.kind + "/")), None)


def test_every_node_has_one_builder_and_a_label_in_each_language():
    assert [row.index for row in tree.TABLE] == list(range(len(tree.TABLE)))
    assert len({row.pattern for row in tree.TABLE}) == len(tree.TABLE)
    for row in tree.TABLE:
        assert row.build is not None, row
        assert set(row.label) == {"km", "en"} and all(row.label.values()), row
        with pytest.raises(ValueError):
            row.builder(row.build)


def test_names_resolve_to_their_rows_and_back():
    for row in tree.TABLE:
        parts = {part: "1" for part in row.parts}
        name = row.path(**parts)
        assert tree.resolve(name) == (row, parts)
        assert tree.kind(name) == row.kind
    assert tree.resolve("rate/q/2/3") is None and tree.resolve("nowhere") is None
    assert tree.resolve("service/x/fee/1.2") == (tree.FEE, {"service": "x", "path": "1.2"})
    assert tree.kind("nowhere") == "?"
    assert [row.main for row in tree.main_items()] == [
        ("1", "menu.main.services"), ("2", "menu.main.rate"), ("3", "menu.main.ombudsman"),
        ("4", "menu.main.complaint"), ("5", "menu.main.status")]


def test_every_node_name_is_spelt_in_the_table_only():
    """Outside tests, a node's name is a literal once: in its row. Menus, the engine, the
    load test and the demo seeder take it from the row."""
    found, spelt, other = [], {row.pattern: 0 for row in tree.TABLE}, set()
    for path in [*sources(), *(ROOT / "scripts").glob("*.py")]:
        where = str(path.relative_to(ROOT))
        for line, text in literals(path):
            row = node_name_in(text)
            if row is None:
                continue
            if (where, text) in OTHER_MEANINGS:
                other.add((where, text))
                continue
            if where == "ivr/tree.py" and text == row.pattern:
                spelt[text] += 1
            else:
                found.append(f"{where}:{line}: {text!r} ({row.pattern})")
    assert not found, "node names spelt outside ivr/tree.py:\n" + "\n".join(found)
    assert set(spelt.values()) == {1}, spelt
    assert other == set(OTHER_MEANINGS), "no longer there: drop them from OTHER_MEANINGS"


def test_the_admin_package_is_read_too():
    """The checks above cover ivr/admin/ (the funnel names nodes through the table)."""
    assert {"ivr.admin", "ivr.admin.funnel", "ivr.admin.web"} <= set(modules())
    assert ROOT / "ivr" / "admin" / "funnel.py" in sources()
    assert "ivr.tree" in import_graph()["ivr.admin.funnel"]


def test_tests_import_helpers_from_support_not_from_conftest():
    """Fixtures live in conftest.py; what a test imports lives in tests/support.py (or
    another helper module), never in conftest.py or in another test's module."""

    def forbidden(name: str) -> bool:
        name = name.removeprefix("tests.")
        return name == "conftest" or name.startswith("test_")

    found = []
    for path in sorted((ROOT / "tests").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else \
                [a.name for a in node.names] if isinstance(node, ast.Import) else []
            found += [f"{path.name}:{node.lineno}: {name}" for name in names if forbidden(name)]
    assert not found, found


def test_funnel_labels_and_order():
    catalog = load_catalog(ROOT / "catalog.yaml")
    service = next(catalog.services())
    assert tree.label(catalog, "rate/q/3", "en") == "Rating: question 3"
    assert tree.label(catalog, "rate/q/3", "km") == "វាយតម្លៃ៖ សំណួរទី 3"
    assert tree.label(catalog, "category/nope", "en") == "category/nope"
    assert tree.label(catalog, "nowhere", "km") == "nowhere"
    name = service.name["en"]
    assert tree.label(catalog, f"service/{service.id}/fee/1", "en") == \
        f"{name[:1].upper()}{name[1:]} – fee"
    names = ["case/123456", "rate/q/10", "main", "rate/q/2", "welcome", "nowhere",
             f"category/{catalog.categories[1].id}", f"category/{catalog.categories[0].id}"]
    assert sorted(names, key=lambda n: tree.order(catalog, n)) == [
        "welcome", "main", f"category/{catalog.categories[0].id}",
        f"category/{catalog.categories[1].id}", "rate/q/2", "rate/q/10", "case/123456",
        "nowhere"]


def import_graph() -> dict[str, set[str]]:
    """Module -> the ivr modules it imports anywhere (in functions and for typing too)."""
    graph: dict[str, set[str]] = {}
    names = modules()
    for module, path in names.items():
        edges = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                edges |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                submodules = {f"{node.module}.{a.name}" for a in node.names}
                if not submodules & set(names):  # `from pkg import sub` needs sub, not pkg
                    edges.add(node.module)
                edges |= submodules
        graph[module] = (edges & set(names)) - {module}
    return graph


def test_the_modules_import_one_way():
    """No circle among ivr's modules, counting imports made inside functions and those made
    for type checking only: a module never needs one that needs it."""
    graph = import_graph()
    visiting: list[str] = []
    done: set[str] = set()

    def visit(module: str) -> None:
        if module in done:
            return
        assert module not in visiting, " -> ".join([*visiting, module])
        visiting.append(module)
        for imported in sorted(graph[module]):
            visit(imported)
        visiting.pop()
        done.add(module)

    for module in graph:
        visit(module)
    assert "ivr.flow" not in graph["ivr.rating"] | graph["ivr.cases"] | graph["ivr.offices"]


def test_every_module_imports_alone_and_in_any_order():
    """Each module in a fresh interpreter of its own, then all of them in three orders."""
    names = sorted(modules())
    shuffled = names[:]
    random.Random(18).shuffle(shuffled)
    orders = [[name] for name in names] + [names, names[::-1], shuffled]
    runs = [subprocess.Popen([sys.executable, "-c", "import importlib, sys\n"
                              "for name in sys.argv[1:]: importlib.import_module(name)",
                              *order], cwd=ROOT, stderr=subprocess.PIPE, text=True)
            for order in orders]
    failed = []
    for order, run in zip(orders, runs, strict=True):
        _, err = run.communicate(timeout=300)
        if run.returncode:
            failed.append(f"{' '.join(order)}:\n{err[-800:]}")
    assert not failed, "\n".join(failed)


def test_a_main_menu_item_is_a_row_a_builder_and_its_prompts(tmp_path, monkeypatch):
    """What adding a main-menu item (6) takes: one row, one builder, a prompt line per language."""
    from ivr.audio import AudioLibrary
    from ivr.flow import CallFlow
    from ivr.prompts import PromptBook, load_wording
    from ivr.steps import Context, Menu, Position

    monkeypatch.setattr(tree, "TABLE", list(tree.TABLE))
    monkeypatch.setattr(tree, "_BY_HEAD", {k: list(v) for k, v in tree._BY_HEAD.items()})
    # the row
    status = tree.node("opinion", "មតិ", "Opinion", main=("6", "menu.main.opinion"))

    # the builder
    @status.builder
    def status_menu(flow: Context, pos: Position) -> Menu:
        return Menu(["menu.main.intro"], back=Position(pos.lang, tree.MAIN.path()))

    # the prompt lines
    for lang, line in (("en", "To give an opinion, press 6."),
                       ("km", "ដើម្បីផ្តល់មតិ សូមចុចលេខប្រាំមួយ។")):
        text = (ROOT / "prompts" / f"{lang}.yaml").read_text(encoding="utf-8")
        text = text.replace("\nsentences:\n", f"\nsentences:\n  menu.main.opinion: {line}\n", 1)
        (tmp_path / f"{lang}.yaml").write_text(text, encoding="utf-8")

    catalog = load_catalog(ROOT / "catalog.yaml")
    book = PromptBook(catalog, load_wording(tmp_path, catalog.languages))

    class Urls:
        key = ""

        def step(self, pos: Position, noinput: bool = False, gather: bool = False) -> str:
            return f"/{pos.lang}/{pos.node}"

        def audio(self, file: str) -> str:
            return file

        def recording_callback(self, pos: Position, kind: str) -> str:
            return ""

    flow = CallFlow(catalog, book, AudioLibrary(tmp_path / "audio"), Urls())
    main = str(flow.answer(Position("en", "main"), None).response)
    assert "press 5.</Say><Say language=\"en-US\">To give an opinion" in main
    assert '<Gather action="/en/opinion"' in str(flow.answer(Position("en", "main"), "6").response)
    assert tree.label(catalog, "opinion", "en") == "Opinion"
    assert tree.kind("opinion") == "opinion"
