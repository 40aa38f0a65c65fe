"""Load and validate catalog.yaml once, into frozen dataclasses.

Administrators edit the catalogue by hand, so every error names the file, the line and the
field, says what was expected in plain words, and all errors are reported at once. Nothing is
guessed: a fact that is not published is the word `unpublished`; a value an administrator
must supply starts with `PLACEHOLDER`.

The file's shape is one model (the `...Spec` classes, pydantic): it validates the file and it
is what `catalog_json_schema()` publishes for editors (catalog.schema.json). Pydantic was
chosen because it reports every error of a file in one pass, each with its exact location,
and generates the JSON Schema from the same classes; its own wording is replaced here by
sentences an administrator understands, with the line read from the YAML. What one item
cannot check alone (ids that refer to other items, duplicates) is checked afterwards.
"""

from __future__ import annotations

import difflib
import hashlib
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, time
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

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
# An office's kind, and the level of services it gives: district-level offices (ស្រុក, ក្រុង,
# ខណ្ឌ) and the capital/provincial One Window Service Units (ខេត្ត, រាជធានី).
OFFICE_KINDS = {"district": "district", "municipality": "district", "khan": "district",
                "province": "provincial", "capital": "provincial"}
PROVINCE_KINDS = ("province", "capital")
ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]*$")
CAMBODIA = "+855"


class CatalogError(ValueError):
    """A catalogue problem, located precisely enough for an administrator to fix it."""

    def __init__(self, path: Path | str, line: int | None, where: str, message: str):
        self.path, self.line, self.where, self.message = str(path), line, where, message
        location = f"{self.path}:{line}" if line else self.path
        super().__init__(f"{location}: {where}: {message}")


class CatalogErrors(CatalogError):
    """Every problem found in one file, in the order of its lines (the first one's location
    is this error's own, for callers that show one)."""

    def __init__(self, errors: Sequence[CatalogError]):
        self.errors = sorted(errors, key=lambda e: (e.path, e.line or 0, e.where))
        first = self.errors[0]
        super().__init__(first.path, first.line, first.where, first.message)
        self.args = ("\n".join(str(e) for e in self.errors),)

    def __str__(self) -> str:
        return self.args[0]


def problems_of(exc: CatalogError) -> list[CatalogError]:
    """Each problem of a CatalogError (one, or all that a file had)."""
    return list(exc.errors) if isinstance(exc, CatalogErrors) else [exc]


def short_message(exc: CatalogError, limit: int = 10) -> str:
    """What `ivr serve` and `ivr call` print for a catalogue they cannot use: every problem
    (the first `limit` of them) and where the full report is."""
    found = problems_of(exc)
    lines = [f"The catalogue has {len(found)} error{'s' if len(found) != 1 else ''}; "
             "the line cannot start with it:"]
    lines += [f"  {problem}" for problem in found[:limit]]
    if len(found) > limit:
        lines.append(f"  ... and {len(found) - limit} more")
    lines.append("Fix them (`ivr check` lists them all), then start again.")
    return "\n".join(lines)


Text = Mapping[str, str]  # language -> text


# --- The catalogue as the line uses it -------------------------------------------------------


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
    citizens_only: bool = False  # published for Cambodian citizens; foreigners pay another fee
    foreigners_riel: int | None = None  # that fee, where it is published


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
    offered_at: tuple[str, ...] = ()  # office ids; empty: every office of its level
    published_name: str | None = None  # the Khmer name as published, when it is said otherwise
    sources: tuple[str, ...] = ()  # every source (the first is `source`)


@dataclass(frozen=True)
class Category:
    id: str
    name: Text
    services: tuple[Service, ...]


@dataclass(frozen=True)
class Province:
    code: str
    name: Text
    kind: str = "province"  # province | capital


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
    gazetteer_code: str  # official code: the district's (4 digits), or the province's (2)
    province: Province
    district: Text  # the place it serves, with its unit, as said in menus (ស្រុកបវេល)
    name: Text
    hours: Hours | None
    ombudsman: Ombudsman
    line: int = 0
    kind: str = "district"  # district | municipality | khan | province | capital
    code_posted: Text | None = None  # where the office shows its code, when it does

    @property
    def level(self) -> str:
        """The level of the services it gives: district or provincial."""
        return OFFICE_KINDS[self.kind]

    @property
    def district_code(self) -> str:
        """The former name of `gazetteer_code`."""
        return self.gazetteer_code


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
    all_provinces: tuple[Province, ...] = ()
    _offices: Mapping[str, Office] = field(default_factory=dict, repr=False)
    _codes: Mapping[str, Office] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if not self._offices:
            object.__setattr__(self, "_offices", MappingProxyType(
                {o.id: o for o in self.offices}))
            object.__setattr__(self, "_codes", MappingProxyType(
                {o.code: o for o in self.offices}))

    def services(self) -> Iterator[Service]:
        for category in self.categories:
            yield from category.services

    def service(self, service_id: str) -> Service | None:
        return self._services.get(service_id)

    def category(self, category_id: str) -> Category | None:
        return next((c for c in self.categories if c.id == category_id), None)

    def office(self, office_id: str) -> Office | None:
        return self._offices.get(office_id)

    def office_by_code(self, code: str) -> Office | None:
        return self._codes.get(code)

    def question(self, question_id: str) -> Question | None:
        return next((q for q in self.survey if q.id == question_id), None)

    def topic(self, topic_id: str) -> Topic | None:
        return next((t for t in self.topics if t.id == topic_id), None)

    def offices_in(self, province_code: str) -> tuple[Office, ...]:
        return tuple(o for o in self.offices if o.province.code == province_code)

    def provinces(self) -> tuple[Province, ...]:
        """The provinces that have an office, in the catalogue's order."""
        seen: dict[str, Province] = {}
        for office in self.offices:
            seen.setdefault(office.province.code, office.province)
        order = {p.code: i for i, p in enumerate(self.all_provinces)}
        return tuple(sorted(seen.values(), key=lambda p: order.get(p.code, len(order))))

    def provincial_unit(self, province_code: str) -> Office | None:
        """The capital's or province's One Window Service Unit."""
        return next((o for o in self.offices_in(province_code) if o.level == "provincial"),
                    None)

    def offers(self, office_id: str, service_id: str) -> bool:
        """Does this office give this service (so a caller may be told of it, or rate it
        there)? A service limited to some offices (`offered_at`) is given only there; any
        other is given by every office of its level: a district service by the district,
        municipal and khan offices, a provincial one by the capital/provincial units."""
        office, service = self.office(office_id), self.service(service_id)
        if office is None or service is None:
            return False
        if service.offered_at:
            return office.id in service.offered_at
        return office.level == service.level

    def offices_offering(self, service_id: str) -> tuple[Office, ...]:
        return tuple(o for o in self.offices if self.offers(o.id, service_id))

    def services_at(self, office_id: str) -> tuple[Service, ...]:
        return tuple(s for s in self.services() if self.offers(office_id, s.id))

    def categories_at(self, office_id: str) -> tuple[Category, ...]:
        """The categories with a service this office gives, each holding only those."""
        found = []
        for category in self.categories:
            given = tuple(s for s in category.services if self.offers(office_id, s.id))
            if given:
                found.append(replace(category, services=given))
        return tuple(found)


# --- YAML with line numbers ---------------------------------------------------------------


class _Node(dict):
    """A mapping that remembers the line of itself and of each of its keys."""

    line: int = 0
    key_lines: dict[str, int]
    flow: bool = False  # written {like: this} on one line
    allowed: tuple[str, ...] = ()  # the keys the model that read it knows


class _Seq(list):
    line: int = 0
    item_lines: list[int]


class _LineLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """PyYAML's safe loader with YAML 1.2's core rules for plain values, as editors read
    them: only true/false are booleans (not yes, no, on, off), numbers are decimal (0105
    is 105, not octal; 7:30 is text, not 450), and dates stay text, checked by the model.
    Duplicate keys are collected, not fatal."""

    problems: list[CatalogError]


_LineLoader.yaml_implicit_resolvers = {}
for _tag, _pattern, _first in (
    ("tag:yaml.org,2002:bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    ("tag:yaml.org,2002:int", r"^[-+]?[0-9]+$", "-+0123456789"),
    ("tag:yaml.org,2002:float",
     r"^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$", "-+.0123456789"),
    ("tag:yaml.org,2002:null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
):
    _LineLoader.add_implicit_resolver(_tag, re.compile(_pattern), list(_first))


def _construct_int(loader: _LineLoader, node: yaml.ScalarNode) -> int:
    return int(loader.construct_scalar(node))  # decimal, also with leading zeros


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> _Node:
    result = _Node()
    result.line = node.start_mark.line + 1
    result.key_lines = {}
    result.flow = bool(node.flow_style)
    loader.flatten_mapping(node)
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str):
            key = str(key)
        if key in result:
            loader.problems.append(CatalogError(
                loader.name, key_node.start_mark.line + 1, str(key),
                "this key appears twice in the same place (the second one is ignored)"))
            continue
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_lines[key] = key_node.start_mark.line + 1
    return result


def _construct_sequence(loader: _LineLoader, node: yaml.SequenceNode) -> _Seq:
    result = _Seq(loader.construct_object(child, deep=True) for child in node.value)
    result.line = node.start_mark.line + 1
    result.item_lines = [child.start_mark.line + 1 for child in node.value]
    return result


_LineLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)
_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)


def read_yaml(path: Path, problems: list[CatalogError] | None = None) -> Any:
    """Parse YAML keeping line numbers; syntax errors become CatalogError with the line.
    Duplicate keys go to `problems` when given, else the first one is raised."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CatalogError(path, None, "file", f"cannot be read: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise CatalogError(path, None, "file", "is not UTF-8 text") from exc
    loader = _LineLoader(text)
    loader.name = str(path)
    loader.problems = []
    try:
        data = loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        problem = (exc.problem or str(exc)).strip()
        raise CatalogError(path, line, "YAML",
                           f"the file cannot be read here ({problem}); check the indentation, "
                           "and put text with ': ' or ' #' in quotes") from exc
    finally:
        loader.dispose()
    if problems is None and loader.problems:
        raise loader.problems[0]
    if problems is not None:
        problems.extend(loader.problems)
    return data


# --- The file's model (validation and JSON Schema) ------------------------------------------


def _show(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, str) else str(value)


def _suggest(value: str, known: Sequence[str]) -> str:
    close = difflib.get_close_matches(value, list(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


def _fail(kind: str, message: str, **context: Any) -> PydanticCustomError:
    # braces in a template are pydantic's placeholders (and "{{" is not unescaped): the
    # message, braces and all, is a value put into the template
    return PydanticCustomError(kind, "{message}", {**context, "message": message})


def _text(value: Any, info: ValidationInfo) -> dict[str, str]:
    languages: tuple[str, ...] = (info.context or {}).get("languages", ("km", "en"))
    listed = ", ".join(languages)
    if not isinstance(value, dict):
        raise _fail("text", f"must give the text in each language ({listed}), like "
                    f"{{{languages[0]}: ..., ...}}, got {_show(value)}")
    for key, text in value.items():
        if key in languages:
            continue
        if text is None and getattr(value, "flow", False):
            raise _fail("text", f"holds '{key}', which is not a language: the text before it "
                        "has a comma, which ends a value written {like: this}; put that whole "
                        "text in quotes", at=key)
        raise _fail("text", f"'{key}' is not one of the catalogue's languages ({listed})"
                    f"{_suggest(str(key), languages)}", at=key)
    for lang in languages:
        if lang not in value:
            raise _fail("text", f"has no {lang} text (every text is given in {listed})")
        text = value[lang]
        if text is None or (isinstance(text, str) and not text.strip()):
            raise _fail("text", "is empty: write the text", at=lang)
        if not isinstance(text, str | int) or isinstance(text, bool):
            raise _fail("text", f"must be text; {_show(text)} is read as a value, so put the "
                        "text in quotes", at=lang)
    return {lang: str(value[lang]).strip() for lang in languages}


TextSpec = Annotated[dict[str, str], BeforeValidator(_text),
                     WithJsonSchema({"x-text": True})]  # becomes a $ref to Text


def _identifier(value: Any) -> str:
    if not isinstance(value, str) or not ID_PATTERN.match(value):
        raise _fail("identifier", f"{_show(value)} must use only lower-case letters, digits "
                    "and '-' (like ou-chrov)")
    return value


Identifier = Annotated[str, Field(pattern=ID_PATTERN.pattern), BeforeValidator(_identifier)]


def _words(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int) or not str(value).strip():
        raise _fail("words", f"must be text, got {_show(value)}")
    return str(value).strip()


Words = Annotated[str, Field(min_length=1), BeforeValidator(_words)]


def _url(value: Any) -> str:
    if not isinstance(value, str) or not re.match(r"^https?://\S+$", value.strip()):
        raise _fail("url", f"must be the address of the published page (https://...), "
                    f"got {_show(value)}")
    return value.strip()


Url = Annotated[str, Field(pattern=r"^https?://\S+$"), BeforeValidator(_url)]


def _riel(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail("riel", "must be a whole number of riel without separators (like 5000), "
                    f"got {_show(value)}")
    if value == 0:
        raise _fail("riel", "is 0: an official fee is at least 1 riel (write `unpublished` "
                    "where the fee is not published)")
    if value < 0:
        raise _fail("riel", "must be a whole number of riel without separators (like 5000), "
                    f"got {_show(value)}")
    return value


Riel = Annotated[int, Field(ge=1), BeforeValidator(_riel)]


def _days(value: Any) -> int | str:
    if value == UNPUBLISHED:
        return value
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise _fail("days", "must be a whole number of working days or `unpublished`, "
                    f"got {_show(value)}")
    return value


Days = Annotated[Annotated[int, Field(ge=1)] | Literal["unpublished"],
                 BeforeValidator(_days)]


def _digits(pattern: str, what: str) -> Any:
    def check(value: Any) -> str:
        if isinstance(value, int) and not isinstance(value, bool):
            raise _fail("code", f"must be written in quotes, like \"0105\": without them it "
                        f"is read as the number {value} and loses its leading zeros")
        if not isinstance(value, str) or not re.fullmatch(pattern, value):
            raise _fail("code", f"must be {what}, got {_show(value)}")
        return value
    return check


OfficeCode = Annotated[str, Field(pattern=r"^\d{1,6}$"), BeforeValidator(
    _digits(r"\d{1,6}", "1 to 6 digits a caller can key in"))]
GazetteerCode = Annotated[str, Field(pattern=r"^(\d{2}|\d{4})$"), BeforeValidator(_digits(
    r"\d{2}|\d{4}", "the official code: 4 digits for a district, 2 for a province"))]
ProvinceCode = Annotated[str, Field(pattern=r"^\d{2}$"), BeforeValidator(
    _digits(r"\d{2}", "the 2-digit official province code"))]


def _phone(value: Any) -> str:
    """A dialable international number; a Cambodian number written the local way (0 and
    8 or 9 digits, spaces allowed) is written +855... instead."""
    if isinstance(value, str) and value.startswith(PLACEHOLDER):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        raise _fail("phone", "must be written in quotes, like \"+85512345678\": without them "
                    "it is read as a number and loses its leading 0 or +")
    if not isinstance(value, str):
        raise _fail("phone", f"must be a phone number like +85512345678, got {_show(value)}")
    number = re.sub(r"[\s().-]", "", value)
    if re.fullmatch(r"0\d{8,9}", number):
        number = CAMBODIA + number[1:]
    elif re.fullmatch(r"855\d{8,9}", number):
        number = "+" + number
    if not re.fullmatch(r"\+[1-9]\d{7,14}", number) or (
            number.startswith(CAMBODIA) and not re.fullmatch(r"\+855[1-9]\d{7,8}", number)):
        raise _fail("phone", f"'{value}' is not a number the line can dial: write it like "
                    "+85512345678 (or 012 345 678, which is read as +85512345678)")
    return number


Phone = Annotated[str, Field(pattern=r"^(PLACEHOLDER.*|[+0-9][0-9 ().-]{6,24})$"),
                  BeforeValidator(_phone)]


def _clock(value: Any) -> str:
    if isinstance(value, str):
        match = re.fullmatch(r"([01]?\d|2[0-3]):([0-5]\d)", value.strip())
        if match:
            return f"{int(match.group(1)):02d}:{match.group(2)}"
    raise _fail("clock", f"must be a time like \"07:30\" (24-hour clock), got {_show(value)}")


Clock = Annotated[str, Field(pattern=r"^([01]?\d|2[0-3]):[0-5]\d$"), BeforeValidator(_clock)]
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December")


def _holiday(value: Any) -> str:
    text = str(value) if isinstance(value, str | int) and not isinstance(value, bool) else ""
    match = re.fullmatch(r"(\d{4})-(\d{2})-(\d{2})", text.strip())
    if not match:
        raise _fail("date", f"must be a date like 2027-01-07 (year-month-day), got {_show(value)}")
    year, month, day = (int(g) for g in match.groups())
    if not 1 <= month <= 12:
        raise _fail("date", f"{text} has no month {month} (months are 01 to 12)")
    try:
        return date(year, month, day).isoformat()
    except ValueError:
        last = (date(year + month // 12, month % 12 + 1, 1) - date(year, month, 1)).days
        raise _fail("date", f"{text} is not a day of the calendar: {MONTHS[month - 1]} "
                    f"{year} has {last} days") from None


Holiday = Annotated[str, Field(json_schema_extra={"format": "date"}), BeforeValidator(_holiday)]


def _placeholder_or(kind: str) -> Any:
    def pick(value: Any) -> str | None:
        if isinstance(value, str) and value.startswith(PLACEHOLDER):
            return "placeholder"
        return kind if isinstance(value, dict) else None
    return pick


Placeholder_ = Annotated[str, Field(pattern=r"^PLACEHOLDER")]


class Spec(BaseModel):
    """A mapping of the file: unknown keys are errors (with a suggestion)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _remember_keys(cls, data: Any) -> Any:
        if isinstance(data, _Node):
            data.allowed = tuple(f.alias or name for name, f in cls.model_fields.items())
        return data


class HoursSpec(Spec):
    """Opening hours in Cambodia's time, e.g. {days: [mon, tue, wed, thu, fri],
    open: "07:30", close: "17:00"}."""

    days: Annotated[list[Literal[WEEKDAYS]], Field(min_length=1)]  # type: ignore[valid-type]
    open: Clock
    close: Clock

    @field_validator("close")
    @classmethod
    def _after_open(cls, value: str, info: ValidationInfo) -> str:
        opening = info.data.get("open")
        if opening is not None and not _minutes(opening) < _minutes(value):
            raise _fail("hours", f"must be later than open ({opening})")
        return value


def _minutes(clock: str) -> int:
    hours, minutes = clock.split(":")
    return int(hours) * 60 + int(minutes)


HoursField = Annotated[
    Annotated[HoursSpec, Tag("hours")] | Annotated[Placeholder_, Tag("placeholder")],
    Discriminator(_placeholder_or("hours"), custom_error_type="hours",
                  custom_error_message="must be opening hours like {days: [mon, tue, wed, thu, "
                  "fri], open: \"07:30\", close: \"17:00\"}, or a PLACEHOLDER until known"),
]


class FeePartSpec(Spec):
    label: TextSpec
    riel: Riel


class SimpleFeeSpec(Spec):
    """One official fee: riel, its type, and optionally its unit, the concession fee and
    the fee for foreigners."""

    type: Literal[FEE_TYPES]  # type: ignore[valid-type]
    riel: Riel
    per: TextSpec | None = Field(None, description="the unit it is charged per (sheet, room)")
    discounted_riel: Riel | None = Field(
        None, description="the published concession fee (តម្លៃអនុគ្រោះ): what an entitled "
        "person pays instead, per the same unit; less than riel")
    foreigners_riel: Riel | Literal["unpublished"] | None = Field(
        None, description="the fee is published for Cambodian citizens: what foreigners pay, "
        "or `unpublished`")

    @field_validator("discounted_riel")
    @classmethod
    def _below_the_fee(cls, value: int | None, info: ValidationInfo) -> int | None:
        fee = info.data.get("riel")
        if value is not None and fee is not None and value >= fee:
            raise _fail("concession", f"is {value} riel, but a concession is less than the fee "
                        f"it replaces ({fee} riel): what an entitled person pays instead")
        return value


class PartsFeeSpec(Spec):
    """Separate fees said one after the other (a theory and a practical exam)."""

    type: Literal[FEE_TYPES]  # type: ignore[valid-type]
    parts: Annotated[list[FeePartSpec], Field(min_length=2)]
    per: TextSpec | None = None
    foreigners_riel: Literal["unpublished"] | None = Field(
        None, description="`unpublished`: the fees are for Cambodian citizens")


class FeeOptionSpec(Spec):
    label: TextSpec
    fee: FeeField


class FeeChoiceSpec(Spec):
    question: TextSpec
    options: Annotated[list[FeeOptionSpec], Field(min_length=2, max_length=MAX_KEYS)]


class FeeTableSpec(Spec):
    """A fee table: the caller answers one short menu per dimension and hears one fee."""

    choose: FeeChoiceSpec


def _fee_kind(value: Any) -> str | None:
    if value == UNPUBLISHED:
        return "not-published"
    if not isinstance(value, dict):
        return None
    if "choose" in value:
        return "fee-table"
    return "fee-parts" if "parts" in value else "fee-single"


FeeField = Annotated[
    Annotated[FeeTableSpec, Tag("fee-table")] | Annotated[PartsFeeSpec, Tag("fee-parts")]
    | Annotated[SimpleFeeSpec, Tag("fee-single")]
    | Annotated[Literal["unpublished"], Tag("not-published")],
    Discriminator(_fee_kind, custom_error_type="fee",
                  custom_error_message="must be a fee (type and riel), fee parts, a fee table "
                  "(choose) or `unpublished`"),
]
DocumentsField = Annotated[list[TextSpec], Field(min_length=1)] | Literal["unpublished"]
ValidityField = TextSpec | Literal["unpublished"]


class ServiceSpec(Spec):
    id: Identifier
    category: Identifier
    name: TextSpec = Field(description="what callers hear; plain words, no parentheses")
    published_name: Words | None = Field(
        None, description="the Khmer name exactly as published, when `name` says it otherwise")
    level: Literal[LEVELS]  # type: ignore[valid-type]
    offered_at: Annotated[list[Identifier], Field(min_length=1)] | None = Field(
        None, description="only these offices (ids) give it; without it, every office of its "
        "level does")
    documents: DocumentsField
    documents_complete: bool = True
    fee: FeeField
    max_days: Days
    validity: ValidityField
    legal_ref: Words | Literal["unpublished"]
    source: Url | Annotated[list[Url], Field(min_length=1)]
    confidence: Literal[CONFIDENCES]  # type: ignore[valid-type]


class CategorySpec(Spec):
    id: Identifier
    name: TextSpec


class ProvinceSpec(Spec):
    code: ProvinceCode
    kind: Literal[PROVINCE_KINDS]  # type: ignore[valid-type]
    name: TextSpec


class OmbudsmanSpec(Spec):
    phone: Phone
    hours: HoursField


class OfficeSpec(Spec):
    id: Identifier
    kind: Literal[tuple(OFFICE_KINDS)]  # type: ignore[valid-type]
    code: OfficeCode = Field(description="what a caller keys in")
    province: ProvinceCode
    gazetteer_code: GazetteerCode
    district: TextSpec = Field(description="the place, with its unit, as said in menus")
    name: TextSpec
    hours: HoursField
    ombudsman: OmbudsmanSpec
    code_posted: TextSpec | None = Field(
        None, description="where the office shows its code to the public, when it does")


class SurveyOptionSpec(Spec):
    id: Identifier
    label: TextSpec


class QuestionSpec(Spec):
    id: Identifier
    type: Literal[QUESTION_TYPES]  # type: ignore[valid-type]
    prompt: TextSpec
    optional: bool = False
    remind: Literal[REMINDERS] | None = None  # type: ignore[valid-type]
    options: Annotated[list[SurveyOptionSpec], Field(min_length=2, max_length=MAX_KEYS)] | None \
        = None


class SurveySpec(Spec):
    questions: Annotated[list[QuestionSpec], Field(min_length=1)]


def _seconds(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 10 <= value <= 600:
        raise _fail("seconds", f"must be 10 to 600 seconds, got {_show(value)}")
    return value


class TopicSpec(Spec):
    id: Identifier
    name: TextSpec


class ComplaintsSpec(Spec):
    max_seconds: Annotated[int, Field(ge=10, le=600), BeforeValidator(_seconds)]
    topics: Annotated[list[TopicSpec], Field(min_length=1, max_length=MAX_KEYS)]


def _language(value: Any) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"[a-z]{2,3}", value):
        raise _fail("language", f"must be a language code like km or en, got {_show(value)}")
    return value


class CatalogSpec(Spec):
    """catalog.yaml: what the owso-ivr phone line says."""

    languages: Annotated[list[Annotated[str, BeforeValidator(_language)]],
                         Field(min_length=1, description="km (Khmer) first")]
    categories: list[CategorySpec]
    services: list[ServiceSpec]
    survey: SurveySpec
    complaints: ComplaintsSpec
    public_holidays: list[Holiday] = Field(default_factory=list)
    provinces: list[ProvinceSpec]
    offices: list[OfficeSpec]


for _model in (FeeOptionSpec, FeeChoiceSpec, FeeTableSpec, ServiceSpec, CatalogSpec):
    _model.model_rebuild()

RENAMED = {"district_code": "gazetteer_code"}  # keys of older catalogues
TAGS = {"hours", "placeholder", "fee-table", "fee-parts", "fee-single", "not-published"}
_SECTIONS = {"categories": "category", "services": "service", "provinces": "province",
             "offices": "office"}
_NESTED = {("survey", "questions"): "survey question", ("complaints", "topics"): "complaint topic"}


def catalog_json_schema(languages: Sequence[str] = ("km", "en")) -> dict[str, Any]:
    """The JSON Schema of catalog.yaml (for editors), from the model that validates it."""
    schema = _text_refs(CatalogSpec.model_json_schema())
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$defs"]["Text"] = {
        "type": "object",
        "description": f"a text in each language: {', '.join(languages)}",
        "properties": {lang: {"type": "string", "minLength": 1} for lang in languages},
        "required": list(languages),
        "additionalProperties": False,
    }
    return schema


def _text_refs(node: Any) -> Any:
    if isinstance(node, dict):
        if node.get("x-text"):
            return {"$ref": "#/$defs/Text", **{k: v for k, v in node.items() if k != "x-text"}}
        return {k: _text_refs(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_text_refs(v) for v in node]
    return node


# --- Reading: validation errors in an administrator's words -----------------------------------


class _Located:
    """Where a location of the model is in the file: its line, and a readable name."""

    def __init__(self, path: Path, root: Any):
        self.path, self.root = path, root

    def walk(self, loc: Sequence[Any]) -> tuple[int | None, str, Any, Any]:
        """(line, readable field, the node holding the last key, the value there)."""
        node, line, where, parent = self.root, getattr(self.root, "line", None), "", None
        for i, part in enumerate(loc):
            if isinstance(part, str) and part in TAGS and not (
                    isinstance(node, dict) and part in node):
                continue
            if isinstance(node, dict):
                parent = node
                where = f"{where}.{part}" if where else str(part)
                if part not in node:
                    return line, where, parent, None
                line = node.key_lines.get(part, line) if isinstance(node, _Node) else line
                node = node[part]
            elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
                item = node[part]
                parent = node  # type: ignore[assignment]
                if isinstance(node, _Seq) and part < len(node.item_lines):
                    line = node.item_lines[part]
                label = self._label(loc[:i], where, item)
                where = label if label else f"{where}[{part}]"
                node = item
            else:
                where = f"{where}.{part}" if where else str(part)
                return line, where, parent, None
        return line, where, parent, node

    @staticmethod
    def _label(before: Sequence[Any], where: str, item: Any) -> str | None:
        keys = tuple(p for p in before if not isinstance(p, int) and p not in TAGS)
        name = _SECTIONS.get(keys[0]) if len(keys) == 1 else _NESTED.get(keys)
        if name is None:
            return None
        ident = item.get("id", item.get("code")) if isinstance(item, dict) else None
        if isinstance(ident, str | int) and not isinstance(ident, bool):
            return f"{name} '{ident}'"
        return None

    def error(self, loc: Sequence[Any], message: str) -> CatalogError:
        line, where, _, _ = self.walk(loc)
        return CatalogError(self.path, line, where or "catalogue", message)


def _words_for(err: Mapping[str, Any], located: _Located, loc: tuple) -> str:
    """A pydantic error in words an administrator understands."""
    kind, ctx, value = err["type"], err.get("ctx") or {}, err.get("input")
    if kind == "missing":
        return "is missing"
    if kind == "extra_forbidden":
        _, _, parent, _ = located.walk(loc)
        allowed = getattr(parent, "allowed", ())
        key = str(loc[-1])
        hint = (f" (it is now called {RENAMED[key]})" if RENAMED.get(key) in allowed else
                _suggest(key, allowed) or (f" (known here: {', '.join(allowed)})" if allowed
                                           else ""))
        if value is None and getattr(parent, "flow", False):
            hint += "; if it is the end of the text before it, put that text in quotes"
        return f"is not a key the catalogue knows{hint}"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return f"must be a mapping (key: value lines), got {_show(value)}"
    if kind == "list_type":
        return f"must be a list (lines starting with '- '), got {_show(value)}"
    if kind in ("string_type", "string_pattern_mismatch", "string_too_short"):
        if isinstance(value, str) and kind == "string_pattern_mismatch" and \
                loc and loc[-1] == "placeholder":
            return f"must start with PLACEHOLDER, got {_show(value)}"
        return f"must be text, got {_show(value)}"
    if kind in ("bool_type", "bool_parsing"):
        return f"must be true or false, got {_show(value)}"
    if kind == "literal_error":
        expected = re.findall(r"'([^']*)'", str(ctx.get("expected", "")))
        hint = _suggest(str(value), expected) if isinstance(value, str) else ""
        return f"must be one of {', '.join(expected)}{hint}, got {_show(value)}"
    if kind == "too_short":
        return (f"has {ctx.get('actual_length', 0)} items; it needs at least "
                f"{ctx.get('min_length')}")
    if kind == "too_long":
        return (f"has {ctx.get('actual_length')} items; at most {ctx.get('max_length')} fit "
                "one menu (callers choose with one key)")
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return f"must be a whole number, got {_show(value)}"
    return str(err["msg"])


_MEMBER = re.compile(r"^[a-z-]+\[.*\]$")  # pydantic's name of a union's member: list[...]


def _one_member(errors: list[Any], loc: tuple, located: _Located) -> list[Any]:
    """A value that fits no member of a union (text or `unpublished`, one address or a
    list) is reported once, at its own field, by the member its shape is meant for: not by
    `unpublished`, and by the list when it is a list."""
    def member(err: Any) -> int | None:
        return next((i for i, p in enumerate(err["loc"]) if isinstance(p, str) and
                     p not in TAGS and _MEMBER.match(p)), None)

    groups: dict[tuple, list[str]] = {}
    for err in errors:
        i = member(err)
        if i is not None:
            groups.setdefault(tuple(err["loc"][:i]), []).append(err["loc"][i])
    kept = []
    for err in errors:
        i = member(err)
        if i is None:
            kept.append(err)
            continue
        base, label = tuple(err["loc"][:i]), err["loc"][i]
        labels = [m for m in groups[base] if not m.startswith("literal[")] or groups[base]
        is_list = isinstance(located.walk((*loc, *base))[3], list)
        fitting = [m for m in labels if m.startswith("list[") == is_list] or labels
        if label == fitting[0]:
            kept.append({**err, "loc": (*base, *err["loc"][i + 1:])})
    return kept


def _validate(adapter: TypeAdapter, data: Any, loc: tuple, located: _Located,
              errors: list[CatalogError], context: Mapping[str, Any]) -> Any:
    try:
        return adapter.validate_python(data, context=context)
    except ValidationError as exc:
        for err in _one_member(exc.errors(include_url=False), loc, located):
            where = (*loc, *err["loc"])
            at = (err.get("ctx") or {}).get("at")
            if at is not None:
                where = (*where, at)
            errors.append(located.error(where, _words_for(err, located, where)))
        return None


_ADAPTERS: dict[Any, TypeAdapter] = {}


def _adapter(kind: Any) -> TypeAdapter:
    if kind not in _ADAPTERS:
        _ADAPTERS[kind] = TypeAdapter(kind)
    return _ADAPTERS[kind]


_LOADED: dict[tuple, Catalog] = {}  # the same text is not checked again (a Catalog is frozen)


def load_catalog(path: Path | str) -> Catalog:
    """Read and validate the catalogue. Every problem is reported at once: raises
    CatalogErrors (a CatalogError), each naming the file, the line and the field."""
    path = Path(path)
    try:
        key: tuple | None = (str(path.resolve()), hashlib.sha1(path.read_bytes()).digest())
    except OSError:
        key = None
    if key is not None and key in _LOADED:
        return _LOADED[key]
    catalog = _load(path)
    if key is not None:
        if len(_LOADED) > 32:
            _LOADED.clear()
        _LOADED[key] = catalog
    return catalog


def _load(path: Path) -> Catalog:
    errors: list[CatalogError] = []
    root = read_yaml(path, errors)
    located = _Located(path, root)
    if not isinstance(root, dict):
        raise CatalogErrors([*errors, CatalogError(
            path, None, "catalogue", f"must be a mapping of sections, got {_show(root)}")])
    fields = CatalogSpec.model_fields
    for key in root:
        if key not in fields:
            errors.append(located.error((key,), "is not a section the catalogue knows"
                                        f"{_suggest(str(key), list(fields))}"))
    languages = _validate(_adapter(fields["languages"].annotation), root.get("languages"),
                          ("languages",), located, errors, {}) if "languages" in root else None
    if "languages" not in root:
        errors.append(located.error(("languages",), "is missing"))
    elif languages is not None and (languages[0] != "km" or len(set(languages)) < len(languages)):
        errors.append(located.error(("languages",), "must list km (Khmer) first, each once"))
        languages = None
    if languages is None:
        raise CatalogErrors(errors)
    context = {"languages": tuple(languages)}

    specs: dict[str, Any] = {}
    whole: set[str] = set()  # the sections whose every item is valid
    for name, info in fields.items():
        if name == "languages":
            continue
        if name not in root:
            if info.is_required():
                errors.append(located.error((name,), "is missing"))
            specs[name] = [] if name != "survey" and name != "complaints" else None
            continue
        kind = info.annotation
        if getattr(kind, "__origin__", None) is list:  # a section of items: each on its own
            items = root[name]
            if not isinstance(items, list):
                errors.append(located.error((name,), "must be a list (lines starting with "
                                            f"'- '), got {_show(items)}"))
                specs[name] = []
                continue
            item_kind = kind.__args__[0]  # type: ignore[union-attr]
            specs[name] = [(i, _validate(_adapter(item_kind), item, (name, i), located, errors,
                                         context)) for i, item in enumerate(items)]
            if all(s is not None for _, s in specs[name]):
                whole.add(name)
            specs[name] = [(i, s) for i, s in specs[name] if s is not None]
        else:
            specs[name] = _validate(_adapter(kind), root[name], (name,), located, errors,
                                    context)
    catalog = _build(path, tuple(languages), specs, whole, located, errors)
    if errors:
        raise CatalogErrors(errors)
    assert catalog is not None
    return catalog


# --- From the checked model to the catalogue -------------------------------------------------


def _text_of(spec: Mapping[str, str] | None) -> Text | None:
    return None if spec is None else MappingProxyType(dict(spec))


def _hours_of(spec: HoursSpec | str) -> Hours | None:
    if isinstance(spec, str):
        return None
    opening, closing = (time(*divmod(_minutes(c), 60)) for c in (spec.open, spec.close))
    return Hours(tuple(sorted({WEEKDAYS.index(d) for d in spec.days})), opening, closing)


def _fee_of(spec: Any) -> Fee | FeeChoice | None:
    if spec == UNPUBLISHED or spec is None:
        return None
    if isinstance(spec, FeeTableSpec):
        return FeeChoice(_text_of(spec.choose.question),  # type: ignore[arg-type]
                         tuple(FeeOption(_text_of(o.label), _fee_of(o.fee))  # type: ignore
                               for o in spec.choose.options))
    foreigners = getattr(spec, "foreigners_riel", None)
    common = {"type": spec.type, "per": _text_of(spec.per), "citizens_only": foreigners is not None,
              "foreigners_riel": foreigners if isinstance(foreigners, int) else None}
    if isinstance(spec, PartsFeeSpec):
        return Fee(parts=tuple(FeePart(_text_of(p.label), p.riel)  # type: ignore[arg-type]
                               for p in spec.parts), **common)
    return Fee(riel=spec.riel, discounted_riel=spec.discounted_riel, **common)


def _duplicates(items: Sequence[tuple[int, Any]], attribute: str, section: tuple,
                located: _Located, errors: list[CatalogError], what: str) -> None:
    seen: set[str] = set()
    for i, spec in items:
        value = getattr(spec, attribute)
        if value in seen:
            errors.append(located.error((*section, i, attribute), f"another {what} already "
                                        f"has {attribute} '{value}'"))
        seen.add(value)


def _build(path: Path, languages: tuple[str, ...], specs: dict[str, Any], whole: set[str],
           located: _Located, errors: list[CatalogError]) -> Catalog | None:
    """The catalogue from the checked items, with the checks that span several items (those
    that a broken item would make false, such as "no office in this province", only when
    every item of the section is valid: the broken item is already reported)."""
    placeholders: list[Placeholder] = []

    def written(section: str, key: str = "id") -> set[str]:
        """The ids the file gives in a section, valid items or not (a reference to an item
        that is itself broken is not reported again)."""
        items = located.root.get(section)
        return {str(i[key]) for i in items if isinstance(i, dict) and key in i} \
            if isinstance(items, list) else set()

    provinces: dict[str, Province] = {}
    _duplicates(specs["provinces"], "code", ("provinces",), located, errors, "province")
    for _, p in specs["provinces"]:
        provinces.setdefault(p.code, Province(p.code, _text_of(p.name), p.kind))  # type: ignore

    offices: list[Office] = []
    _duplicates(specs["offices"], "id", ("offices",), located, errors, "office")
    _duplicates(specs["offices"], "code", ("offices",), located, errors, "office")
    units: dict[str, str] = {}
    for i, o in specs["offices"]:
        at = ("offices", i)
        province = provinces.get(o.province)
        if province is None:
            if o.province not in written("provinces", "code"):
                errors.append(located.error((*at, "province"), f"'{o.province}' is not in "
                                            "provinces" + _suggest(o.province, list(provinces))))
            whole.discard("offices")
            continue
        level = OFFICE_KINDS[o.kind]
        if level == "district" and not (len(o.gazetteer_code) == 4 and
                                        o.gazetteer_code.startswith(o.province)):
            errors.append(located.error((*at, "gazetteer_code"), f"'{o.gazetteer_code}' is not "
                                        f"a district code of province {o.province} (4 digits "
                                        f"starting with {o.province})"))
        if level == "provincial":
            if o.gazetteer_code != o.province:
                errors.append(located.error((*at, "gazetteer_code"), "a provincial unit's code "
                                            f"is its province's, {o.province}"))
            if o.kind != province.kind:
                errors.append(located.error((*at, "kind"), f"province {o.province} is a "
                                            f"{province.kind}, so its unit's kind is "
                                            f"{province.kind}"))
            if o.province in units:
                errors.append(located.error((*at, "province"), f"province {o.province} already "
                                            f"has its unit, '{units[o.province]}'"))
            units.setdefault(o.province, o.id)
        where = located.walk(at)[1]
        for key, value in (("hours", o.hours), ("ombudsman.phone", o.ombudsman.phone),
                           ("ombudsman.hours", o.ombudsman.hours)):
            if isinstance(value, str) and value.startswith(PLACEHOLDER):
                line = located.walk((*at, *key.split(".")))[0] or 0
                placeholders.append(Placeholder(line, f"{where}.{key}", value))
        phone = o.ombudsman.phone
        offices.append(Office(
            id=o.id, code=o.code, gazetteer_code=o.gazetteer_code, province=province,
            district=_text_of(o.district), name=_text_of(o.name),  # type: ignore[arg-type]
            hours=_hours_of(o.hours), kind=o.kind, code_posted=_text_of(o.code_posted),
            ombudsman=Ombudsman(None if phone.startswith(PLACEHOLDER) else phone,
                                _hours_of(o.ombudsman.hours)),
            line=located.walk(at)[0] or 0,
        ))
    if located.root.get("offices") == []:
        errors.append(located.error(("offices",), "must list at least one office"))
    with_office = {o.province.code for o in offices}
    for i, p in specs["provinces"]:
        if p.code not in with_office and specs["offices"] and "offices" in whole:
            errors.append(located.error(("provinces", i), "has no office: callers who choose "
                                        "it would reach an empty menu"))

    office_ids = {o.id: o for o in offices}
    categories = {c.id: c for _, c in specs["categories"]}
    _duplicates(specs["categories"], "id", ("categories",), located, errors, "category")
    _duplicates(specs["services"], "id", ("services",), located, errors, "service")
    services: list[Service] = []
    for i, s in specs["services"]:
        at = ("services", i)
        if s.category not in categories and s.category not in written("categories"):
            errors.append(located.error((*at, "category"), f"unknown category '{s.category}'"
                                        f"{_suggest(s.category, list(categories))} (known: "
                                        f"{', '.join(categories)})"))
        for j, office_id in enumerate(s.offered_at or ()):
            office = office_ids.get(office_id)
            if office is None:
                if offices and office_id not in written("offices"):
                    errors.append(located.error((*at, "offered_at", j), f"'{office_id}' is not "
                                                "an office of the catalogue"
                                                f"{_suggest(office_id, list(office_ids))}"))
            elif office.level != s.level:
                errors.append(located.error((*at, "offered_at", j), f"'{office_id}' is a "
                                            f"{office.level} office; this service is {s.level}"))
            if (s.offered_at or []).index(office_id) != j:
                errors.append(located.error((*at, "offered_at", j), f"'{office_id}' is listed "
                                            "twice"))
        if not s.offered_at and "offices" in whole and offices and \
                not any(o.level == s.level for o in offices):
            errors.append(located.error((*at, "level"), f"no office of the catalogue gives "
                                        f"{s.level} services, so callers could never rate it"))
        sources = (s.source,) if isinstance(s.source, str) else tuple(s.source)
        services.append(Service(
            id=s.id, category=s.category, name=_text_of(s.name),  # type: ignore[arg-type]
            level=s.level, documents_complete=s.documents_complete,
            documents=None if s.documents == UNPUBLISHED else tuple(
                _text_of(d) for d in s.documents),  # type: ignore[misc]
            fee=_fee_of(s.fee), max_days=None if s.max_days == UNPUBLISHED else s.max_days,
            validity=None if s.validity == UNPUBLISHED else _text_of(s.validity),
            legal_ref=None if s.legal_ref == UNPUBLISHED else s.legal_ref,
            source=sources[0], sources=sources, confidence=s.confidence,
            offered_at=tuple(s.offered_at or ()), published_name=s.published_name,
            line=located.walk(at)[0] or 0,
        ))
    built: list[Category] = []
    for i, c in specs["categories"]:
        members = tuple(s for s in services if s.category == c.id)
        if not members and specs["services"] and "services" in whole:
            errors.append(located.error(("categories", i), "has no services: callers would "
                                        "reach an empty menu"))
        built.append(Category(c.id, _text_of(c.name), members))  # type: ignore[arg-type]

    survey: list[Question] = []
    if specs["survey"] is not None:
        seen: set[str] = set()
        for i, q in enumerate(specs["survey"].questions):
            at = ("survey", "questions", i)  # type: ignore[assignment]
            if q.id in seen:
                errors.append(located.error((*at, "id"), f"another question already has id "
                                            f"'{q.id}'"))
            seen.add(q.id)
            if q.type == "choice" and not q.options:
                errors.append(located.error((*at, "options"), "is missing: a choice question "
                                            f"needs 2 to {MAX_KEYS} options"))
            if q.type != "choice" and q.options:
                errors.append(located.error((*at, "options"), f"only a choice question has "
                                            f"options (this one is {q.type})"))
            survey.append(Question(
                id=q.id, type=q.type, prompt=_text_of(q.prompt),  # type: ignore[arg-type]
                optional=q.optional, remind=q.remind,
                options=tuple(SurveyOption(o.id, _text_of(o.label))  # type: ignore[arg-type]
                              for o in q.options or ())))
    topics: list[Topic] = []
    max_seconds = 120
    if specs["complaints"] is not None:
        max_seconds = specs["complaints"].max_seconds
        seen = set()
        for i, t in enumerate(specs["complaints"].topics):
            if t.id in seen:
                errors.append(located.error(("complaints", "topics", i, "id"),
                                            f"another topic already has id '{t.id}'"))
            seen.add(t.id)
            topics.append(Topic(t.id, _text_of(t.name)))  # type: ignore[arg-type]
    if errors:
        return None
    return Catalog(
        path=str(path), languages=languages, categories=tuple(built), offices=tuple(offices),
        survey=tuple(survey), topics=tuple(topics), max_recording_seconds=max_seconds,
        holidays=frozenset(date.fromisoformat(d) for _, d in specs["public_holidays"]),
        placeholders=tuple(placeholders), all_provinces=tuple(provinces.values()),
        _services=MappingProxyType({s.id: s for c in built for s in c.services}),
    )
