"""Every utterance of the line, as key + language -> text.

This is the one place that knows the full list: the call flow asks it for the text of a
key, the renderer renders all of it, and `ivr check` compares it with the audio manifest.
Fixed sentences come from prompts/<lang>.yaml; the rest are its templates filled in from
the catalogue, with numbers written as words in Khmer.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import time
from pathlib import Path
from typing import TypeVar

from ivr.catalog import (
    WEEKDAYS,
    Catalog,
    CatalogError,
    Fee,
    FeeChoice,
    Office,
    Service,
    Text,
    read_yaml,
)
from ivr.khmer import number_words
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
        for lang in catalog.languages:
            for key, text in _utterances_of(catalog, wording, lang):
                self._texts[(key, lang)] = text

    def text(self, key: str, lang: str) -> str:
        return self._texts[(key, lang)]

    def has(self, key: str, lang: str) -> bool:
        return (key, lang) in self._texts

    def utterances(self) -> list[Utterance]:
        return [Utterance(k, lang, t) for (k, lang), t in sorted(self._texts.items(),
                                                                 key=lambda i: (i[0][1], i[0][0]))]


def all_utterances(catalog: Catalog, wording: Wording) -> list[Utterance]:
    """Everything the line can say, in every language (what the renderer renders)."""
    return PromptBook(catalog, wording).utterances()


# --- Building the texts ----------------------------------------------------------------------


class _Writer:
    def __init__(self, wording: Wording, lang: str, catalog: Catalog):
        self.lang = lang
        self.catalog = catalog
        self.templates = wording.templates[lang]

    def number(self, n: int) -> str:
        """Khmer numbers as words (spoken amounts); English with thousands separators."""
        return number_words(n) if self.lang == "km" else f"{n:,}"

    def two_digits(self, n: int) -> str:
        """Minutes past the hour: Khmer words; otherwise two digits (7:05)."""
        return number_words(n) if self.lang == "km" else f"{n:02d}"

    def clock(self, at: time) -> str:
        """A time of day as people say it: 7:30 in the morning, 5 in the afternoon."""
        period = ("night" if at.hour < 5 or at.hour >= 20 else "morning" if at.hour < 12
                  else "afternoon" if at.hour < 17 else "evening")
        hour = self.number(at.hour % 12 or 12)
        said = self.templates[f"clock.{period}"]
        if at.minute:
            return self.fill("clock.minutes", hour=hour, minutes=self.two_digits(at.minute),
                             period=said)
        return self.fill("clock.hour", hour=hour, period=said)

    def fill(self, template: str, **values: object) -> str:
        return _tidy(self.templates[template].format(**values))

    def per(self, fee: Fee) -> str:
        # Not tidied: the template's leading space separates the unit from the amount.
        return self.templates["fee.per"].format(per=fee.per[self.lang]) if fee.per else ""

    def duration(self, seconds: int) -> str:
        """A recording's length as people say it: two minutes, not 120 seconds."""
        if seconds % 60 == 0:
            minutes = seconds // 60
            return self.fill("duration.minute" if minutes == 1 else "duration.minutes",
                             minutes=self.number(minutes))
        return self.fill("duration.seconds", seconds=self.number(seconds))

    def foreigners(self, fee: Fee) -> str:
        """Said after a fee published for Cambodian citizens only."""
        if not fee.citizens_only:
            return ""
        if fee.foreigners_riel is None:
            return " " + self.fill("fee.citizens-only")
        return " " + self.fill("fee.foreigners", amount=self.number(fee.foreigners_riel),
                               per=self.per(fee))

    def choice(self, name: str, digit: int) -> str:
        return self.fill("choice", name=name, digit=self.number(digit))

    def fee(self, fee: Fee | FeeChoice | None) -> str:
        if fee is None:
            return self.fill("fee.unpublished")
        if isinstance(fee, FeeChoice):
            return self.fill("fee.table")
        if fee.parts:
            sep = self.templates["fee.parts.separator"]
            parts = sep.join(self.fill("fee.part", label=p.label[self.lang],
                                       amount=self.number(p.riel)) for p in fee.parts)
            return self.fill("fee.parts", parts=parts) + self.foreigners(fee)
        assert fee.riel is not None
        per = self.per(fee)
        text = self.fill(f"fee.{fee.type}", amount=self.number(fee.riel), per=per)
        if fee.discounted_riel is not None:  # instead of the fee, per the same unit
            text += " " + self.fill("fee.discounted", amount=self.number(fee.discounted_riel),
                                    per=per)
        return text + self.foreigners(fee)

    def fee_reminder(self, service: Service) -> str:
        """The official fee, said before asking whether the caller paid more."""
        if service.fee is None:
            return self.fill("fee.reminder.unpublished")
        if isinstance(service.fee, FeeChoice):
            return self.fill("fee.reminder.table")
        return self.fee(service.fee)

    def service_info(self, service: Service) -> str:
        lang = self.lang
        parts = [self.fill("service.name", name=service.name[lang])]
        if service.offered_at:  # limited to some offices: say which
            sep = self.templates["offices.separator"]
            parts.append(self.fill("service.offered-at", offices=sep.join(
                o.name[lang] for o in self.catalog.offices if o.id in service.offered_at)))
        elif service.level == "provincial":
            parts.append(self.fill("service.provincial"))
        if service.documents is None:
            parts.append(self.fill("documents.unpublished"))
        else:
            sep = self.templates["documents.separator"]
            parts.append(self.fill("documents", list=sep.join(d[lang] for d in service.documents)))
            if not service.documents_complete:
                parts.append(self.fill("documents.incomplete"))
        days = (self.fill("days.unpublished") if service.max_days is None
                else self.fill("days", days=self.number(service.max_days)))
        if isinstance(service.fee, FeeChoice):  # the days first: the table's question follows
            parts += [days, self.fee(service.fee)]
        else:
            parts += [self.fee(service.fee), days]
        if service.validity is not None:
            parts.append(self.fill("validity", validity=service.validity[lang]))
        return " ".join(parts)


def _tidy(text: str) -> str:
    """Collapse spaces and drop a space left before a full stop by an empty field."""
    text = re.sub(r"\s+", " ", text).strip()
    return re.sub(r" ([.,;។])", r"\1", text)


def _utterances_of(catalog: Catalog, wording: Wording, lang: str) -> Iterator[tuple[str, str]]:
    w = _Writer(wording, lang, catalog)
    yield from wording.sentences[lang].items()
    for categories in pages(catalog.categories):
        for digit, category in enumerate(categories, start=1):
            yield f"category.{category.id}.choice", w.choice(category.name[lang], digit)
    for category in catalog.categories:
        yield f"category.{category.id}.intro", w.fill("category.intro", name=category.name[lang])
        for services in pages(category.services):
            for digit, service in enumerate(services, start=1):
                yield f"service.{service.id}.choice", w.choice(service.name[lang], digit)
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
        yield f"complaint.topic.{topic.id}.choice", w.choice(topic.name[lang], digit)
    yield from _opening_utterances(catalog, w)
    length = w.duration(catalog.max_recording_seconds)
    yield "complaint.notice", w.fill("complaint.notice", length=length)
    yield "ombudsman.notice", w.fill("ombudsman.notice", length=length)
    for digit in range(10):
        yield f"digit.{digit}", w.number(digit)


def _office_utterances(catalog: Catalog, w: _Writer) -> Iterator[tuple[str, str]]:
    for provinces in pages(catalog.provinces()):
        for digit, province in enumerate(provinces, start=1):
            yield f"province.{province.code}.choice", w.choice(province.name[w.lang], digit)
    for province in catalog.provinces():
        for page in pages(catalog.offices_in(province.code)):
            for digit, office in enumerate(page, start=1):
                # a provincial unit is chosen by its name, among the districts of its province
                yield f"office.{office.id}.choice", w.choice(_said(office)[w.lang], digit)
    for office in catalog.offices:
        yield f"office.{office.id}.connecting", w.fill("office.connecting",
                                                       district=office.district[w.lang])
        yield f"office.{office.id}.chosen", w.fill("office.chosen",
                                                   office=_said(office)[w.lang])
    only = {found[0].id: found[0] for found in
            (catalog.offices_offering(s.id) for s in catalog.services()) if len(found) == 1}
    for office in only.values():  # the only office that gives some service
        yield f"office.{office.id}.only", w.fill("office.only", office=office.name[w.lang])
    yield from _shorter_lists(catalog, w)
    # read back after a wrong code: the lengths the catalogue's codes have ("4", "4 or 5")
    lengths = sorted({len(office.code) for office in catalog.offices})
    sep = w.templates["office.code.lengths.separator"]
    yield "office.code.length", w.fill("office.code.length",
                                       length=sep.join(w.number(n) for n in lengths))


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
                    else w.fill("ombudsman.opens.day", day=w.templates[f"day.{when}"],
                                time=clock))
            yield opening_key(when, at), text


def _said(office: Office) -> Text:
    """How an office is named in menus: its district (with its unit), or a provincial
    unit's own name."""
    return office.name if office.level == "provincial" else office.district


def _shorter_lists(catalog: Catalog, w: _Writer) -> Iterator[tuple[str, str]]:
    """The choices of lists shortened to what an office gives (the services to rate there)
    or to the offices that give a service (where to rate it), where an item's key differs
    from its key in the full list."""
    names: dict[str, dict[str, Text]] = {
        "category": {c.id: c.name for c in catalog.categories},
        "service": {s.id: s.name for s in catalog.services()},
        "province": {p.code: p.name for p in catalog.provinces()},
        "office": {o.id: _said(o) for o in catalog.offices},
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
    said: dict[str, str] = {}
    for kind, shown, every in sorted(lists):
        for i, item in enumerate(shown):
            digit, usual = i % PAGE_SIZE + 1, every.index(item) % PAGE_SIZE + 1
            key = choice_key(kind, item, digit, usual)
            if digit != usual and key not in said:
                said[key] = w.choice(names[kind][item][w.lang], digit)
    yield from said.items()


def _survey_utterances(catalog: Catalog, w: _Writer) -> Iterator[tuple[str, str]]:
    for question in catalog.survey:
        parts = [_tidy(question.prompt[w.lang]), *question.kind.keys(question, w)]
        if question.optional:
            parts.append(w.fill("survey.skip"))
        yield f"survey.{question.id}", " ".join(parts)


def _fee_utterances(w: _Writer, service: Service) -> Iterator[tuple[str, str]]:
    """A fee table becomes one question per menu and one sentence per answer."""
    if not isinstance(service.fee, FeeChoice):
        return
    for path, node in fee_paths(service.fee):
        found = fee_node(service.fee, path)
        assert found is not None
        labels, _ = found
        if isinstance(node, FeeChoice):
            choices = " ".join(w.choice(o.label[w.lang], i)
                               for i, o in enumerate(node.options, start=1))
            yield fee_key(service, path), f"{_tidy(node.question[w.lang])} {choices}"
        else:
            sep = w.templates["fee.labels.separator"]
            said = sep.join(label[w.lang] for label in labels)
            yield fee_key(service, path), w.fill(
                "fee.leaf", labels=said[:1].upper() + said[1:], fee=w.fee(node))
