"""A topic pack's figures: numbers worth extracting, read where numbers begin.

Figures whose pattern begins with its value are tried only where a number
begins, all of them as one regex: the call costs more than the failing
branches, and a number is read by one figure at most, the first in pack order.
Values are digits or number words, converted into the figure's unit by its
scale. Compiled with the engine by mypyc (see setup.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Final

from .pack import FigureSpec, alternation
from .scan import FieldName, Span

__all__ = ["NUMBER_WORDS", "Figures", "FoundFigure"]

FoundFigure = tuple[str, float, str, Span]
"""A figure read: its name, value and unit, and where it was read."""

# "zero" and "one" are left out: "one of the hostages" is no figure, and the
# words are too common to try each as one.
NUMBER_WORDS: Final[dict[str, int]] = {
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "thirteen": 13,
    "fourteen": 14,
    "fifteen": 15,
    "sixteen": 16,
    "seventeen": 17,
    "eighteen": 18,
    "nineteen": 19,
    "twenty": 20,
    "thirty": 30,
    "forty": 40,
    "fifty": 50,
    "sixty": 60,
    "seventy": 70,
    "eighty": 80,
    "ninety": 90,
}


def _value(text: str) -> float | None:
    """A figure's value: digits with thousands commas ("1,200"), a decimal
    ("1.5") or a number word ("six"); None for anything else ("1.2.3")."""
    try:
        return float(text.replace(",", ""))
    except ValueError:
        words = NUMBER_WORDS.get(text.lower())
        return None if words is None else float(words)


@dataclass(frozen=True, slots=True)
class _Figure:
    name: str
    unit: str
    scale: dict[str, float]  # the pattern's unit word, lower-cased -> factor to ``unit``
    value: str  # the names of its groups in the regex it is matched with
    unit_group: str

    def read(self, field: FieldName, m: re.Match[str]) -> FoundFigure | None:
        """The figure ``m`` matched, in the figure's unit; None if its value is no number."""
        raw = m.group(self.value)
        value = None if raw is None else _value(raw)
        if value is None:
            return None
        if self.scale and (unit := m.group(self.unit_group)):
            value *= self.scale.get(unit.lower(), 1.0)
        return (self.name, value, self.unit, (field, m.start(), m.end(), m.group(0)))


def _figure(name: str, spec: FigureSpec, value: str, unit: str) -> _Figure:
    scale = {word.lower(): factor for word, factor in spec.scale.items()}
    return _Figure(name, spec.unit, scale, value, unit)


@dataclass(frozen=True, slots=True)
class _Alternation:
    """Figure patterns as one regex, the i-th its group ``f{i}``."""

    match: Callable[[str, int], re.Match[str] | None]  # the regex's, bound once
    of: dict[str, _Figure]  # alternative group name -> its figure

    @staticmethod
    def of_specs(figures: list[tuple[str, FigureSpec]]) -> _Alternation | None:
        if not figures:
            return None
        regex = re.compile(alternation([spec.pattern for _, spec in figures]), re.IGNORECASE)
        return _Alternation(
            regex.match,
            {
                f"f{i}": _figure(name, spec, f"f{i}_value", f"f{i}_unit")
                for i, (name, spec) in enumerate(figures)
            },
        )

    def read(
        self, field: FieldName, text: str, starts: list[int], found: list[FoundFigure]
    ) -> None:
        """Add the figures read at ``starts``, skipping those inside the last one read."""
        end = -1
        for start in starts:
            if start >= end and (m := self.match(text, start)):
                end = m.end()
                figure = self.of[m.lastgroup or ""].read(field, m)
                if figure is not None:
                    found.append(figure)


class Figures:
    """A pack's figures compiled for reading. Build once, call :meth:`read` often."""

    def __init__(self, figures: dict[str, FigureSpec]) -> None:
        at_digits: list[tuple[str, FigureSpec]] = []
        at_words: list[tuple[str, FigureSpec]] = []
        self._anywhere: list[tuple[_Figure, Callable[[str], Iterator[re.Match[str]]]]] = []
        for name, spec in figures.items():
            if not spec.pattern.startswith("(?P<value>"):
                pattern = re.compile(spec.pattern, re.IGNORECASE)
                self._anywhere.append((_figure(name, spec, "value", "unit"), pattern.finditer))
                continue
            at_digits.append((name, spec))
            # A pattern that reads number words spells them out; the others
            # are not tried where a word begins.
            if any(word in spec.pattern.lower() for word in NUMBER_WORDS):
                at_words.append((name, spec))
        self._at_digits = _Alternation.of_specs(at_digits)
        self._at_words = _Alternation.of_specs(at_words)

    def read(
        self, field: FieldName, text: str, digits: list[int], words: list[int]
    ) -> list[FoundFigure]:
        """The figures in one field, given where its digits and number words begin.

        Args:
            field: which field ``text`` is.
            text: the field's text.
            digits: where numbers in digits begin, in order.
            words: where number words (``NUMBER_WORDS``) begin, in order.

        Returns:
            The figures read: those at digits, at words, then those found anywhere.
        """
        found: list[FoundFigure] = []
        if self._at_digits is not None and digits:
            self._at_digits.read(field, text, digits, found)
        if self._at_words is not None and words:
            self._at_words.read(field, text, words, found)
        for figure, finditer in self._anywhere:
            for m in finditer(text):
                read = figure.read(field, m)
                if read is not None:
                    found.append(read)
        return found
