"""The classifier's pure core: a compiled topic pack applied to an item's text.

Matching is one Aho-Corasick pass over the lower-cased title and summary that
finds every term of every group at once; rules are then evaluated on the few
hits per sentence. Nothing here does I/O or reads the clock.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Literal, NamedTuple

import ahocorasick
from dohawatch.shared import ids
from dohawatch.shared.events import Entity, EvidenceSpan, NewsItem, TaggedEvent
from pydantic import TypeAdapter

from .pack import EventSpec, Rule, TopicPack, expand

__all__ = ["ENGINE_VERSION", "Classification", "Classifier"]

ENGINE_VERSION = "1"

# A sentence ends at . ! ? followed by space and an upper-case letter or a quote;
# abbreviations such as "U.S. officials" stay inside their sentence.
_SENTENCE_END = re.compile(r"[.!?][\"'’”)]?\s+(?=[\"'‘“(]?[A-Z0-9])")
FieldName = Literal["title", "summary"]


def _fields(title: str, summary: str) -> tuple[tuple[FieldName, str], ...]:
    return (("title", title), ("summary", summary))


class _Hit(NamedTuple):  # a tuple: the engine makes dozens per item
    field: FieldName
    start: int
    end: int
    sentence: int  # sentence index within the field; the title is one sentence
    text: str

    def span(self) -> dict[str, object]:
        """The hit as an ``EvidenceSpan``'s fields."""
        return {"field": self.field, "start": self.start, "end": self.end, "text": self.text}


_EVENTS: TypeAdapter[tuple[TaggedEvent, ...]] = TypeAdapter(tuple[TaggedEvent, ...])
_ENTITIES: TypeAdapter[tuple[Entity, ...]] = TypeAdapter(tuple[Entity, ...])
_SPANS: TypeAdapter[tuple[EvidenceSpan, ...]] = TypeAdapter(tuple[EvidenceSpan, ...])


@dataclass(frozen=True)
class Classification:
    """What the classifier concluded about one item.

    The findings are plain data (``event_data``, ``entity_data``); the contract
    models are validated from them in one pass when first read, which costs
    more than finding them (``make bench`` measures both).
    """

    relevant: bool
    relevance: float
    event_types: tuple[str, ...]  # strongest first
    event_data: tuple[dict[str, object], ...]
    entity_data: tuple[dict[str, object], ...]
    relevance_data: tuple[dict[str, object], ...] = ()

    @cached_property
    def events(self) -> tuple[TaggedEvent, ...]:
        """The event tags with their evidence, strongest first."""
        return _EVENTS.validate_python(self.event_data)

    @cached_property
    def entities(self) -> tuple[Entity, ...]:
        """Actors, people and places mentioned, then the figures."""
        return _ENTITIES.validate_python(self.entity_data)

    @cached_property
    def relevance_evidence(self) -> tuple[EvidenceSpan, ...]:
        """The spans of the strongest relevance rule that matched."""
        return _SPANS.validate_python(self.relevance_data)


# Everything but letters, digits and the plain space becomes a space; spaces
# themselves are left alone, which keeps the substitutions few.
_NOT_WORD = re.compile(r"[^\w ]|_")
_NUMBER = re.compile(r"\d[\d,.]*")  # each match is one whole number: its start is a start


def _lower_same_length(text: str) -> str:
    lowered = text.lower()
    if len(lowered) == len(text):
        return lowered
    # A few characters lower-case to two (İ → i̇); keep offsets aligned with the original.
    return "".join(c if len(c.lower()) != 1 else c.lower() for c in text)


def _words(text: str) -> str:
    """``text`` lower-cased, every character that is not a letter or digit made a
    space, and padded with a space each side: an automaton key `` key `` then
    matches whole words only, and offsets stay those of ``text`` plus one."""
    return f" {_NOT_WORD.sub(' ', _lower_same_length(text))} "


def _at(pattern: re.Pattern[str], text: str, starts: list[int]) -> list[re.Match[str]]:
    """``pattern``'s non-overlapping matches that begin at one of ``starts``."""
    found: list[re.Match[str]] = []
    end = -1
    for start in starts:
        if start >= end and (m := pattern.match(text, start)):
            found.append(m)
            end = m.end()
    return found


def _sentence_starts(text: str) -> list[int]:
    return [0] + [m.end() for m in _SENTENCE_END.finditer(text)]


class Classifier:
    """A topic pack compiled for matching. Build once, call :meth:`classify` often."""

    def __init__(self, pack: TopicPack) -> None:
        self.pack = pack
        self.version = f"{pack.name}@{pack.version}/engine-{ENGINE_VERSION}"
        self._severity_rank = {name: spec.severity.rank for name, spec in pack.events.items()}
        automaton = ahocorasick.Automaton()
        keys: dict[str, set[str]] = defaultdict(set)
        for group, phrases in pack.terms.items():
            for phrase in phrases:
                for variant in expand(phrase):
                    keys[variant.lower()].add(group)
        for name, entity in pack.entities.items():
            for alias in entity.aliases:
                for variant in expand(alias):
                    keys[variant.lower()].add(f"@{name}")
        merged: dict[str, set[str]] = defaultdict(set)
        for key, groups in keys.items():
            merged[_words(key)] |= groups  # "al-Hayya" and "al Hayya" are one key
        for key, groups in merged.items():
            automaton.add_word(key, (len(key) - 2, frozenset(groups)))
        automaton.make_automaton()
        self._automaton = automaton
        self._figures = [
            (name, re.compile(spec.pattern, re.IGNORECASE), spec.unit)
            for name, spec in pack.figures.items()
        ]
        # Patterns that begin with their number are tried only where a number
        # begins, instead of at every character (the figures cost most otherwise).
        self._at_numbers = [p.pattern.startswith(r"(?P<value>\d") for _, p, _ in self._figures]

    def _hits(self, title: str, summary: str) -> dict[str, list[_Hit]]:
        """Every group's hits, in text order, on word boundaries."""
        by_group: dict[str, list[_Hit]] = defaultdict(list)
        for name, text in _fields(title, summary):
            starts = _sentence_starts(text) if name == "summary" else [0]
            # Keys carry their padding spaces, so a hit ends one past the word and
            # the padding shifts offsets by one: they fall back on ``text``'s own.
            for end_index, (length, groups) in self._automaton.iter(_words(text)):
                start = end_index - length - 1
                end = start + length
                hit = _Hit(name, start, end, bisect_right(starts, start) - 1, text[start:end])
                for group in groups:
                    by_group[group].append(hit)
        return by_group

    @staticmethod
    def _match(
        rule: Rule, hits: dict[str, list[_Hit]], cancel: tuple[str, ...] = (), window: int = 0
    ) -> list[_Hit] | None:
        """The hits that satisfy ``rule`` (one per group), or None."""
        anchors = hits.get(rule.all[0], [])
        for anchor in anchors:
            if any(
                c.field == anchor.field
                and c.sentence == anchor.sentence
                and c.end <= anchor.start
                and anchor.start - c.end <= window
                for group in cancel
                for c in hits.get(group, ())
            ):
                continue
            chosen = [anchor]
            for group in rule.all[1:]:
                found = next(
                    (
                        h
                        for h in hits.get(group, ())
                        if rule.scope == "item"
                        or (h.field == anchor.field and h.sentence == anchor.sentence)
                    ),
                    None,
                )
                if found is None:
                    break
                chosen.append(found)
            else:
                return chosen
        return None

    def _event(
        self, name: str, spec: EventSpec, hits: dict[str, list[_Hit]]
    ) -> tuple[str, float, list[dict[str, object]]] | None:
        best: tuple[float, list[_Hit]] | None = None
        for rule in spec.rules:
            chosen = self._match(rule, hits, spec.cancel, spec.cancel_window)
            if chosen is None:
                continue
            confidence = min(0.99, rule.confidence + (0.1 if chosen[0].field == "title" else 0))
            if best is None or confidence > best[0]:
                best = (confidence, chosen)
        if best is None:
            return None
        spans = [h.span() for h in sorted(set(best[1]), key=lambda h: (h.field, h.start))]
        return name, round(best[0], 3), spans

    def _entities(
        self, title: str, summary: str, hits: dict[str, list[_Hit]]
    ) -> tuple[dict[str, object], ...]:
        found: list[dict[str, object]] = [
            {
                "kind": self.pack.entities[group[1:]].kind,
                "name": group[1:],
                "evidence": [h.span() for h in group_hits[:3]],
            }
            for group, group_hits in hits.items()
            if group.startswith("@")
        ]
        for field_name, text in _fields(title, summary):
            starts = [m.start() for m in _NUMBER.finditer(text)]
            if not starts:
                continue
            for (name, pattern, unit), at_numbers in zip(
                self._figures, self._at_numbers, strict=True
            ):
                matches = _at(pattern, text, starts) if at_numbers else pattern.finditer(text)
                for m in matches:
                    span = {
                        "field": field_name,
                        "start": m.start(),
                        "end": m.end(),
                        "text": m.group(0),
                    }
                    found.append(
                        {
                            "kind": "figure",
                            "name": name,
                            "value": float(m.group("value").replace(",", "")),
                            "unit": unit,
                            "evidence": [span],
                        }
                    )
        return tuple(found)

    def classify(self, title: str, summary: str) -> Classification:
        """Tag one item's text.

        Args:
            title: plain-text headline.
            summary: plain-text summary.

        Returns:
            Relevance score and flag, the event types (only when relevant,
            strongest first) with their evidence, and the entities and figures.
        """
        hits = self._hits(title, summary)
        score = 0.0
        evidence: tuple[dict[str, object], ...] = ()
        positive: float | None = None
        for rule in self.pack.relevance.rules:
            chosen = self._match(rule, hits)
            if chosen is None:
                continue
            if rule.score < 0:
                score += rule.score
            elif positive is None or rule.score > positive:
                positive = rule.score
                evidence = tuple(h.span() for h in chosen)
        events: list[tuple[str, float, list[dict[str, object]]]] = []
        if positive is not None:
            for name, spec in self.pack.events.items():
                tagged = self._event(name, spec, hits)
                if tagged is not None:
                    events.append(tagged)
            score += positive + self.pack.relevance.event_bonus * len(events)
        relevance = round(min(1.0, max(0.0, score)), 3)
        relevant = relevance >= self.pack.relevance.threshold
        if not relevant:
            events = []
        events.sort(key=lambda e: (-self._severity_rank[e[0]], -e[1]))
        return Classification(
            relevant,
            relevance,
            tuple(name for name, _, _ in events),
            tuple({"type": t, "confidence": c, "evidence": spans} for t, c, spans in events),
            self._entities(title, summary, hits),
            evidence,
        )

    def story_key(self, item: NewsItem, result: Classification) -> str:
        """The story an item belongs to: the pack, its primary event type and UTC day.

        Items with no event type are stories of their own (keyed by ``item_id``).
        """
        when: datetime = item.published_at or item.fetched_at
        if not result.event_types:
            return ids.story_key(self.pack.name, f"item:{item.item_id}", when.date())
        return ids.story_key(self.pack.name, result.event_types[0], when.date())
