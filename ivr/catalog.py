"""Load and validate catalog.yaml once, into frozen dataclasses.

Administrators edit the catalogue by hand, so every error names the file, the line and the
field, and says what was expected. Nothing is guessed: a fact that is not published is the
word `unpublished`; a value an administrator must supply starts with `PLACEHOLDER`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, time
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from ivr.survey import TYPES, Question, SurveyOption

UNPUBLISHED = "unpublished"
PLACEHOLDER = "PLACEHOLDER"
MAX_KEYS = 8  # keys 1-8 choose; 9 pages; 0 * # navigate
FEE_TYPES = ("maximum", "specific", "flat")
LEVELS = ("district", "provincial", "commune")
QUESTION_TYPES = tuple(TYPES)
REMINDERS = ("fee", "days")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
CONFIDENCES = ("high", "medium", "low")
ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]*$")


class CatalogError(ValueError):
    """A catalogue problem, located precisely enough for an administrator to fix it."""

    def __init__(self, path: Path | str, line: int | None, where: str, message: str):
        self.path, self.line, self.where, self.message = str(path), line, where, message
        location = f"{self.path}:{line}" if line else self.path
        super().__init__(f"{location}: {where}: {message}")


Text = Mapping[str, str]  # language -> text


@dataclass(frozen=True)
class FeePart:
    label: Text
    riel: int


@dataclass(frozen=True)
class Fee:
    """An official fee as published: one amount, or separate parts (theory and practical)."""

    type: str  # maximum | specific | flat
    riel: int | None = None
    per: Text | None = None
    discounted_riel: int | None = None
    parts: tuple[FeePart, ...] = ()


@dataclass(frozen=True)
class FeeOption:
    label: Text
    fee: Fee | FeeChoice | None  # None: this row of the table is not published


@dataclass(frozen=True)
class FeeChoice:
    """A fee table, asked as a short menu: one question per dimension (location, size)."""

    question: Text
    options: tuple[FeeOption, ...]


@dataclass(frozen=True)
class Service:
    id: str
    category: str
    name: Text
    level: str
    documents: tuple[Text, ...] | None  # None: not published
    documents_complete: bool
    fee: Fee | FeeChoice | None  # None: not published
    max_days: int | None  # working days; None: not published
    validity: Text | None
    legal_ref: str | None
    source: str
    confidence: str
    line: int = 0


@dataclass(frozen=True)
class Category:
    id: str
    name: Text
    services: tuple[Service, ...]


@dataclass(frozen=True)
class Province:
    code: str
    name: Text


@dataclass(frozen=True)
class Hours:
    """Opening hours in Cambodia's time zone: these weekdays, from open to close."""

    days: tuple[int, ...]  # 0 = Monday
    open: time
    close: time


@dataclass(frozen=True)
class Ombudsman:
    phone: str | None  # None: still a PLACEHOLDER, so the line never dials it
    hours: Hours | None  # None: still a PLACEHOLDER


@dataclass(frozen=True)
class Topic:
    id: str
    name: Text


@dataclass(frozen=True)
class Office:
    id: str
    code: str  # what a caller keys in
    district_code: str  # official gazetteer code
    province: Province
    district: Text
    name: Text
    hours: Hours | None
    ombudsman: Ombudsman
    line: int = 0


@dataclass(frozen=True)
class Placeholder:
    """A value an administrator must fill in before the line goes live."""

    line: int
    where: str
    value: str


@dataclass(frozen=True)
class Catalog:
    path: str
    languages: tuple[str, ...]
    categories: tuple[Category, ...]
    offices: tuple[Office, ...]
    survey: tuple[Question, ...] = ()
    topics: tuple[Topic, ...] = ()
    max_recording_seconds: int = 120
    holidays: frozenset[date] = frozenset()
    placeholders: tuple[Placeholder, ...] = ()
    _services: Mapping[str, Service] = field(default_factory=dict, repr=False)

    def services(self) -> Iterator[Service]:
        for category in self.categories:
            yield from category.services

    def service(self, service_id: str) -> Service | None:
        return self._services.get(service_id)

    def category(self, category_id: str) -> Category | None:
        return next((c for c in self.categories if c.id == category_id), None)

    def office(self, office_id: str) -> Office | None:
        return next((o for o in self.offices if o.id == office_id), None)

    def office_by_code(self, code: str) -> Office | None:
        return next((o for o in self.offices if o.code == code), None)

    def question(self, question_id: str) -> Question | None:
        return next((q for q in self.survey if q.id == question_id), None)

    def topic(self, topic_id: str) -> Topic | None:
        return next((t for t in self.topics if t.id == topic_id), None)

    def offices_in(self, province_code: str) -> tuple[Office, ...]:
        return tuple(o for o in self.offices if o.province.code == province_code)

    def provinces(self) -> tuple[Province, ...]:
        seen: dict[str, Province] = {}
        for office in self.offices:
            seen.setdefault(office.province.code, office.province)
        return tuple(seen.values())


# --- YAML with line numbers ---------------------------------------------------------------


class _Node(dict):
    """A mapping that remembers the line of itself and of each of its keys."""

    line: int = 0
    key_lines: dict[str, int]


class _Seq(list):
    line: int = 0


class _LineLoader(yaml.SafeLoader):
    pass


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> _Node:
    result = _Node()
    result.line = node.start_mark.line + 1
    result.key_lines = {}
    loader.flatten_mapping(node)
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in result:
            raise CatalogError(
                loader.name, key_node.start_mark.line + 1, str(key), "this key appears twice"
            )
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_lines[key] = key_node.start_mark.line + 1
    return result


def _construct_sequence(loader: _LineLoader, node: yaml.SequenceNode) -> _Seq:
    result = _Seq(loader.construct_object(child, deep=True) for child in node.value)
    result.line = node.start_mark.line + 1
    return result


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)


def read_yaml(path: Path) -> Any:
    """Parse YAML keeping line numbers; syntax errors become CatalogError with the line."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CatalogError(path, None, "file", f"cannot be read: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise CatalogError(path, None, "file", "is not UTF-8 text") from exc
    loader = _LineLoader(text)
    loader.name = str(path)
    try:
        return loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise CatalogError(path, line, "YAML", f"{exc.problem or exc}") from exc
    finally:
        loader.dispose()


# --- Validation -----------------------------------------------------------------------------


class _Reader:
    """Reads fields out of the parsed YAML, raising CatalogError at the right line."""

    def __init__(self, path: Path, languages: tuple[str, ...]):
        self.path = path
        self.languages = languages
        self.placeholders: list[Placeholder] = []

    def fail(self, node: Any, where: str, message: str, key: str | None = None) -> CatalogError:
        line = getattr(node, "line", None)
        if key is not None and isinstance(node, _Node):
            line = node.key_lines.get(key, line)
        return CatalogError(self.path, line, where, message)

    def mapping(self, node: Any, where: str) -> _Node:
        if not isinstance(node, _Node):
            raise self.fail(node, where, f"must be a mapping (key: value), got {_show(node)}")
        return node

    def sequence(self, node: Any, where: str, parent: Any = None, key: str = "") -> _Seq:
        if not isinstance(node, _Seq):
            raise self.fail(parent, where, f"must be a list, got {_show(node)}", key)
        return node

    def required(self, node: _Node, key: str, where: str) -> Any:
        if key not in node or node[key] is None:
            raise self.fail(node, f"{where}.{key}", "is missing")
        return node[key]

    def string(self, node: _Node, key: str, where: str) -> str:
        value = self.required(node, key, where)
        if not isinstance(value, str | int) or isinstance(value, bool) or str(value).strip() == "":
            raise self.fail(node, f"{where}.{key}", f"must be text, got {_show(value)}", key)
        return str(value).strip()

    def identifier(self, node: _Node, key: str, where: str) -> str:
        value = self.string(node, key, where)
        if not ID_PATTERN.match(value):
            raise self.fail(
                node, f"{where}.{key}",
                f"'{value}' must use only lower-case letters, digits and '-'", key,
            )
        return value

    def riel(self, node: _Node, key: str, where: str) -> int:
        value = self.required(node, key, where)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise self.fail(
                node, f"{where}.{key}",
                "must be a whole number of riel without separators (like 5000), "
                f"got {_show(value)}",
                key,
            )
        return value

    def text(self, node: Any, where: str, parent: Any = None, key: str = "") -> Text:
        """A text in every language of the catalogue."""
        if not isinstance(node, _Node):
            raise self.fail(
                parent, where,
                f"must give the text in each language ({', '.join(self.languages)}), "
                f"got {_show(node)}", key,
            )
        values = {}
        for lang in self.languages:
            value = node.get(lang)
            if not isinstance(value, str | int) or str(value).strip() == "":
                raise self.fail(node, f"{where}.{lang}", "is missing or empty")
            values[lang] = str(value).strip()
        return MappingProxyType(values)

    def published(self, node: _Node, key: str, where: str) -> Any:
        """The value, or None where the catalogue says it is unpublished."""
        value = self.required(node, key, where)
        return None if value == UNPUBLISHED else value

    def placeholder_or(self, node: _Node, key: str, where: str) -> Any:
        value = self.required(node, key, where)
        if isinstance(value, str) and value.startswith(PLACEHOLDER):
            line = node.key_lines.get(key, node.line)
            self.placeholders.append(Placeholder(line, f"{where}.{key}", value))
        return value


def _show(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return repr(value)


def load_catalog(path: Path | str) -> Catalog:
    """Read and validate the catalogue; raises CatalogError naming file, line and field."""
    path = Path(path)
    root = read_yaml(path)
    bootstrap = _Reader(path, ())
    root = bootstrap.mapping(root, "catalogue")
    languages = tuple(
        str(lang) for lang in bootstrap.sequence(
            bootstrap.required(root, "languages", "catalogue"), "languages", root, "languages"
        )
    )
    if not languages or languages[0] != "km":
        raise bootstrap.fail(root, "languages", "must list km (Khmer) first", "languages")
    r = _Reader(path, languages)

    categories: dict[str, tuple[_Node, Any]] = {}
    for i, node in enumerate(r.sequence(r.required(root, "categories", "catalogue"),
                                        "categories", root, "categories")):
        where = f"categories[{i}]"
        node = r.mapping(node, where)
        cid = r.identifier(node, "id", where)
        if cid in categories:
            raise r.fail(node, f"{where}.id", f"duplicate category id '{cid}'", "id")
        categories[cid] = (node, r.text(r.required(node, "name", where), f"{where}.name",
                                        node, "name"))

    services: dict[str, Service] = {}
    for i, node in enumerate(r.sequence(r.required(root, "services", "catalogue"),
                                        "services", root, "services")):
        service = _read_service(r, r.mapping(node, f"services[{i}]"), f"services[{i}]",
                                categories)
        if service.id in services:
            raise r.fail(node, f"services[{i}].id", f"duplicate service id '{service.id}'",
                         "id")
        services[service.id] = service

    built = []
    for cid, (node, name) in categories.items():
        members = tuple(s for s in services.values() if s.category == cid)
        if not members:
            raise r.fail(node, f"category '{cid}'",
                         "has no services: callers would reach an empty menu")
        built.append(Category(cid, name, members))

    offices = _read_offices(r, root)
    survey = _read_survey(r, root)
    topics, max_seconds = _read_complaints(r, root)
    return Catalog(
        path=str(path),
        languages=languages,
        categories=tuple(built),
        offices=offices,
        survey=survey,
        topics=topics,
        max_recording_seconds=max_seconds,
        holidays=_read_holidays(r, root),
        placeholders=tuple(r.placeholders),
        _services=MappingProxyType({s.id: s for c in built for s in c.services}),
    )


def _read_service(r: _Reader, node: _Node, where: str,
                  categories: Mapping[str, Any]) -> Service:
    sid = r.identifier(node, "id", where)
    where = f"service '{sid}'"
    category = r.string(node, "category", where)
    if category not in categories:
        raise r.fail(node, f"{where}.category",
                     f"unknown category '{category}' (known: {', '.join(categories)})",
                     "category")
    level = r.string(node, "level", where)
    if level not in LEVELS:
        raise r.fail(node, f"{where}.level", f"must be one of {', '.join(LEVELS)}", "level")
    documents_node = r.published(node, "documents", where)
    documents = None
    if documents_node is not None:
        items = r.sequence(documents_node, f"{where}.documents", node, "documents")
        documents = tuple(r.text(d, f"{where}.documents[{j}]", items) for j, d in
                          enumerate(items))
        if not documents:
            raise r.fail(node, f"{where}.documents", "is empty: write `unpublished` instead",
                         "documents")
    complete = node.get("documents_complete", True)
    if not isinstance(complete, bool):
        raise r.fail(node, f"{where}.documents_complete", "must be true or false",
                     "documents_complete")
    fee_node = r.published(node, "fee", where)
    fee = None if fee_node is None else _read_fee(r, fee_node, f"{where}.fee", node, "fee")
    days = r.published(node, "max_days", where)
    if days is not None and (isinstance(days, bool) or not isinstance(days, int) or days <= 0):
        raise r.fail(node, f"{where}.max_days",
                     f"must be a whole number of working days or `unpublished`, got {_show(days)}",
                     "max_days")
    validity_node = r.published(node, "validity", where)
    validity = (None if validity_node is None
                else r.text(validity_node, f"{where}.validity", node, "validity"))
    legal_ref = r.published(node, "legal_ref", where)
    confidence = r.string(node, "confidence", where)
    if confidence not in CONFIDENCES:
        raise r.fail(node, f"{where}.confidence", f"must be one of {', '.join(CONFIDENCES)}",
                     "confidence")
    return Service(
        id=sid, category=category, name=r.text(r.required(node, "name", where),
                                               f"{where}.name", node, "name"),
        level=level, documents=documents, documents_complete=complete, fee=fee,
        max_days=days, validity=validity,
        legal_ref=None if legal_ref is None else str(legal_ref),
        source=r.string(node, "source", where), confidence=confidence, line=node.line,
    )


def _read_fee(r: _Reader, node: Any, where: str, parent: Any, key: str) -> Fee | FeeChoice:
    if not isinstance(node, _Node):
        raise r.fail(parent, where, f"must be a fee (type, riel) or `unpublished`, got "
                     f"{_show(node)}", key)
    if "choose" in node:
        choice = r.mapping(node["choose"], f"{where}.choose")
        options = r.sequence(r.required(choice, "options", f"{where}.choose"),
                             f"{where}.choose.options", choice, "options")
        if not 2 <= len(options) <= MAX_KEYS:
            raise r.fail(choice, f"{where}.choose.options",
                         f"has {len(options)} options; a fee menu needs 2 to {MAX_KEYS} "
                         "(callers choose with one key)", "options")
        built = []
        for j, option in enumerate(options):
            at = f"{where}.choose.options[{j}]"
            option = r.mapping(option, at)
            sub = r.published(option, "fee", at)
            built.append(FeeOption(
                label=r.text(r.required(option, "label", at), f"{at}.label", option, "label"),
                fee=None if sub is None else _read_fee(r, sub, f"{at}.fee", option, "fee"),
            ))
        return FeeChoice(
            question=r.text(r.required(choice, "question", f"{where}.choose"),
                            f"{where}.choose.question", choice, "question"),
            options=tuple(built),
        )
    fee_type = r.string(node, "type", where)
    if fee_type not in FEE_TYPES:
        raise r.fail(node, f"{where}.type", f"must be one of {', '.join(FEE_TYPES)}", "type")
    if "parts" in node:
        parts = r.sequence(node["parts"], f"{where}.parts", node, "parts")
        return Fee(type=fee_type, parts=tuple(
            FeePart(label=r.text(r.required(r.mapping(p, f"{where}.parts[{j}]"), "label",
                                            f"{where}.parts[{j}]"),
                                 f"{where}.parts[{j}].label", p, "label"),
                    riel=r.riel(p, "riel", f"{where}.parts[{j}]"))
            for j, p in enumerate(parts)
        ))
    per = node.get("per")
    return Fee(
        type=fee_type,
        riel=r.riel(node, "riel", where),
        per=None if per is None else r.text(per, f"{where}.per", node, "per"),
        discounted_riel=(r.riel(node, "discounted_riel", where)
                         if "discounted_riel" in node else None),
    )


def _read_offices(r: _Reader, root: _Node) -> tuple[Office, ...]:
    offices: list[Office] = []
    seen_ids: set[str] = set()
    seen_codes: set[str] = set()
    for i, node in enumerate(r.sequence(r.required(root, "offices", "catalogue"),
                                        "offices", root, "offices")):
        where = f"offices[{i}]"
        node = r.mapping(node, where)
        oid = r.identifier(node, "id", where)
        where = f"office '{oid}'"
        if oid in seen_ids:
            raise r.fail(node, f"{where}.id", f"duplicate office id '{oid}'", "id")
        code = r.string(node, "code", where)
        if not code.isdigit() or not 1 <= len(code) <= 6:
            raise r.fail(node, f"{where}.code", "must be 1 to 6 digits a caller can key in",
                         "code")
        if code in seen_codes:
            raise r.fail(node, f"{where}.code", f"duplicate caller code '{code}'", "code")
        district_code = r.string(node, "district_code", where)
        if not re.fullmatch(r"\d{4}", district_code):
            raise r.fail(node, f"{where}.district_code",
                         "must be the 4-digit official district code", "district_code")
        province = r.mapping(r.required(node, "province", where), f"{where}.province")
        province_code = r.string(province, "code", f"{where}.province")
        if not district_code.startswith(province_code):
            raise r.fail(node, f"{where}.district_code",
                         f"'{district_code}' is not in province {province_code}",
                         "district_code")
        ombudsman = r.mapping(r.required(node, "ombudsman", where), f"{where}.ombudsman")
        offices.append(Office(
            id=oid, code=code, district_code=district_code,
            province=Province(province_code, r.text(province, f"{where}.province")),
            district=r.text(r.required(node, "district", where), f"{where}.district", node,
                            "district"),
            name=r.text(r.required(node, "name", where), f"{where}.name", node, "name"),
            hours=_read_hours(r, node, "hours", where),
            ombudsman=Ombudsman(
                phone=_read_phone(r, ombudsman, f"{where}.ombudsman"),
                hours=_read_hours(r, ombudsman, "hours", f"{where}.ombudsman"),
            ),
            line=node.line,
        ))
        seen_ids.add(oid)
        seen_codes.add(code)
    if not offices:
        raise r.fail(root, "offices", "must list at least one office", "offices")
    return tuple(offices)


def _read_phone(r: _Reader, node: _Node, where: str) -> str | None:
    value = r.placeholder_or(node, "phone", where)
    if isinstance(value, str) and value.startswith(PLACEHOLDER):
        return None
    phone = str(value).replace(" ", "")
    if not re.fullmatch(r"\+?\d{6,15}", phone):
        raise r.fail(node, f"{where}.phone", f"'{value}' is not a phone number (like +855...)",
                     "phone")
    return phone


def _read_hours(r: _Reader, node: _Node, key: str, where: str) -> Hours | None:
    value = r.placeholder_or(node, key, where)
    if isinstance(value, str) and value.startswith(PLACEHOLDER):
        return None
    at = f"{where}.{key}"
    hours = r.mapping(value, at)
    days = r.sequence(r.required(hours, "days", at), f"{at}.days", hours, "days")
    if not days or any(d not in WEEKDAYS for d in days):
        raise r.fail(hours, f"{at}.days", f"must list days among {', '.join(WEEKDAYS)}", "days")
    opening, closing = (_clock(r, hours, k, at) for k in ("open", "close"))
    if not opening < closing:
        raise r.fail(hours, f"{at}.close", "must be later than open", "close")
    return Hours(tuple(WEEKDAYS.index(d) for d in days), opening, closing)


def _clock(r: _Reader, node: _Node, key: str, where: str) -> time:
    value = r.string(node, key, where)
    match = re.fullmatch(r"([01]?\d|2[0-3]):([0-5]\d)", value)
    if not match:
        raise r.fail(node, f"{where}.{key}", f"must be a time like 07:30, got {value!r}", key)
    return time(int(match.group(1)), int(match.group(2)))


def _read_holidays(r: _Reader, root: _Node) -> frozenset[date]:
    if "public_holidays" not in root:
        return frozenset()
    items = r.sequence(root["public_holidays"], "public_holidays", root, "public_holidays")
    days = set()
    for item in items:
        if not isinstance(item, date):
            raise r.fail(root, "public_holidays",
                         f"must be dates like 2027-01-07, got {_show(item)}", "public_holidays")
        days.add(item)
    return frozenset(days)


def _read_survey(r: _Reader, root: _Node) -> tuple[Question, ...]:
    node = r.mapping(r.required(root, "survey", "catalogue"), "survey")
    questions: list[Question] = []
    for i, q in enumerate(r.sequence(r.required(node, "questions", "survey"),
                                     "survey.questions", node, "questions")):
        q = r.mapping(q, f"survey.questions[{i}]")
        qid = r.identifier(q, "id", f"survey.questions[{i}]")
        where = f"survey question '{qid}'"
        if any(x.id == qid for x in questions):
            raise r.fail(q, f"{where}.id", f"duplicate question id '{qid}'", "id")
        kind = r.string(q, "type", where)
        if kind not in QUESTION_TYPES:
            raise r.fail(q, f"{where}.type", f"must be one of {', '.join(QUESTION_TYPES)}",
                         "type")
        remind = q.get("remind")
        if remind is not None and remind not in REMINDERS:
            raise r.fail(q, f"{where}.remind", f"must be one of {', '.join(REMINDERS)}",
                         "remind")
        optional = q.get("optional", False)
        if not isinstance(optional, bool):
            raise r.fail(q, f"{where}.optional", "must be true or false", "optional")
        options: tuple[SurveyOption, ...] = ()
        if TYPES[kind].needs_options:
            items = r.sequence(r.required(q, "options", where), f"{where}.options", q, "options")
            if not 2 <= len(items) <= MAX_KEYS:
                raise r.fail(q, f"{where}.options", f"needs 2 to {MAX_KEYS} options", "options")
            options = tuple(
                SurveyOption(r.identifier(o, "id", f"{where}.options[{j}]"),
                             r.text(r.required(o, "label", f"{where}.options[{j}]"),
                                    f"{where}.options[{j}].label", o, "label"))
                for j, o in enumerate(r.mapping(o, f"{where}.options[{j}]")
                                      for j, o in enumerate(items))
            )
        questions.append(Question(
            id=qid, type=kind, optional=optional, remind=remind, options=options,
            prompt=r.text(r.required(q, "prompt", where), f"{where}.prompt", q, "prompt"),
        ))
    if not questions:
        raise r.fail(node, "survey.questions", "must have at least one question", "questions")
    return tuple(questions)


def _read_complaints(r: _Reader, root: _Node) -> tuple[tuple[Topic, ...], int]:
    node = r.mapping(r.required(root, "complaints", "catalogue"), "complaints")
    max_seconds = r.required(node, "max_seconds", "complaints")
    if isinstance(max_seconds, bool) or not isinstance(max_seconds, int) or not \
            10 <= max_seconds <= 600:
        raise r.fail(node, "complaints.max_seconds", "must be 10 to 600 seconds", "max_seconds")
    topics: list[Topic] = []
    items = r.sequence(r.required(node, "topics", "complaints"), "complaints.topics", node,
                       "topics")
    if not 1 <= len(items) <= MAX_KEYS:
        raise r.fail(node, "complaints.topics", f"needs 1 to {MAX_KEYS} topics", "topics")
    for i, t in enumerate(items):
        t = r.mapping(t, f"complaints.topics[{i}]")
        tid = r.identifier(t, "id", f"complaints.topics[{i}]")
        if any(x.id == tid for x in topics):
            raise r.fail(t, f"complaint topic '{tid}'", "duplicate topic id", "id")
        topics.append(Topic(tid, r.text(r.required(t, "name", f"complaint topic '{tid}'"),
                                        f"complaint topic '{tid}'.name", t, "name")))
    return tuple(topics), max_seconds
