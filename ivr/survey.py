"""Survey questions and their types. A type is one object that knows how its questions are
asked (the keys said after the question), how a key becomes the stored answer, and how the
scorecards summarise the answers; so adding a type touches this module only.

The scorecards (ivr.report) read `figures` and `splits`; the line reads `keys`, `answers`
and `explain`; the catalogue checks `needs_options`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from statistics import mean, pstdev
from typing import Protocol

Figure = tuple[str, Callable[[Sequence[str]], float | None]]  # (column, from stored answers)


class Speaker(Protocol):
    """What a type needs to word its keys (ivr.prompts' writer, in one language)."""

    lang: str

    def fill(self, template: str, **values: object) -> str: ...

    def choice(self, name: str, digit: int) -> str: ...

    def name(self, key: str, text: str) -> str:
        """A catalogue text said as its own recording `key` (so the sentence can be said from
        its parts)."""
        ...


@dataclass(frozen=True)
class SurveyOption:
    id: str
    label: Mapping[str, str]


@dataclass(frozen=True)
class Question:
    """One survey question of the catalogue; `type` names its QuestionType."""

    id: str
    type: str
    prompt: Mapping[str, str]
    optional: bool = False
    remind: str | None = None  # "fee" or "days": the service's official figure, said first
    options: tuple[SurveyOption, ...] = ()

    @property
    def kind(self) -> QuestionType:
        return TYPES[self.type]

    def value_of(self, key: str) -> str | None:
        """The stored answer for a key, or None when the key is not an answer."""
        return self.kind.value_of(self, key)


class QuestionType:
    """How one type of question is asked, answered, stored and summarised."""

    name = ""
    explain: str | None = None  # a prompt said once, before the first question of the type
    needs_options = False  # the catalogue lists the answers (choice)
    splits = False  # the scorecards show every group of its answers apart (women, men)

    def keys(self, question: Question, say: Speaker) -> list[str]:
        """What is said after the question: which key gives which answer."""
        raise NotImplementedError

    def answers(self, question: Question) -> dict[str, str]:
        """Key -> the answer stored for it (the keys that are answers)."""
        raise NotImplementedError

    def value_of(self, question: Question, key: str) -> str | None:
        """The answer stored for the keys a caller pressed; None: not an answer."""
        return self.answers(question).get(key)

    def figures(self) -> list[Figure]:
        """The scorecard's columns for a question of this type, from its stored answers."""
        return []


def _numbers(values: Sequence[str]) -> list[int]:
    return [int(v) for v in values if v.isdigit()]


def mean_of(values: Sequence[str]) -> float | None:
    numbers = _numbers(values)
    return round(mean(numbers), 2) if numbers else None


def spread_of(values: Sequence[str]) -> float | None:
    numbers = _numbers(values)
    return round(pstdev(numbers), 2) if numbers else None


def share_of_yes(values: Sequence[str]) -> float | None:
    """Every stored answer counts: anything but 'yes' is not a yes."""
    return round(sum(v == "yes" for v in values) / len(values), 3) if values else None


class Scale(QuestionType):
    """1 (very dissatisfied) to 5 (very satisfied): a mean and its spread."""

    name = "scale"
    explain = "survey.scale.explain"
    ANSWERS = {key: key for key in "12345"}

    def keys(self, question: Question, say: Speaker) -> list[str]:
        return [say.fill("survey.scale.keys")]

    def answers(self, question: Question) -> dict[str, str]:
        return self.ANSWERS

    def figures(self) -> list[Figure]:
        return [("mean", mean_of), ("sd", spread_of)]


class YesNo(QuestionType):
    """1 yes, 2 no: the share of yes."""

    name = "yes-no"
    ANSWERS = {"1": "yes", "2": "no"}

    def keys(self, question: Question, say: Speaker) -> list[str]:
        return [say.fill("survey.yes-no.keys")]

    def answers(self, question: Question) -> dict[str, str]:
        return self.ANSWERS

    def figures(self) -> list[Figure]:
        return [("yes share", share_of_yes)]


class Choice(QuestionType):
    """One of the catalogue's options (1-8): the scorecards split by it (gender)."""

    name = "choice"
    needs_options = True
    splits = True

    def keys(self, question: Question, say: Speaker) -> list[str]:
        return [say.choice(say.name(f"catalog.survey.{question.id}.{o.id}", o.label[say.lang]), i)
                for i, o in enumerate(question.options, 1)]

    def answers(self, question: Question) -> dict[str, str]:
        return {str(i): o.id for i, o in enumerate(question.options, 1)}

    def value_of(self, question: Question, key: str) -> str | None:
        if key.isdigit() and 1 <= int(key) <= len(question.options):
            return question.options[int(key) - 1].id
        return None


TYPES: dict[str, QuestionType] = {t.name: t for t in (Scale(), YesNo(), Choice())}
