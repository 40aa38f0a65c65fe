"""The phone tree: every node of the call flow, declared once, in the order of the call.

A row is a pattern (the node's name in the URL, `<name>` for a part that varies), what the
admin funnel calls it in each language, and, for an item of the main menu, its key and
prompt. The menu modules attach each node's builder where they define it
(`@tree.RATE_QUESTION.builder`), as Flask's `@bp.route` attaches a view to its rule; so
this module needs none of them, they and the engine need it, and nothing imports back up.
A name is resolved as Datasette resolves its routes: the first pattern that matches.

Nobody else spells a node's name: menus, the engine, the load test and the demo seeder
take names from these rows (`RATE_QUESTION.path(number="2")` is "rate/q/2").
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ivr.catalog import Catalog
    from ivr.steps import Step

Builder = Callable[..., "Step | None"]  # (context, position, **the pattern's parts)
PART = re.compile(r"<([a-z]+)>")


class Node:
    """One row of the table: a node of the call flow."""

    def __init__(self, index: int, pattern: str, label: Mapping[str, str],
                 main: tuple[str, str] | None = None):
        self.index = index  # its place in the order of the call flow
        self.pattern = pattern
        self.label = label  # language -> funnel label; {part} is the part's value or name
        self.main = main  # (key, prompt) when the main menu offers this node
        self.parts = tuple(PART.findall(pattern))
        self.head = pattern.partition("/")[0]
        self.kind = pattern.partition("/<")[0]  # the name without its varying parts
        self.regex = re.compile(PART.sub(r"(?P<\1>[^/]+)", pattern))
        self._template = PART.sub(r"{\1}", pattern)
        self.build: Builder | None = None

    def __repr__(self) -> str:
        return f"Node({self.pattern!r})"

    def builder(self, build: Builder) -> Builder:
        """Decorator: `build` answers this node (one builder per node)."""
        if self.build is not None:
            raise ValueError(f"node {self.pattern!r} has a builder already")
        self.build = build
        return build

    def path(self, **parts: str) -> str:
        """The node's name with its parts filled in, as it appears in a URL."""
        return self._template.format(**parts) if parts else self.pattern


TABLE: list[Node] = []
_BY_HEAD: dict[str, list[Node]] = {}  # the rows by the first part of their name


def node(pattern: str, km: str, en: str, main: tuple[str, str] | None = None) -> Node:
    """Declare a node: a row of the table, in the order written here."""
    row = Node(len(TABLE), pattern, {"km": km, "en": en}, main)
    TABLE.append(row)
    _BY_HEAD.setdefault(row.head, []).append(row)
    return row


# --- the table ------------------------------------------------------------------------------
# pattern, funnel label in Khmer and English, (main-menu key and prompt)

WELCOME = node("welcome", "ការស្វាគមន៍ និងជ្រើសរើសភាសា", "Greeting and language")
MAIN = node("main", "ម៉ឺនុយដើម", "Main menu")

# 1: services information
CATEGORIES = node("categories", "ប្រភេទសេវា", "Service categories",
                  main=("1", "menu.main.services"))
CATEGORY = node("category/<category>", "{category}", "{category}")
SERVICE = node("service/<service>", "{service}", "{service}")
FEE = node("service/<service>/fee/<path>", "{service} – តម្លៃសេវា", "{service} – fee")

# 2: rate a service
RATE_OFFICE = node("rate/office", "វាយតម្លៃ៖ ជ្រើសរើសការិយាល័យ", "Rating: choose the office",
                   main=("2", "menu.main.rate"))
RATE_OFFICE_CODE = node("rate/office/code", "វាយតម្លៃ៖ ជ្រើសរើសការិយាល័យ",
                        "Rating: choose the office")
RATE_PROVINCES = node("rate/office/provinces", "វាយតម្លៃ៖ ជ្រើសរើសការិយាល័យ",
                      "Rating: choose the office")
RATE_PROVINCE = node("rate/office/province/<province>", "វាយតម្លៃ៖ ជ្រើសរើសការិយាល័យ",
                     "Rating: choose the office")
RATE_OFFICE_CHOSEN = node("rate/office/chosen/<via>", "វាយតម្លៃ៖ ការិយាល័យដែលបានជ្រើសរើស",
                          "Rating: the office chosen")
RATE_CATEGORIES = node("rate/categories", "វាយតម្លៃ៖ ជ្រើសរើសសេវា", "Rating: choose the service")
RATE_CATEGORY = node("rate/category/<category>", "វាយតម្លៃ៖ ជ្រើសរើសសេវា",
                     "Rating: choose the service")
RATE_QUESTION = node("rate/q/<number>", "វាយតម្លៃ៖ សំណួរទី {number}", "Rating: question {number}")
RATE_COMMENT = node("rate/comment", "វាយតម្លៃ៖ មតិយោបល់", "Rating: comment")
RATE_RECORD = node("rate/record", "វាយតម្លៃ៖ មតិយោបល់", "Rating: comment")
RATE_RECORDED = node("rate/recorded", "វាយតម្លៃ៖ មតិយោបល់", "Rating: comment")
RATE_THANKS = node("rate/thanks", "វាយតម្លៃ៖ លេខយោង", "Rating: reference number")

# a post-visit feedback call placed by the line (ivr/outbound.py): 1 the survey above,
# 2 not now, 9 never call again
SURVEY_CALL = node("visit-call", "ការហៅសួរមតិ៖ ការស្នើ", "Feedback call: the offer")
SURVEY_REFUSED = node("visit-call/declined", "ការហៅសួរមតិ៖ មិនឆ្លើយ", "Feedback call: declined")
SURVEY_OPT_OUT = node("visit-call/never", "ការហៅសួរមតិ៖ កុំហៅមកទៀត", "Feedback call: never again")

# 3: talk to the District Ombudsman (or leave a message)
OMBUDSMAN_OFFICE = node("ombudsman/office", "ការិយាល័យប្រជាពលរដ្ឋ៖ ជ្រើសរើសការិយាល័យ",
                        "Ombudsman: choose the office", main=("3", "menu.main.ombudsman"))
OMBUDSMAN_OFFICE_CODE = node("ombudsman/office/code", "ការិយាល័យប្រជាពលរដ្ឋ៖ ជ្រើសរើសការិយាល័យ",
                             "Ombudsman: choose the office")
OMBUDSMAN_PROVINCES = node("ombudsman/office/provinces",
                           "ការិយាល័យប្រជាពលរដ្ឋ៖ ជ្រើសរើសការិយាល័យ",
                           "Ombudsman: choose the office")
OMBUDSMAN_PROVINCE = node("ombudsman/office/province/<province>",
                          "ការិយាល័យប្រជាពលរដ្ឋ៖ ជ្រើសរើសការិយាល័យ",
                          "Ombudsman: choose the office")
OMBUDSMAN_OFFICE_CHOSEN = node("ombudsman/office/chosen/<via>",
                               "ការិយាល័យប្រជាពលរដ្ឋ៖ ការិយាល័យដែលបានជ្រើសរើស",
                               "Ombudsman: the office chosen")
OMBUDSMAN_CALL = node("ombudsman/call", "ការិយាល័យប្រជាពលរដ្ឋ៖ ហៅ ឬទុកសារ",
                      "Ombudsman: call or message")
OMBUDSMAN_DIALLED = node("ombudsman/dialled", "ការិយាល័យប្រជាពលរដ្ឋ៖ ហៅ ឬទុកសារ",
                         "Ombudsman: call or message")
OMBUDSMAN_AWAY = node("ombudsman/away/<reason>", "ការិយាល័យប្រជាពលរដ្ឋ៖ ហៅ ឬទុកសារ",
                      "Ombudsman: call or message")
OMBUDSMAN_NOTICE = node("ombudsman/notice", "ការិយាល័យប្រជាពលរដ្ឋ៖ ហៅ ឬទុកសារ",
                        "Ombudsman: call or message")
OMBUDSMAN_RECORDED = node("ombudsman/recorded", "ការិយាល័យប្រជាពលរដ្ឋ៖ ហៅ ឬទុកសារ",
                          "Ombudsman: call or message")
OMBUDSMAN_EMPTY = node("ombudsman/empty", "ការិយាល័យប្រជាពលរដ្ឋ៖ ហៅ ឬទុកសារ",
                       "Ombudsman: call or message")

# 4: leave a complaint
COMPLAINT = node("complaint", "បណ្តឹង៖ ប្រធានបទ", "Complaint: topic",
                 main=("4", "menu.main.complaint"))
COMPLAINT_OFFICE = node("complaint/office", "បណ្តឹង៖ ជ្រើសរើសការិយាល័យ",
                        "Complaint: choose the office")
COMPLAINT_OFFICE_CODE = node("complaint/office/code", "បណ្តឹង៖ ជ្រើសរើសការិយាល័យ",
                             "Complaint: choose the office")
COMPLAINT_PROVINCES = node("complaint/office/provinces", "បណ្តឹង៖ ជ្រើសរើសការិយាល័យ",
                           "Complaint: choose the office")
COMPLAINT_PROVINCE = node("complaint/office/province/<province>", "បណ្តឹង៖ ជ្រើសរើសការិយាល័យ",
                          "Complaint: choose the office")
COMPLAINT_OFFICE_CHOSEN = node("complaint/office/chosen/<via>",
                               "បណ្តឹង៖ ការិយាល័យដែលបានជ្រើសរើស", "Complaint: the office chosen")
COMPLAINT_NOTICE = node("complaint/notice", "បណ្តឹង៖ ថតសំឡេង", "Complaint: recording")
COMPLAINT_RECORDED = node("complaint/recorded", "បណ្តឹង៖ ថតសំឡេង", "Complaint: recording")
COMPLAINT_EMPTY = node("complaint/empty", "បណ្តឹង៖ ថតសំឡេង", "Complaint: recording")

# after a complaint or a message: its case reference
CASE = node("case/<reference>", "លេខយោងករណី", "Case reference")

# 5: hear about a message or rating left before, by its reference
STATUS = node("hear-back", "ស្ថានភាពសារ៖ លេខយោង", "Message status: reference",
              main=("5", "menu.main.status"))
STATUS_CASE = node("hear-back/case", "ស្ថានភាពសារ៖ ព័ត៌មាន", "Message status: what became of it")
STATUS_FOLLOWUP = node("hear-back/followup", "ស្ថានភាពសារ៖ សារបន្ថែម", "Message status: follow-up")
STATUS_FOLLOWUP_RECORDED = node("hear-back/followup/recorded", "ស្ថានភាពសារ៖ សារបន្ថែម",
                                "Message status: follow-up")
STATUS_FOLLOWUP_EMPTY = node("hear-back/followup/empty", "ស្ថានភាពសារ៖ សារបន្ថែម",
                             "Message status: follow-up")
STATUS_FOLLOWUP_THANKS = node("hear-back/followup/thanks", "ស្ថានភាពសារ៖ សារបន្ថែម",
                              "Message status: follow-up")

# --- reading the table ----------------------------------------------------------------------

def resolve(name: str) -> tuple[Node, dict[str, str]] | None:
    """The row a node's name matches, and the values of its parts; None: no such node."""
    for row in _BY_HEAD.get(name.partition("/")[0], ()):
        match = row.regex.fullmatch(name)
        if match is not None:
            return row, match.groupdict()
    return None


def main_items() -> list[Node]:
    """The main menu's items, by key."""
    return sorted((row for row in TABLE if row.main is not None),
                  key=lambda row: row.main[0] if row.main else "")


def kind(name: str) -> str:
    """A node's name without its varying parts ('rate/q/2' -> 'rate/q'): '?' when unknown."""
    found = resolve(name)
    return found[0].kind if found else "?"


def label(catalog: Catalog, name: str, lang: str) -> str:
    """What the funnel calls a node, in `lang`: the row's label, with a category's or a
    service's name from the catalogue; the name itself when it is no node."""
    found = resolve(name)
    if found is None:
        return name
    row, parts = found
    text = row.label.get(lang) or row.label["en"]
    values: dict[str, Any] = dict(parts)
    if "{category}" in text:
        category = catalog.category(parts["category"])
        if category is None:
            return name
        values["category"] = category.name.get(lang) or category.name["en"]
    if "{service}" in text:
        service = catalog.service(parts["service"])
        spoken = (service.name.get(lang) or service.name["en"]) if service else parts["service"]
        values["service"] = spoken[:1].upper() + spoken[1:]  # written for speech: a table's
    return text.format(**values)


def order(catalog: Catalog, name: str) -> tuple[int, tuple[tuple[int, int | str], ...]]:
    """Sort key in the order of the call flow: the row, then its parts in catalogue order
    (categories, services, provinces) or by number (questions, fee paths, references)."""
    found = resolve(name)
    if found is None:
        return len(TABLE), ((1, name),)
    row, parts = found
    known: dict[str, list[str]] = {
        "category": [c.id for c in catalog.categories],
        "service": [s.id for s in catalog.services()],
        "province": [p.code for p in catalog.provinces()],
    }
    key: list[tuple[int, int | str]] = []
    for part, value in parts.items():
        ids = known.get(part, [])
        if value in ids:
            key.append((0, ids.index(value)))
        elif value.isdigit():
            key.append((0, int(value)))
        else:
            key.append((1, value))
    return row.index, tuple(key)
