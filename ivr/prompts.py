"""Every utterance of the line, as key + language -> text.

This is the one place that knows the full list: the call flow asks it for the text of a
key, the renderer renders all of it, and `ivr check` compares it with the audio manifest.
Fixed sentences come from prompts/<lang>.yaml; the rest are its templates filled in from
the catalogue, with numbers written as words in Khmer.

A filled-in sentence also knows its parts: the fixed phrases of its templates, the words
of its numbers (one per Khmer number word: digits, tens, រយ, ពាន់, ម៉ឺន, សែន, លាន; in English
one per word) and the catalogue's names and documents, each an utterance of its own with its
own audio. When a sentence's own audio is missing or stale (a fee changed since it was
recorded), the line says it from its parts; so with a person's voice, a catalogue edit needs
a new recording only for a new name or document.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import time
from pathlib import Path
from typing import TypeVar

from ivr.catalog import (
    WEEKDAYS,
    Catalog,
    CatalogError,
    Category,
    Fee,
    FeeChoice,
    Office,
    Service,
    Text,
    read_yaml,
)
from ivr.khmer import (
    ENGLISH_WORDS,
    WORD_VALUES,
    english_values,
    number_values,
    number_words,
    value_word,
)
from ivr.utterance import Utterance

PAGE_SIZE = 8
T = TypeVar("T")


@dataclass(frozen=True)
class Wording:
    """The fixed sentences and templates of every language, as written in prompts/."""

    sentences: dict[str, dict[str, str]]  # lang -> key -> text
    templates: dict[str, dict[str, str]]  # lang -> name -> template


def load_wording(prompts_dir: Path | str, languages: Sequence[str]) -> Wording:
    """Read prompts/<lang>.yaml for each language; every language must have every key."""
    prompts_dir = Path(prompts_dir)
    sentences: dict[str, dict[str, str]] = {}
    templates: dict[str, dict[str, str]] = {}
    for lang in languages:
        path = prompts_dir / f"{lang}.yaml"
        data = read_yaml(path)
        if not isinstance(data, dict):
            raise CatalogError(path, None, "file", "must be a mapping with sentences and templates")
        for section, into in (("sentences", sentences), ("templates", templates)):
            block = data.get(section)
            if not isinstance(block, dict):
                raise CatalogError(path, getattr(data, "line", None), section, "is missing")
            for key, value in block.items():
                if not isinstance(value, str) or (section == "sentences" and not value.strip()):
                    line = getattr(block, "key_lines", {}).get(key)
                    raise CatalogError(path, line, f"{section}.{key}", "must be text")
            into[lang] = {str(k): str(v) for k, v in block.items()}
    first = languages[0]
    for lang in languages[1:]:
        for section, table in (("sentences", sentences), ("templates", templates)):
            missing = set(table[first]) ^ set(table[lang])
            if missing:
                raise CatalogError(prompts_dir / f"{lang}.yaml", None, section,
                                   f"keys differ from {first}.yaml: {', '.join(sorted(missing))}")
    return Wording(sentences, templates)


def pages(items: Sequence[T]) -> list[Sequence[T]]:
    """Split a menu's items into pages of eight: keys 1-8 choose, 9 is 'more'."""
    return [items[i:i + PAGE_SIZE] for i in range(0, len(items), PAGE_SIZE)] or [items]


def digit_of(items: Sequence[T], item: T) -> int:
    """The key that chooses `item` on its page."""
    return items.index(item) % PAGE_SIZE + 1


def choice_key(kind: str, item: str, digit: int, usual: int) -> str:
    """The prompt key of "for <item>, press <digit>": `usual` is its key in the full list;
    in a shorter list (only what an office gives) it may have another, with its own prompt."""
    base = f"{kind}.{item}.choice"
    return base if digit == usual else f"{base}.{digit}"


def fee_paths(fee: Fee | FeeChoice | None, path: str = ""
              ) -> Iterator[tuple[str, Fee | FeeChoice | None]]:
    """Every node of a fee table with its path of keys ("", "1", "1.2"), root first."""
    yield path, fee
    if isinstance(fee, FeeChoice):
        for i, option in enumerate(fee.options, start=1):
            yield from fee_paths(option.fee, f"{path}.{i}" if path else str(i))


def fee_node(fee: Fee | FeeChoice | None, path: str
             ) -> tuple[list[Text], Fee | FeeChoice | None] | None:
    """Follow a path of keys through a fee table: (labels chosen, node) or None."""
    labels: list[Text] = []
    node = fee
    for part in path.split(".") if path else []:
        if not isinstance(node, FeeChoice) or not part.isdigit():
            return None
        index = int(part) - 1
        if not 0 <= index < len(node.options):
            return None
        labels.append(node.options[index].label)
        node = node.options[index].fee
    return labels, node


def fee_key(service: Service, path: str) -> str:
    return f"service.{service.id}.fee" + (f".{path}" if path else "")


class PromptBook:
    """All utterances of one catalogue + wording, looked up by key and language."""

    def __init__(self, catalog: Catalog, wording: Wording):
        self.catalog = catalog
        self.wording = wording
        self._texts: dict[tuple[str, str], str] = {}
        self._parts: dict[tuple[str, str], tuple[str, ...]] = {}
        self._pieces: set[tuple[str, str]] = set()  # said only as parts of others
        for lang in catalog.languages:
            pieces: dict[str, str] = {}
            for key, text in _utterances_of(catalog, wording, lang):
                self._texts[(key, lang)] = str(text)
                parts = text.parts if isinstance(text, Said) else None
                if parts and [p for p, _ in parts] != [key]:
                    self._parts[(key, lang)] = tuple(p for p, _ in parts)
                    pieces.update(parts)
            for key, text in _number_words(lang):
                pieces.setdefault(key, text)
            for key, text in pieces.items():
                if (key, lang) not in self._texts:
                    self._pieces.add((key, lang))
                known = self._texts.setdefault((key, lang), text)
                if known != text:
                    raise ValueError(f"part {key} [{lang}] is both {known!r} and {text!r}")

    def text(self, key: str, lang: str) -> str:
        return self._texts[(key, lang)]

    def has(self, key: str, lang: str) -> bool:
        return (key, lang) in self._texts

    def parts(self, key: str, lang: str) -> tuple[str, ...]:
        """The keys of the utterances this one is said with when its own audio is missing
        or stale, in order; () when it is one piece."""
        return self._parts.get((key, lang), ())

    def only_part(self, key: str, lang: str) -> bool:
        """Said only inside other utterances (a number word, a name, a template's phrase),
        never played on its own."""
        return (key, lang) in self._pieces

    def utterances(self) -> list[Utterance]:
        return [Utterance(k, lang, t, self._parts.get((k, lang), ()))
                for (k, lang), t in sorted(self._texts.items(),
                                           key=lambda i: (i[0][1], i[0][0]))]


def all_utterances(catalog: Catalog, wording: Wording) -> list[Utterance]:
    """Everything the line can say, in every language (what the renderer renders)."""
    return PromptBook(catalog, wording).utterances()


# --- Building the texts ----------------------------------------------------------------------


Part = tuple[str, str]  # (key, text) of one piece a sentence is said with


class Said(str):
    """Text that knows its parts: (key, text) pairs in the order they are said, or None when
    some of it cannot be said from parts (then only the whole sentence's audio will do)."""

    parts: tuple[Part, ...] | None

    def __new__(cls, text: str, parts: Iterable[Part] | None) -> Said:
        said = super().__new__(cls, text)
        said.parts = tuple(parts) if parts is not None else None
        return said


def parts_of(value: object) -> tuple[Part, ...] | None:
    return value.parts if isinstance(value, Said) else None


_EDGES = " \t\r\n\u200b។៕.,;:៖?!"


def part_text(text: str) -> str:
    """A piece as it is recorded: without the spaces and punctuation at its ends."""
    return text.strip(_EDGES)


def _speakable(text: str) -> bool:
    return any(char.isalnum() for char in text)


def _number_key(value: int) -> str:
    return f"digit.{value}" if 0 <= value <= 9 else f"number.{value}"


def _number_words(lang: str) -> Iterator[Part]:
    """Every number word of the language (the digits are the digit.N prompts): recorded
    once, they say any amount, day count, length or code."""
    if lang == "km":
        for value in WORD_VALUES[10:]:
            yield _number_key(value), value_word(value)
    elif lang == "en":
        for value, word in ENGLISH_WORDS.items():
            if value >= 10:
                yield _number_key(value), word


def number_parts(n: int, lang: str) -> tuple[Part, ...] | None:
    """The number words `n` is said with, as parts; None in a language whose number words
    the line does not know (its sentences with numbers are then said whole only)."""
    if lang == "km":
        return tuple((_number_key(v), value_word(v)) for v in number_values(n))
    if lang != "en":
        return None
    return tuple((_number_key(v), str(v) if v <= 9 else ENGLISH_WORDS[v])
                 for v in english_values(n))


class _Writer:
    def __init__(self, wording: Wording, lang: str, catalog: Catalog):
        self.lang = lang
        self.catalog = catalog
        self.templates = wording.templates[lang]
        # A fixed phrase of a template is one part, keyed by its first template (or by the
        # fixed sentence that says the same): "រៀល" is one recording for every fee.
        self.phrases: dict[str, Part] = {}
        for key, text in wording.sentences[lang].items():
            self.phrases.setdefault(part_text(text), (key, text))
        for name, template in self.templates.items():
            for i, literal in enumerate(_literals(template)):
                said = part_text(literal)
                self.phrases.setdefault(said, (f"part.{name}.{i}", said))

    def phrase(self, literal: str) -> tuple[Part, ...]:
        text = part_text(literal)
        if not _speakable(text):
            return ()
        return (self.phrases.get(text) or (f"part.{text}", text),)

    def name(self, key: str, text: str) -> Said:
        """A text of the catalogue (a name, a document), recorded on its own as `key`."""
        said = part_text(text)
        return Said(text, ((key, said),) if _speakable(said) else ())

    def join(self, separator: str, items: Sequence[str]) -> Said:
        """`separator.join(items)`, keeping the parts (the separator's words between)."""
        parts: list[Part] | None = []
        for i, item in enumerate(items):
            item_parts = parts_of(item)
            if parts is None or item_parts is None:
                parts = None
                continue
            if i:
                parts += self.phrase(separator)
            parts += item_parts
        return Said(separator.join(items), parts)

    def number(self, n: int) -> Said:
        """Khmer numbers as words (spoken amounts); English with thousands separators."""
        text = number_words(n) if self.lang == "km" else f"{n:,}"
        return Said(text, number_parts(n, self.lang))

    def two_digits(self, n: int) -> Said:
        """Minutes past the hour: Khmer words; otherwise two digits (7:05)."""
        if self.lang == "km":
            return self.number(n)
        return Said(f"{n:02d}", None)  # said whole only

    def clock(self, at: time) -> Said:
        """A time of day as people say it: 7:30 in the morning, 5 in the afternoon."""
        period = ("night" if at.hour < 5 or at.hour >= 20 else "morning" if at.hour < 12
                  else "afternoon" if at.hour < 17 else "evening")
        hour = self.number(at.hour % 12 or 12)
        said = self.fill(f"clock.{period}")
        if at.minute:
            return self.fill("clock.minutes", hour=hour, minutes=self.two_digits(at.minute),
                             period=said)
        return self.fill("clock.hour", hour=hour, period=said)

    def fill(self, template: str, **values: object) -> Said:
        return self._format(template, True, values)

    def _format(self, template: str, tidy: bool, values: dict[str, object]) -> Said:
        pattern = self.templates[template]
        text = pattern.format(**values)
        parts: list[Part] | None = []
        for literal, field, _, _ in string.Formatter().parse(pattern):
            if parts is not None and literal:
                parts += self.phrase(literal)
            if field is not None:
                value_parts = parts_of(values[field])
                parts = None if parts is None or value_parts is None else parts + [*value_parts]
        return Said(_tidy(text) if tidy else text, parts)

    def per(self, fee: Fee, where: str) -> Said:
        # Not tidied: the template's leading space separates the unit from the amount.
        if not fee.per:
            return Said("", ())
        return self._format("fee.per", False, {"per": self.name(f"{where}.per",
                                                                fee.per[self.lang])})

    def duration(self, seconds: int) -> Said:
        """A recording's length as people say it: two minutes, not 120 seconds."""
        if seconds % 60 == 0:
            minutes = seconds // 60
            return self.fill("duration.minute" if minutes == 1 else "duration.minutes",
                             minutes=self.number(minutes))
        return self.fill("duration.seconds", seconds=self.number(seconds))

    def foreigners(self, fee: Fee, where: str) -> Said | None:
        """Said after a fee published for Cambodian citizens only."""
        if not fee.citizens_only:
            return None
        if fee.foreigners_riel is None:
            return self.fill("fee.citizens-only")
        return self.fill("fee.foreigners", amount=self.number(fee.foreigners_riel),
                         per=self.per(fee, where))

    def choice(self, name: str, digit: int) -> Said:
        return self.fill("choice", name=name, digit=self.number(digit))

    def fee(self, fee: Fee | FeeChoice | None, where: str) -> Said:
        """`where`: the catalogue key of this fee (catalog.service.<id>.fee[.path])."""
        if fee is None:
            return self.fill("fee.unpublished")
        if isinstance(fee, FeeChoice):
            return self.fill("fee.table")
        if fee.parts:
            parts = self.join(self.templates["fee.parts.separator"], [
                self.fill("fee.part", label=self.name(f"{where}.part.{i}", p.label[self.lang]),
                          amount=self.number(p.riel))
                for i, p in enumerate(fee.parts, start=1)])
            return self._then(self.fill("fee.parts", parts=parts), self.foreigners(fee, where))
        assert fee.riel is not None
        per = self.per(fee, where)
        text = self.fill(f"fee.{fee.type}", amount=self.number(fee.riel), per=per)
        if fee.discounted_riel is not None:  # instead of the fee, per the same unit
            text = self._then(text, self.fill("fee.discounted",
                                              amount=self.number(fee.discounted_riel), per=per))
        return self._then(text, self.foreigners(fee, where))

    def _then(self, first: Said, then: Said | None) -> Said:
        return first if then is None else self.join(" ", [first, then])

    def fee_reminder(self, service: Service) -> Said:
        """The official fee, said before asking whether the caller paid more."""
        if service.fee is None:
            return self.fill("fee.reminder.unpublished")
        if isinstance(service.fee, FeeChoice):
            return self.fill("fee.reminder.table")
        return self.fee(service.fee, f"catalog.service.{service.id}.fee")

    def service_info(self, service: Service) -> Said:
        lang = self.lang
        where = f"catalog.service.{service.id}"
        parts = [self.fill("service.name", name=self.name(f"{where}.name", service.name[lang]))]
        if service.offered_at:  # limited to some offices: say which
            offices = self.join(self.templates["offices.separator"], [
                self.name(f"catalog.office.{o.id}.name", o.name[lang])
                for o in self.catalog.offices if o.id in service.offered_at])
            parts.append(self.fill("service.offered-at", offices=offices))
        elif service.level == "provincial":
            parts.append(self.fill("service.provincial"))
        if service.documents is None:
            parts.append(self.fill("documents.unpublished"))
        else:
            documents = self.join(self.templates["documents.separator"], [
                self.name(f"{where}.document.{i}", d[lang])
                for i, d in enumerate(service.documents, start=1)])
            parts.append(self.fill("documents", list=documents))
            if not service.documents_complete:
                parts.append(self.fill("documents.incomplete"))
        days = (self.fill("days.unpublished") if service.max_days is None
                else self.fill("days", days=self.number(service.max_days)))
        fee = self.fee(service.fee, f"{where}.fee")
        if isinstance(service.fee, FeeChoice):  # the days first: the table's question follows
            parts += [days, fee]
        else:
            parts += [fee, days]
        if service.validity is not None:
            parts.append(self.fill("validity", validity=self.name(f"{where}.validity",
                                                                  service.validity[lang])))
        return self.join(" ", parts)


def _literals(template: str) -> list[str]:
    """The fixed phrases of a template (the text between its {fields}) that are spoken."""
    return [literal for literal, _, _, _ in string.Formatter().parse(template)
            if _speakable(part_text(literal))]


def _tidy(text: str) -> str:
    """Collapse spaces and drop a space left before a full stop by an empty field."""
    text = re.sub(r"\s+", " ", text).strip()
    return re.sub(r" ([.,;។])", r"\1", text)


def _name(w: _Writer, thing: Category | Service) -> Said:
    kind = "category" if isinstance(thing, Category) else "service"
    return w.name(f"catalog.{kind}.{thing.id}.name", thing.name[w.lang])


def _district(w: _Writer, office: Office) -> Said:
    return w.name(f"catalog.office.{office.id}.district", office.district[w.lang])


def _utterances_of(catalog: Catalog, wording: Wording, lang: str) -> Iterator[tuple[str, str]]:
    w = _Writer(wording, lang, catalog)
    yield from wording.sentences[lang].items()
    for categories in pages(catalog.categories):
        for digit, category in enumerate(categories, start=1):
            yield f"category.{category.id}.choice", w.choice(_name(w, category), digit)
    for category in catalog.categories:
        yield f"category.{category.id}.intro", w.fill("category.intro",
                                                      name=_name(w, category))
        for services in pages(category.services):
            for digit, service in enumerate(services, start=1):
                yield f"service.{service.id}.choice", w.choice(_name(w, service), digit)
        for service in category.services:
            yield f"service.{service.id}.info", w.service_info(service)
            yield from _fee_utterances(w, service)
            yield f"service.{service.id}.fee.reminder", w.fee_reminder(service)
            yield f"service.{service.id}.days.reminder", (
                w.fill("days.reminder.unpublished") if service.max_days is None
                else w.fill("days.reminder", days=w.number(service.max_days)))
    yield from _office_utterances(catalog, w)
    yield from _survey_utterances(catalog, w)
    for digit, topic in enumerate(catalog.topics, start=1):
        yield f"complaint.topic.{topic.id}.choice", w.choice(
            w.name(f"catalog.topic.{topic.id}.name", topic.name[lang]), digit)
    yield from _opening_utterances(catalog, w)
    length = w.duration(catalog.max_recording_seconds)
    yield "complaint.notice", w.fill("complaint.notice", length=length)
    yield "ombudsman.notice", w.fill("ombudsman.notice", length=length)
    for digit in range(10):
        yield f"digit.{digit}", w.number(digit)
    yield from _date_utterances(catalog, w)


CASE_YEARS = range(2025, 2041)  # years a case's "received on" can say


def _date_utterances(catalog: Catalog, w: _Writer) -> Iterator[tuple[str, str]]:
    """What the case status (main menu 5) composes its sentence from: the office, then the
    day, month (a sentence in prompts/) and year the case was received."""
    for office in catalog.offices:
        yield f"office.{office.id}.about", w.fill("status.office", name=w.name(
            f"catalog.office.{office.id}.name", office.name[w.lang]))
    for day in range(1, 32):
        yield f"date.day.{day}", w.fill("date.day", day=w.number(day))
    for year in CASE_YEARS:
        # Khmer: the year in words; English: its digits, said from parts as the number
        yield f"date.year.{year}", w.fill("date.year", year=w.number(year) if w.lang == "km"
                                          else Said(str(year), number_parts(year, w.lang)))


def _office_utterances(catalog: Catalog, w: _Writer) -> Iterator[tuple[str, str]]:
    for provinces in pages(catalog.provinces()):
        for digit, province in enumerate(provinces, start=1):
            yield f"province.{province.code}.choice", w.choice(
                w.name(f"catalog.province.{province.code}.name", province.name[w.lang]), digit)
    for province in catalog.provinces():
        for page in pages(catalog.offices_in(province.code)):
            for digit, office in enumerate(page, start=1):
                # a provincial unit is chosen by its name, among the districts of its province
                yield f"office.{office.id}.choice", w.choice(_said(w, office), digit)
    for office in catalog.offices:
        yield f"office.{office.id}.connecting", w.fill("office.connecting",
                                                       district=_district(w, office))
        yield f"office.{office.id}.chosen", w.fill("office.chosen", office=_said(w, office))
    only = {found[0].id: found[0] for found in
            (catalog.offices_offering(s.id) for s in catalog.services()) if len(found) == 1}
    for office in only.values():  # the only office that gives some service
        yield f"office.{office.id}.only", w.fill("office.only", office=w.name(
            f"catalog.office.{office.id}.name", office.name[w.lang]))
    yield from _shorter_lists(catalog, w)
    # read back after a wrong code: the lengths the catalogue's codes have ("4", "4 or 5")
    lengths = sorted({len(office.code) for office in catalog.offices})
    sep = w.templates["office.code.lengths.separator"]
    yield "office.code.length", w.fill("office.code.length",
                                       length=w.join(sep, [w.number(n) for n in lengths]))


OPENS_WHEN = ("today", "tomorrow", *WEEKDAYS)


def opening_key(when: str, at: time) -> str:
    """"It opens again <when> at <time>": when is today, tomorrow or a weekday (mon...)."""
    return f"ombudsman.opens.{when}.{at:%H%M}"


def _opening_utterances(catalog: Catalog, w: _Writer) -> Iterator[tuple[str, str]]:
    """When a closed Ombudsman line opens again, for every opening time in the catalogue."""
    times = sorted({o.ombudsman.hours.open for o in catalog.offices
                    if o.ombudsman.hours is not None})
    for at in times:
        clock = w.clock(at)
        for when in OPENS_WHEN:
            text = (w.fill(f"ombudsman.opens.{when}", time=clock) if when in OPENS_WHEN[:2]
                    else w.fill("ombudsman.opens.day", day=w.fill(f"day.{when}"),
                                time=clock))
            yield opening_key(when, at), text


def _said(w: _Writer, office: Office) -> Said:
    """How an office is named in menus: its district (with its unit), or a provincial
    unit's own name."""
    if office.level == "provincial":
        return w.name(f"catalog.office.{office.id}.name", office.name[w.lang])
    return _district(w, office)


def _shorter_lists(catalog: Catalog, w: _Writer) -> Iterator[tuple[str, str]]:
    """The choices of lists shortened to what an office gives (the services to rate there)
    or to the offices that give a service (where to rate it), where an item's key differs
    from its key in the full list."""
    lang = w.lang
    names: dict[str, dict[str, Said]] = {
        "category": {c.id: _name(w, c) for c in catalog.categories},
        "service": {s.id: _name(w, s) for s in catalog.services()},
        "province": {p.code: w.name(f"catalog.province.{p.code}.name", p.name[lang])
                     for p in catalog.provinces()},
        "office": {o.id: _said(w, o) for o in catalog.offices},
    }
    lists: set[tuple[str, tuple[str, ...], tuple[str, ...]]] = set()
    every_category = tuple(c.id for c in catalog.categories)
    for office in catalog.offices:
        given = catalog.categories_at(office.id)
        lists.add(("category", tuple(c.id for c in given), every_category))
        for category in given:
            full = catalog.category(category.id)
            assert full is not None
            lists.add(("service", tuple(s.id for s in category.services),
                       tuple(s.id for s in full.services)))
    every_province = tuple(p.code for p in catalog.provinces())
    for service in catalog.services():
        offering = {o.id for o in catalog.offices_offering(service.id)}
        if len(offering) == len(catalog.offices):
            continue
        provinces = []
        for province in every_province:
            offices = tuple(o.id for o in catalog.offices_in(province))
            shown = tuple(o for o in offices if o in offering)
            if shown:
                provinces.append(province)
            if len(shown) > 1:  # one office: the province leads straight to it
                lists.add(("office", shown, offices))
        lists.add(("province", tuple(provinces), every_province))
    said: dict[str, Said] = {}
    for kind, shown, every in sorted(lists):
        for i, item in enumerate(shown):
            digit, usual = i % PAGE_SIZE + 1, every.index(item) % PAGE_SIZE + 1
            key = choice_key(kind, item, digit, usual)
            if digit != usual and key not in said:
                said[key] = w.choice(names[kind][item], digit)
    yield from said.items()


def _survey_utterances(catalog: Catalog, w: _Writer) -> Iterator[tuple[str, str]]:
    for question in catalog.survey:
        asked = w.name(f"catalog.survey.{question.id}.prompt", _tidy(question.prompt[w.lang]))
        parts: list[str] = [asked, *question.kind.keys(question, w)]
        if question.optional:
            parts.append(w.fill("survey.skip"))
        yield f"survey.{question.id}", w.join(" ", parts)


def _fee_utterances(w: _Writer, service: Service) -> Iterator[tuple[str, str]]:
    """A fee table becomes one question per menu and one sentence per answer."""
    if not isinstance(service.fee, FeeChoice):
        return
    for path, node in fee_paths(service.fee):
        found = fee_node(service.fee, path)
        assert found is not None
        labels, _ = found
        where = f"catalog.service.{service.id}.fee"
        if isinstance(node, FeeChoice):
            asked = w.name(f"{where}{'.' + path if path else ''}.question",
                           _tidy(node.question[w.lang]))
            choices = [w.choice(w.name(f"{where}.{path + '.' if path else ''}{i}.label",
                                       o.label[w.lang]), i)
                       for i, o in enumerate(node.options, start=1)]
            yield fee_key(service, path), w.join(" ", [asked, *choices])
        else:
            sep = w.templates["fee.labels.separator"]
            steps = path.split(".")
            said = w.join(sep, [w.name(f"{where}.{'.'.join(steps[:n])}.label", label[w.lang])
                                for n, label in enumerate(labels, start=1)])
            capital = Said(said[:1].upper() + said[1:], said.parts)
            yield fee_key(service, path), w.fill(
                "fee.leaf", labels=capital, fee=w.fee(node, f"{where}.{path}"))
