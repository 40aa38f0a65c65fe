#!/usr/bin/env python
"""Mutation testing of the call flow, the webhooks and the store (not part of the CI suite).

    python scripts/mutation.py                       # the five modules, every mutant
    python scripts/mutation.py --all                 # and ivr/steps.py, ivr/browse.py
    python scripts/mutation.py ivr/rating.py         # some modules
    python scripts/mutation.py --sample 40           # 40 random mutants per module
    python scripts/mutation.py --reuse-map --survivors --max-tests 100   # survivors again
    python scripts/mutation.py --show 'ivr/cases.py:after_dial:'   # mutants' diffs
    python scripts/mutation.py --list                # every mutant's key

A mutant is one small change to a module (a comparison flipped, a number + 1, a string
changed, `and`/`or` swapped, a condition negated, a call statement deleted, `break`/`continue`
swapped, a returned value replaced by None). Each mutant runs only against the tests that
execute its line (found once with coverage, one context per test, over every test file but
NOT_MAPPED's, which run the code in other processes; `--reuse-map` keeps that map and maps only
test files new to it), at most --max-tests of them (first those that run the rare lines around
it and those that killed another mutant of its function in the last run, then the fastest;
tests slower than --max-test-seconds are left out), in a
process forked from one that has the libraries and the unaffected ivr modules loaded (and the
catalogue read once per content), with `-x`: the first failing test kills it. For a line run
only at import (a constant, a default, a decorator) the tests are those of the lines that use
what it defines. A mutant whose tests run longer than 3 x their mapped time + 10 s is killed
as a time-out. A mutant on a line that no selected test executes survives unrun ("no tests").
The old tests run before tests/test_gaps_*.py, so "before" (killed without the gap tests) comes
from the same run.

Not mutated: docstrings, the text of log messages and of exceptions raised, annotations,
floats (timings).

Mutants reviewed as equivalent (no caller, administrator or later process could notice them)
are listed, with a reason each, in scripts/mutation-equivalent.txt by their key
(`module:function:mutation:occurrence`, stable when other code moves); the score leaves them
out. Results go to instance/mutation/results.json, a table per module to stdout.

Needs `coverage` (pip install -e '.[mutation]'). Runs niced; `--jobs` mutants at a time.
"""

from __future__ import annotations

import argparse
import ast
import difflib
import importlib.abc
import importlib.util
import json
import os
import select
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
MODULES = ["ivr/voice.py", "ivr/store.py", "ivr/flow.py", "ivr/rating.py", "ivr/cases.py"]
# the former flow.py (split at 1c92b43) is also in ivr/steps.py (the menus' shared parts) and
# ivr/browse.py (greeting, main menu, services): `--all` adds them
FORMER_FLOW = ["ivr/steps.py", "ivr/browse.py"]
# every test file but those that cannot see a mutant, because they run the code from disk in
# other processes (gunicorn, nginx, a worker, a browser against a server) or read only files
NOT_MAPPED = {
    "tests/test_admin_browser.py", "tests/test_phone_browser.py",
    "tests/test_status_browser.py", "tests/test_voice_studio_browser.py",  # Chromium + server
    "tests/test_deploy.py", "tests/test_loadtest.py", "tests/test_startup.py",  # gunicorn
    "tests/test_worker_kill.py", "tests/test_concurrency.py", "tests/test_admin_throttle.py",
    "tests/test_outbound_worker.py", "tests/test_compose.py",  # worker / server processes
    "tests/test_tree.py",  # reads the source, runs none of it
    "tests/test_callgraph.py",  # the whole call graph: minutes, and slower than MAX_TEST_SECONDS
}
TEST_FILES = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "tests").glob("test_*.py")
                    if str(p.relative_to(ROOT)) not in NOT_MAPPED
                    and not p.name.startswith("test_gaps_"))
NEW_TESTS = "tests/test_gaps_"  # tests added with this script: run last, so "before" is known
MAX_TEST_SECONDS = 8.0  # slower tests are left out of the selection
MAX_TESTS = 12  # per mutant: the fastest of those that execute its line (the new ones last)
OUT = ROOT / "instance" / "mutation"
EQUIVALENT = ROOT / "scripts" / "mutation-equivalent.txt"
LOG_NAMES = {"debug", "info", "warning", "error", "exception", "critical"}


# --- mutants -------------------------------------------------------------------------------

COMPARE = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt,
           ast.Eq: ast.NotEq, ast.NotEq: ast.Eq, ast.Is: ast.IsNot, ast.IsNot: ast.Is,
           ast.In: ast.NotIn, ast.NotIn: ast.In}
BINOP = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult,
         ast.FloorDiv: ast.Mult, ast.Pow: ast.Mult, ast.Mod: ast.FloorDiv,
         ast.BitOr: ast.BitAnd, ast.BitAnd: ast.BitOr}
SYMBOL = {ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "==",
          ast.NotEq: "!=", ast.Is: "is", ast.IsNot: "is not", ast.In: "in", ast.NotIn: "not in",
          ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//",
          ast.Pow: "**", ast.Mod: "%", ast.BitOr: "|", ast.BitAnd: "&", ast.And: "and",
          ast.Or: "or"}


@dataclass
class Mutant:
    key: str  # module:function:mutation:occurrence
    module: str
    line: int
    function: str
    what: str
    index: int  # the site's place in the walk of the module
    status: str = ""  # killed, timeout, survived, no tests, equivalent
    killer: str = ""  # the first test that failed
    tests: int = 0
    seconds: float = 0.0
    reason: str = ""  # why it is equivalent


class Sites(ast.NodeVisitor):
    """Walk a module, numbering every place a mutation applies; with `apply`, make the
    mutation at that number in place (the tree is then compiled)."""

    def __init__(self, apply: int | None = None):
        self.apply = apply
        self.found: list[tuple[int, str, str]] = []  # (line, function, what)
        self.scope: list[str] = []
        self.skip: set[int] = set()  # ids of constants not to mutate
        self.jump: ast.stmt | None = None  # a break or continue to swap (in its parent)

    def site(self, node: ast.AST, what: str) -> bool:
        """Record a site; True when it is the one to apply."""
        self.found.append((getattr(node, "lineno", 0), ".".join(self.scope) or "<module>",
                           what))
        return self.apply == len(self.found) - 1

    # scopes, and what is not mutated
    def _scoped(self, node: Any) -> None:
        body = node.body
        if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                and isinstance(body[0].value.value, str):
            self.skip.add(id(body[0].value))
            body[0].skip_delete = True
        self.scope.append(node.name)
        for field_name in ("decorator_list", "body"):
            for child in getattr(node, field_name, []):
                self.visit(child)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for default in [*node.args.defaults, *node.args.kw_defaults]:
                if default is not None:
                    self.visit(default)
        self.scope.pop()

    visit_FunctionDef = visit_AsyncFunctionDef = visit_ClassDef = _scoped

    def visit_Module(self, node: ast.Module) -> None:
        if node.body and isinstance(node.body[0], ast.Expr) and \
                isinstance(node.body[0].value, ast.Constant):
            self.skip.add(id(node.body[0].value))
            node.body[0].skip_delete = True  # type: ignore[attr-defined]
        self.generic_visit(node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        return

    def visit_Import(self, node: ast.Import) -> None:
        return

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if node.value is not None:
            self.visit(node.value)

    def visit_Assign(self, node: ast.Assign) -> None:
        if any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
            return
        self.generic_visit(node)

    def visit_Raise(self, node: ast.Raise) -> None:
        if isinstance(node.exc, ast.Call):
            for arg in node.exc.args:
                self._no_strings(arg)
        self.generic_visit(node)

    def _no_strings(self, node: ast.AST) -> None:
        for sub in ast.walk(node):
            if isinstance(sub, ast.Constant) and isinstance(sub.value, str):
                self.skip.add(id(sub))

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr in LOG_NAMES and \
                isinstance(func.value, ast.Name) and func.value.id in ("log", "logging"):
            for arg in node.args:
                self._no_strings(arg)
        self.generic_visit(node)

    # the mutations
    def visit_Compare(self, node: ast.Compare) -> None:
        for i, op in enumerate(node.ops):
            other = COMPARE.get(type(op))
            if other and self.site(node, f"{SYMBOL[type(op)]} -> {SYMBOL[other]}"):
                node.ops[i] = other()
        self.generic_visit(node)

    def visit_BinOp(self, node: ast.BinOp) -> None:
        other = BINOP.get(type(node.op))
        if other and not (isinstance(node.op, ast.Mod) and isinstance(node.left, ast.Constant)):
            if self.site(node, f"{SYMBOL[type(node.op)]} -> {SYMBOL[other]}"):
                node.op = other()
        self.generic_visit(node)

    def visit_BoolOp(self, node: ast.BoolOp) -> None:
        other = ast.Or if isinstance(node.op, ast.And) else ast.And
        if self.site(node, f"{SYMBOL[type(node.op)]} -> {SYMBOL[other]}"):
            node.op = other()
        self.generic_visit(node)

    def visit_UnaryOp(self, node: ast.UnaryOp) -> None:
        if isinstance(node.op, ast.Not) and self.site(node, "not x -> x"):
            node.op = ast.UAdd()  # +x of a bool is its int: truthiness unchanged
            node.operand = ast.Call(ast.Name("bool", ast.Load()), [node.operand], [])
        self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> None:
        value = node.value
        if id(node) in self.skip:
            return
        if isinstance(value, bool):
            if self.site(node, f"{value} -> {not value}"):
                node.value = not value
        elif isinstance(value, int):
            if self.site(node, f"{value} -> {value + 1}"):
                node.value = value + 1
        elif isinstance(value, str):
            short = value if len(value) <= 30 else value[:27] + "..."
            if self.site(node, f"{short!r} -> 'XX..XX'"):
                node.value = f"XX{value}XX"

    def _negate(self, node: Any, what: str) -> None:
        if self.site(node, what):
            node.test = ast.UnaryOp(ast.Not(), node.test)

    def visit_If(self, node: ast.If) -> None:
        if not (isinstance(node.test, ast.UnaryOp) and isinstance(node.test.op, ast.Not)):
            self._negate(node, "if c -> if not c")  # (`if not c` has its own: not x -> x)
        self.generic_visit(node)

    def visit_While(self, node: ast.While) -> None:
        if not (isinstance(node.test, ast.Constant) and node.test.value is True):
            self._negate(node, "while c -> while not c")
        self.generic_visit(node)

    def visit_IfExp(self, node: ast.IfExp) -> None:
        self._negate(node, "a if c else b -> a if not c else b")
        self.generic_visit(node)

    def visit_Expr(self, node: ast.Expr) -> None:
        if isinstance(node.value, ast.Call) and not getattr(node, "skip_delete", False):
            if self.site(node, f"delete {_call_name(node.value)}(...)"):
                node.value = ast.Constant(None)
                return
        self.generic_visit(node)

    def visit_Break(self, node: ast.Break) -> None:
        if self.site(node, "break -> continue"):
            self.jump = node

    def visit_Continue(self, node: ast.Continue) -> None:
        if self.site(node, "continue -> break"):
            self.jump = node

    def visit_Return(self, node: ast.Return) -> None:
        if node.value is not None and not (isinstance(node.value, ast.Constant)
                                           and node.value.value is None):
            if self.site(node, "return x -> return None"):
                node.value = ast.Constant(None)
                return
        self.generic_visit(node)


def _call_name(call: ast.Call) -> str:
    func = call.func
    if isinstance(func, ast.Attribute):
        return func.attr
    if isinstance(func, ast.Name):
        return func.id
    return "call"


def mutants_of(module: str) -> list[Mutant]:
    source = (ROOT / module).read_text()
    sites = Sites()
    sites.visit(ast.parse(source))
    seen: Counter[tuple[str, str]] = Counter()
    found = []
    for index, (line, function, what) in enumerate(sites.found):
        seen[(function, what)] += 1
        key = f"{module}:{function}:{what}:{seen[(function, what)]}"
        found.append(Mutant(key, module, line, function, what, index))
    return found


def mutated_tree(module: str, index: int) -> ast.Module:
    tree = ast.parse((ROOT / module).read_text())
    sites = Sites(apply=index)
    sites.visit(tree)
    if sites.jump is not None:  # break <-> continue: the statement itself is replaced
        for node in ast.walk(tree):
            for _, value in ast.iter_fields(node):
                if isinstance(value, list) and any(v is sites.jump for v in value):
                    i = next(i for i, v in enumerate(value) if v is sites.jump)
                    value[i] = ast.Continue() if isinstance(sites.jump, ast.Break) \
                        else ast.Break()
    return ast.fix_missing_locations(tree)


def diff_of(module: str, index: int) -> str:
    before = ast.unparse(ast.parse((ROOT / module).read_text())).splitlines()
    after = ast.unparse(mutated_tree(module, index)).splitlines()
    return "\n".join(difflib.unified_diff(before, after, module, f"{module} (mutant)", n=1,
                                          lineterm=""))


# --- which tests execute which line --------------------------------------------------------

def coverage_map(test_files: list[str], modules: list[str], target: Path) -> dict[str, Any]:
    """Run the tests once under coverage, one context per test: the tests of each line,
    and each test's duration."""
    OUT.mkdir(parents=True, exist_ok=True)
    program = f"""
import json, sys, time, coverage, pytest
cov = coverage.Coverage(data_file={str(target.with_suffix('.coverage'))!r},
                        include={[str(ROOT / m) for m in modules]!r})
durations = {{}}
class Contexts:
    def pytest_runtest_setup(self, item):
        cov.switch_context(item.nodeid)
    def pytest_runtest_logreport(self, report):
        durations[report.nodeid] = durations.get(report.nodeid, 0) + report.duration
        if report.failed:
            durations.setdefault("__failed__", []).append(report.nodeid)
cov.start()
rc = pytest.main([*{test_files!r}, "-q", "-p", "no:cacheprovider", "-o", "addopts="],
                 plugins=[Contexts()])
cov.stop(); cov.save()
data = cov.get_data()
lines = {{}}
for path in data.measured_files():
    module = path[len({str(ROOT)!r}) + 1:]
    lines[module] = {{str(n): sorted(c for c in ctx if c)
                     for n, ctx in data.contexts_by_lineno(path).items()}}
json.dump({{"rc": int(rc), "lines": lines, "durations": durations}},
          open({str(target)!r}, "w"))
"""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-c", program], cwd=ROOT, env=env, check=False)
    return json.loads(target.read_text())


# --- running a mutant ----------------------------------------------------------------------

class MutantFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports the mutated module in place of the real one."""

    def __init__(self, name: str, path: Path, code: Any):
        self.name, self.path, self.code = name, path, code

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if fullname != self.name:
            return None
        return importlib.util.spec_from_file_location(fullname, self.path, loader=self)

    def create_module(self, spec: Any) -> None:
        return None

    def exec_module(self, module: Any) -> None:
        exec(self.code, module.__dict__)


def dependents(module: str) -> set[str]:
    """The ivr modules that import `module` at their top level, directly or not (with it)."""
    imports: dict[str, set[str]] = {}
    for path in (ROOT / "ivr").rglob("*.py"):
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        found = set()
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("ivr"):
                found.add(node.module)
                found |= {f"{node.module}.{a.name}" for a in node.names}
            elif isinstance(node, ast.Import):
                found |= {a.name for a in node.names if a.name.startswith("ivr")}
        imports[name] = found
    target = module_name(module)
    result = {target}
    changed = True
    while changed:
        changed = False
        for name, found in imports.items():
            if name not in result and found & result:
                result.add(name)
                changed = True
    return result


def module_name(module: str) -> str:
    return ".".join(Path(module).with_suffix("").parts)


def zygote_imports(module: str) -> None:
    """Load what every mutant of `module` shares: the libraries, and the ivr modules that do
    not depend on it (a fork then needs to import only the rest)."""
    import flask  # noqa: F401
    import pytest  # noqa: F401
    import sqlite_utils  # noqa: F401
    import twilio.twiml.voice_response  # noqa: F401
    import yaml  # noqa: F401

    for optional in ("lxml.etree", "hypothesis", "pydantic", "werkzeug.test", "jinja2",
                     "flask_babel", "argon2", "requests", "xmlschema", "jsonschema"):
        try:
            __import__(optional)
        except ImportError:
            pass
    avoid = dependents(module)
    for path in sorted((ROOT / "ivr").rglob("*.py")):
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        if name in avoid or name == "ivr" or name.startswith("ivr.admin"):
            continue
        if any(dep in avoid for dep in _lazy_parents(name)):
            continue
        try:
            __import__(name)
        except Exception:
            pass
    # the catalogue, read once per content (every test's create_app reads it: half a
    # second each); a broken one still raises every time
    import hashlib

    import ivr.catalog

    real_load = ivr.catalog.load_catalog
    kept: dict[tuple[str, str], Any] = {}

    def load_catalog(path: Path | str) -> Any:
        key = (str(Path(path).resolve()), hashlib.sha1(Path(path).read_bytes()).hexdigest())
        if key not in kept:
            kept[key] = real_load(path)
        return kept[key]

    ivr.catalog.load_catalog = load_catalog  # type: ignore[assignment]
    for name in list(sys.modules):  # nothing that holds the real module may stay
        if name in avoid or (name.startswith("tests") and name != "tests"):
            sys.modules.pop(name, None)


def _lazy_parents(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def run_mutant(mutant: Mutant, tests: list[str], timeout: float) -> tuple[str, str, float]:
    """Fork, import the mutant, run `tests` with -x: (status, first failing test, seconds)."""
    tree = mutated_tree(mutant.module, mutant.index)
    code = compile(tree, str(ROOT / mutant.module), "exec")
    read, write = os.pipe()
    started = time.monotonic()
    pid = os.fork()
    if pid == 0:  # the child
        os.close(read)
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            os.dup2(devnull, 2)
            os.setpgid(0, 0)
            sys.meta_path.insert(0, MutantFinder(module_name(mutant.module),
                                                 ROOT / mutant.module, code))
            import pytest

            class First:
                def pytest_runtest_logreport(self, report: Any) -> None:
                    if report.failed:
                        os.write(write, (report.nodeid + "\n").encode())

            rc = pytest.main([*tests, "-x", "-q", "-p", "no:cacheprovider", "-o", "addopts=",
                              "-W", "ignore"], plugins=[First()])
            os._exit(int(rc))
        except BaseException as exc:  # the mutant breaks the import itself: killed
            os.write(write, f"import: {exc!r}\n".encode()[:500])
            os._exit(3)
    os.close(write)
    output = b""
    status = ""
    deadline = started + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            os.waitpid(pid, 0)
            status = "timeout"
            break
        ready, _, _ = select.select([read], [], [], min(left, 0.5))
        if ready:
            chunk = os.read(read, 4096)
            if chunk:
                output += chunk
                continue
        done, code_ = os.waitpid(pid, os.WNOHANG)
        if done:
            rc = os.waitstatus_to_exitcode(code_)
            status = "survived" if rc in (0, 5) else "killed"
            if rc == 5:
                status = "no tests"
            break
    while True:  # what is left in the pipe
        ready, _, _ = select.select([read], [], [], 0)
        if not ready:
            break
        chunk = os.read(read, 4096)
        if not chunk:
            break
        output += chunk
    os.close(read)
    try:  # a test's helper processes (a server) go with it
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    killer = output.decode(errors="replace").splitlines()[0] if output else ""
    return status, killer, time.monotonic() - started


# --- the run -------------------------------------------------------------------------------

def equivalents() -> dict[str, str]:
    found: dict[str, str] = {}
    if EQUIVALENT.exists():
        for line in EQUIVALENT.read_text().splitlines():
            if line.strip() and not line.startswith("#"):
                key, _, reason = line.partition("  # ")
                found[key.strip()] = reason.strip()
    return found


def users_of(module: str, line: int) -> set[int]:
    """The lines that use what the top-level statement at `line` defines (a constant, a
    function's default, a class's decorator run at import, when no test is running)."""
    tree = ast.parse((ROOT / module).read_text())
    names: set[str] = set()
    for node in tree.body:
        first = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))])
        if first <= line <= (node.end_lineno or node.lineno):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
                continue
            for sub in ast.walk(node):
                if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store):
                    names.add(sub.id)
    used = {sub.lineno for sub in ast.walk(tree)
            if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Load) and sub.id in names
            and sub.lineno != line}
    for node in tree.body:  # a decorator (a route): the tests of the function it decorates
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and any(
                d.lineno <= line <= (d.end_lineno or d.lineno) for d in node.decorator_list):
            used |= {sub.lineno for stmt in node.body for sub in ast.walk(stmt)
                     if hasattr(sub, "lineno")}
    return used


def import_lines(module: str) -> set[int]:
    """The lines run when the module is imported: top-level statements, decorators and the
    lines of a def (its defaults)."""
    found: set[int] = set()
    for node in ast.parse((ROOT / module).read_text()).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            for d in node.decorator_list:
                found |= set(range(d.lineno, (d.end_lineno or d.lineno) + 1))
            body = node.body[0].lineno if node.body else node.lineno + 1
            found |= set(range(node.lineno, body))
        else:
            found |= set(range(node.lineno, (node.end_lineno or node.lineno) + 1))
    return found


def select_tests(mutant: Mutant, covered: dict[str, dict[str, list[str]]],
                 durations: dict[str, float], limit: float, most: int,
                 killers: dict[str, set[str]] | None = None, known: str = "") -> list[str]:
    by_line = covered.get(mutant.module, {})
    tests = by_line.get(str(mutant.line), [])
    if not tests or mutant.line in import_lines(mutant.module):
        # run at import (a constant, a default, a route): also where what it defines is used
        tests = sorted({*tests, *(t for n in users_of(mutant.module, mutant.line)
                                  for t in by_line.get(str(n), []))})
    fast = [t for t in tests if durations.get(t, 0) <= limit]
    # the tests that killed other mutants of the same function (the last run) first, then
    # the fastest: among hundreds that execute a line, those most likely to see a change
    near = (killers or {}).get(f"{mutant.module}:{mutant.function}", set())
    # and the tests that run the lines around it that few tests run (the branch a condition
    # chooses, the value a line stores): a test that reaches a rare line sees it changed
    rare: dict[str, float] = defaultdict(float)
    for n in range(mutant.line - 2, mutant.line + 9):
        around = by_line.get(str(n), [])
        for t in around:
            rare[t] += 1 / len(around)

    def order(t: str) -> tuple[float, float]:
        return -(rare[t] + (0.5 if t in near else 0)), durations[t]

    old = sorted((t for t in fast if not t.startswith(NEW_TESTS)), key=order)
    new = sorted((t for t in fast if t.startswith(NEW_TESTS)), key=order)
    # the tests added for the gaps last: a mutant they alone kill survived the old suite
    # the test that killed this very mutant before runs first of its group, mapped to its
    # line or not (a default read only by another module's call is mapped to no test of it)
    if known and durations.get(known, limit + 1) <= limit:
        group = new if known.startswith(NEW_TESTS) else old
        group[:] = [known] + [t for t in group if t != known]
    return old[:most] + new[:most]


def table(mutants: list[Mutant], modules: list[str], before: dict[str, str] | None = None
          ) -> str:
    rows = ["| module | mutants | killed | survived | no tests | equivalent "
            "| score (non-equivalent) |" + (" before |" if before else ""),
            "|---|---:|---:|---:|---:|---:|---:|" + ("---:|" if before else "")]
    totals: Counter[str] = Counter()
    old_totals: Counter[str] = Counter()
    for module in [*modules, "total"]:
        mine = [m for m in mutants if module == "total" or m.module == module]
        if module == "total":
            counts = totals
        else:
            counts = Counter("killed" if m.status == "timeout" else m.status for m in mine)
            counts["all"] = len(mine)
            totals.update(counts)
        live = counts["all"] - counts["equivalent"]
        score = f"{100 * counts['killed'] / live:.1f} %" if live else "-"
        row = (f"| {module} | {counts['all']} | {counts['killed']} | {counts['survived']} | "
               f"{counts['no tests']} | {counts['equivalent']} | **{score}** |")
        if before:
            if module == "total":
                old = old_totals
            else:
                old = Counter("killed" if before.get(m.key) == "killed" else "x" for m in mine
                              if m.status != "equivalent")
                old_totals.update(old)
            alive = sum(old.values())
            row += f" {100 * old['killed'] / alive:.1f} % |" if alive else " - |"
        rows.append(row)
    return "\n".join(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="*")
    parser.add_argument("--all", action="store_true", help="also " + ", ".join(FORMER_FLOW))
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--survivors", action="store_true",
                        help="run again only the mutants that survived the last run")
    parser.add_argument("--only", action="append", default=[], help="a mutant key (prefix)")
    parser.add_argument("--only-file", type=Path,
                        help="run the mutants whose keys this file lists, one a line "
                        "(scripts/mutation-gaps.txt: the mutants of TEST-GAPS.md in today's code)")
    parser.add_argument("--show", help="print the diff of the mutants whose key starts so")
    parser.add_argument("--list", action="store_true", help="list the mutants, run nothing")
    parser.add_argument("--reuse-map", action="store_true",
                        help="the coverage map of the last run; test files it lacks are mapped "
                        "now and added")
    parser.add_argument("--remap", action="append", default=[],
                        help="with --reuse-map: a test file to map again (it changed)")
    parser.add_argument("--max-test-seconds", type=float, default=MAX_TEST_SECONDS)
    parser.add_argument("--max-tests", type=int, default=MAX_TESTS)
    parser.add_argument("--sample", type=int, default=0,
                        help="run only this many mutants per module, drawn at random (the "
                        "same ones for the same --seed); the others are left out of the figures")
    parser.add_argument("--seed", type=int, default=19)
    parser.add_argument("--out", type=Path, default=OUT / "results.json",
                        help="the results file (read by --survivors, written at the end)")
    parser.add_argument("--killers", type=Path, nargs="+", default=[],
                        help="results files of earlier runs (an --only run's, in another "
                        "checkout) whose killing tests are tried first")
    parser.add_argument("--report", type=Path, nargs="+",
                        help="print the table of these results files (merged), run nothing")
    args = parser.parse_args()
    if args.only_file:
        args.only += [line.split("  #")[0].strip()
                      for line in args.only_file.read_text().splitlines()
                      if line.strip() and not line.startswith("#")]
    modules = [str(Path(m)) for m in args.modules] or MODULES + (FORMER_FLOW if args.all else [])
    if args.report:
        return report(args.report, equivalents())

    mutants = [m for module in modules for m in mutants_of(module)]
    if args.sample:
        import random

        chosen: list[Mutant] = []
        for module in modules:
            mine = [m for m in mutants if m.module == module]
            chosen += sorted(random.Random(f"{args.seed}:{module}").sample(
                mine, min(args.sample, len(mine))), key=lambda m: m.index)
        mutants = chosen
    if args.show:
        for m in mutants:
            if m.key.startswith(args.show):
                print(f"# {m.key} (line {m.line})\n{diff_of(m.module, m.index)}\n")
        return 0
    if args.list:
        for m in mutants:
            print(f"{m.key}  (line {m.line})")
        return 0
    try:
        os.nice(10)
    except OSError:
        pass
    results_path = args.out
    last: dict[str, dict] = {}
    if results_path.exists():
        last = {r["key"]: r for r in json.loads(results_path.read_text())["mutants"]}
    equivalent = equivalents()

    started = time.monotonic()
    map_path = OUT / "coverage-map.json"
    files = sorted({*TEST_FILES, *(str(p.relative_to(ROOT))
                                   for p in (ROOT / "tests").glob("test_gaps_*.py"))})
    if args.reuse_map and map_path.exists():
        cover = json.loads(map_path.read_text())
        mapped = {t.split("::")[0] for t in cover["durations"] if t != "__failed__"}
        files = [f for f in files if f not in mapped or f in args.remap]
        if files:  # test files new since the map (or changed): mapped now, and added
            print(f"coverage map of {files} ...", flush=True)
            extra = coverage_map(files, MODULES + FORMER_FLOW,
                                 map_path.with_name("coverage-extra.json"))
            for by_line in cover["lines"].values():
                for n, tests in by_line.items():
                    by_line[n] = [t for t in tests if t.split("::")[0] not in files]
            for module, by_line in extra["lines"].items():
                for n, tests in by_line.items():
                    cover["lines"].setdefault(module, {}).setdefault(n, []).extend(tests)
            cover["durations"] = {k: v for k, v in cover["durations"].items()
                                  if k.split("::")[0] not in files}
            failed = extra["durations"].pop("__failed__", [])
            cover["durations"].update(extra["durations"])
            cover["durations"]["__failed__"] = [
                *(t for t in cover["durations"].get("__failed__", [])
                  if t.split("::")[0] not in files), *failed]
            map_path.write_text(json.dumps(cover))
    else:
        print(f"coverage map: {len(files)} test files ...", flush=True)
        cover = coverage_map(files, MODULES + FORMER_FLOW, map_path)
    if cover["durations"].get("__failed__"):
        print("tests failing without a mutant (left out):", cover["durations"]["__failed__"])
    failing = set(cover["durations"].pop("__failed__", []))
    durations = {k: v for k, v in cover["durations"].items() if k not in failing}
    lines = {m: {n: [t for t in ts if t not in failing] for n, ts in v.items()}
             for m, v in cover["lines"].items()}
    print(f"coverage map ready after {time.monotonic() - started:.0f} s", flush=True)

    killers: dict[str, set[str]] = defaultdict(set)
    killed_by: dict[str, str] = {}
    earlier = [r for path in args.killers for r in json.loads(path.read_text())["mutants"]]
    for record in [*earlier, *last.values()]:
        if record["status"] in ("killed", "timeout") and "::" in record["killer"]:
            killers[f"{record['module']}:{record['function']}"].add(record["killer"])
            killed_by[record["key"]] = record["killer"]
    todo: list[tuple[Mutant, list[str]]] = []
    for m in mutants:
        if m.key in equivalent:
            m.status, m.reason = "equivalent", equivalent[m.key]
            continue
        previous = last.get(m.key)
        if args.only and not any(m.key.startswith(p) for p in args.only):
            if previous:
                m.status, m.killer = previous["status"], previous["killer"]
            continue
        if args.survivors and previous and previous["status"] in ("killed", "timeout"):
            m.status, m.killer = previous["status"], previous["killer"]
            continue
        tests = select_tests(m, lines, durations, args.max_test_seconds, args.max_tests,
                             killers, killed_by.get(m.key, ""))
        if not tests:
            m.status = "no tests"
            continue
        todo.append((m, tests))

    print(f"{len(mutants)} mutants, {len(todo)} to run", flush=True)
    by_module: dict[str, list[tuple[Mutant, list[str]]]] = defaultdict(list)
    for m, tests in todo:
        by_module[m.module].append((m, tests))
    # the smaller modules first (their figures come early), the former flow code last
    for module, work in sorted(by_module.items(), key=lambda item: (
            item[0] not in MODULES, len(item[1]))):
        run_module(module, work, durations, args.jobs)
        save(results_path, modules, started, mutants)  # what is known so far

    before = {m.key: ("killed" if m.status in ("killed", "timeout")
                      and not m.killer.startswith(NEW_TESTS) else "survived")
              for m in mutants}
    save(results_path, modules, started, mutants)
    print(f"\n{time.monotonic() - started:.0f} s; results in {results_path}")
    shown = [m for m in mutants if m.status]  # (with --only: those run, or run before)
    print(table(shown, [m for m in modules if any(x.module == m for x in shown)], before))
    print("\n('before': killed by the tests that are not tests/test_gaps_*.py)")
    survivors = [m for m in mutants if m.status in ("survived", "no tests")]
    if survivors:
        print(f"\n{len(survivors)} surviving:")
        for m in survivors:
            print(f"  {m.key}  (line {m.line}, {m.status})")
    return 0


def report(paths: list[Path], equivalent: dict[str, str]) -> int:
    """The table of earlier runs (the later file wins for a mutant in several)."""
    found: dict[str, Mutant] = {}
    modules: list[str] = []
    for path in paths:
        data = json.loads(path.read_text())
        modules += [m for m in data["modules"] if m not in modules]
        for record in data["mutants"]:
            if record["status"]:
                found[record["key"]] = Mutant(**record)
    mutants = list(found.values())
    for m in mutants:
        if m.key in equivalent:
            m.status, m.reason = "equivalent", equivalent[m.key]
    before = {m.key: ("killed" if m.status in ("killed", "timeout")
                      and not m.killer.startswith(NEW_TESTS) else "survived")
              for m in mutants}
    modules = [m for m in modules if any(x.module == m for x in mutants)]
    print(table(mutants, modules, before))
    print("\n('before': killed by the tests that are not tests/test_gaps_*.py)")
    for m in mutants:
        if m.status in ("survived", "no tests"):
            print(f"  {m.key}  (line {m.line}, {m.status})")
    return 0


def save(path: Path, modules: list[str], started: float, mutants: list[Mutant]) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"modules": modules, "seconds": time.monotonic() - started,
                                "mutants": [asdict(m) for m in mutants]}, indent=1))


def run_module(module: str, work: list[tuple[Mutant, list[str]]],
               durations: dict[str, float], jobs: int) -> None:
    """One zygote per module (its dependents not imported), forking a child per mutant."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        os.chdir(ROOT)
        sys.path.insert(0, str(ROOT))
        os.environ.setdefault("IVR_SHARED", "/work/shared")
        zygote_imports(module)
        out = os.fdopen(write, "w")
        slices = [work[i::jobs] for i in range(jobs)]
        children = []
        for part in slices:
            r, w = os.pipe()
            child = os.fork()
            if child == 0:
                os.close(r)
                results = os.fdopen(w, "w")
                for m, tests in part:
                    usual = sum(durations.get(t, 1.0) for t in tests)
                    status, killer, seconds = run_mutant(m, tests, usual * 3 + 10)
                    results.write(json.dumps([m.key, status, killer, len(tests), seconds]) + "\n")
                    results.flush()
                os._exit(0)
            os.close(w)
            children.append((child, os.fdopen(r)))
        for child, results in children:
            for line in results:
                out.write(line)
                out.flush()
            os.waitpid(child, 0)
        out.close()
        os._exit(0)
    os.close(write)
    by_key = {m.key: m for m, _ in work}
    done = 0
    with os.fdopen(read) as results:
        for line in results:
            key, status, killer, count, seconds = json.loads(line)
            m = by_key[key]
            m.status, m.killer, m.tests, m.seconds = status, killer, count, seconds
            done += 1
            mark = {"killed": ".", "timeout": "T", "survived": "S", "no tests": "-"}[status]
            print(mark, end="" if done % 80 else f" {module} {done}/{len(work)}\n", flush=True)
    os.waitpid(pid, 0)
    print(f" {module}: {done}/{len(work)}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
