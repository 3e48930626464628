"""The classifier's pure core: a compiled topic pack applied to an item's text.

How an item is read:

1. Title and summary are normalised: lower-cased, every character that is not
   a letter or digit made a space, padded with a space each side. ASCII text,
   almost all news, is translated as bytes; other text goes through a regex.
2. One Aho-Corasick pass per field finds every key of every term group and
   entity alias at once. Keys carry their padding spaces, so they match whole
   words only, and "al-Hayya" and "al Hayya" are one key. A term group that
   holds ``<number>`` is hit by every number too; numbers are found by the
   scanner that also serves the figures, not by the automaton.
3. A key's term groups and entities are bits of one integer; the hits are
   sorted into sentences, each with the union of its keys' bits. A rule is a
   mask as well: it holds in a sentence whose mask contains it. Rules are tried
   on the item's mask first, so most fail without a look at any sentence.
4. Positions are read only for what is reported: the cancel window before an
   anchor, and the spans of the rules and entities that matched.

setup.py compiles this module with mypyc when a C compiler is at hand, which
is why it is typed closely and keeps its hot loops free of small objects; it
runs the same as plain Python. Nothing here does I/O or reads the clock.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Final, Literal, cast

import ahocorasick_rs
from dohawatch.shared import ids
from dohawatch.shared.events import Entity, EvidenceSpan, NewsItem, TaggedEvent
from pydantic import TypeAdapter

from .pack import NUMBER_TERM, FigureSpec, Rule, TopicPack, alternation, expand

__all__ = [
    "ENGINE_VERSION",
    "Classification",
    "Classifier",
    "FoundEntity",
    "FoundEvent",
    "Span",
]

ENGINE_VERSION = "3"

FieldName = Literal["title", "summary"]
Span = tuple[FieldName, int, int, str]
"""Evidence as plain data: field, start, end (one past the last character), text."""
FoundEvent = tuple[str, float, tuple[Span, ...]]
"""An event tag: type, confidence, evidence."""
FoundEntity = tuple[str, str, float | None, str | None, tuple[Span, ...]]
"""An entity or figure: kind, canonical name, value, unit, evidence."""

# A hit: key index, start, end + 2 (the key's padding) in its field. Typed as a
# plain tuple so that compiled code passes the finder's tuples on as they are
# instead of unpacking each into a C struct and boxing it again when stored.
_Hit = tuple[int, ...]
_Sentence = tuple[FieldName, str, list[_Hit], int]  # field, its text, hits, mask

# A sentence ends at . ! ? followed by space and an upper-case letter or a quote;
# abbreviations such as "U.S. officials" stay inside their sentence.
_SENTENCE_END: Final = re.compile(r"[.!?][\"'’”)]?\s+(?=[\"'‘“(]?[A-Z0-9])")
_NUMBER: Final = re.compile(r"\d[\d,.]*")  # each match is one whole number: its start is a start
_NOT_WORD: Final = re.compile(r"[^\w ]|_")  # every character but letters, digits and the space


def _table(classes: dict[bytes, int], other: int) -> bytes:
    """A 256-byte translation table: each byte of a key of ``classes`` to its value."""
    table = bytearray([other]) * 256
    for members, to in classes.items():
        for byte in members:
            table[byte] = to
    return bytes(table)


_UPPER = bytes(range(65, 91))
_LOWER = bytes(range(97, 123))
_DIGITS = b"0123456789"
# ASCII words: letters lower-cased, digits kept, every other byte a space.
_ASCII_WORDS: Final = bytes(
    c + 32 if c in _UPPER else c if c in _LOWER or c in _DIGITS else 32 for c in range(256)
)
# ASCII character classes, so that sentence ends and numbers are found with
# ``bytes.find`` (a regex costs more to start than these texts cost to scan):
# "." and "!" end a sentence, "q" quotes it, "A" may begin one, "0" is a digit.
_ASCII_CLASSES: Final = _table(
    {b".": ord("."), b"!?": ord("!"), b"\"'": ord("q"), b")": ord(")"), b"(": ord("(")}
    | {b" \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f": 32, _UPPER: ord("A"), _DIGITS: ord("0"), b",": ord(",")},
    ord("x"),
)
# The classes as ints, Final so that compiled code reads them as constants.
_DIGIT: Final = 48  # "0"
_COMMA: Final = 44  # ","
_DOT: Final = 46  # "."
_SPACE: Final = 32  # " "
_CAPITAL: Final = 65  # "A"
_QUOTE: Final = 113  # "q"
_OPEN: Final = 40  # "("
_CLOSE: Final = 41  # ")"


def _ascii_numbers(classes: bytes) -> list[int]:
    """Where numbers begin: each run of digits, commas and full stops that starts
    with a digit (``\\d[\\d,.]*``, the regex's own reading), found with ``find``."""
    starts = []
    end = len(classes)
    i = classes.find(b"0")
    while i >= 0:
        starts.append(i)
        i += 1
        while i < end and classes[i] in (_DIGIT, _COMMA, _DOT):
            i += 1
        i = classes.find(b"0", i)
    return starts


def _ascii_sentence_starts(classes: bytes) -> list[int]:
    """Where sentences after the first begin: after "." or "!", an optional closing
    quote, spaces, then a capital or digit, perhaps behind an opening quote
    (``_SENTENCE_END`` for ASCII text, found with ``find``)."""
    starts = []
    end = len(classes)
    for stop in (b".", b"!"):
        i = classes.find(stop)
        while i >= 0:
            j = i + 1
            if j < end and classes[j] in (_QUOTE, _CLOSE):
                j += 1
            k = j
            while k < end and classes[k] == _SPACE:
                k += 1
            if k > j and k < end:
                first = classes[k]
                if first in (_QUOTE, _OPEN) and k + 1 < end:
                    first = classes[k + 1]
                if first in (_CAPITAL, _DIGIT):
                    starts.append(k)
            i = classes.find(stop, i + 1)
    if len(starts) > 1:
        starts.sort()
    return starts


def _number_hits(text: str, starts: list[int], key: int) -> list[_Hit]:
    """A hit of ``key`` on each number beginning at ``starts``: its digits and the
    commas and full stops between them, not one that ends it ("33," is "33")."""
    hits: list[_Hit] = []
    size = len(text)
    for start in starts:
        i = end = start + 1
        while i < size and (text[i].isdigit() or text[i] in ",."):
            i += 1
            if text[i - 1].isdigit():
                end = i
        hits.append((key, start, end + 2))
    return hits


# "zero" and "one" are left out: "one of the hostages" is no figure, and the
# words are too common to try each as one.
_NUMBER_WORDS: Final[dict[str, int]] = {
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
    "ninety": 90,
}


def _value(text: str) -> float | None:
    """A figure's value: digits with thousands commas ("1,200"), a decimal
    ("1.5") or a number word ("six"); None for anything else ("1.2.3")."""
    try:
        return float(text.replace(",", ""))
    except ValueError:
        words = _NUMBER_WORDS.get(text.lower())
        return None if words is None else float(words)


def _figure(name: str, spec: FigureSpec, value: str, unit: str) -> _Figure:
    scale = {word.lower(): factor for word, factor in spec.scale.items()}
    return _Figure(name, spec.unit, scale, value, unit)


def _figures(figures: list[tuple[str, FigureSpec]]) -> _Figures | None:
    if not figures:
        return None
    regex = re.compile(alternation([spec.pattern for _, spec in figures]), re.IGNORECASE)
    return _Figures(
        regex.match,
        {
            f"f{i}": _figure(name, spec, f"f{i}_value", f"f{i}_unit")
            for i, (name, spec) in enumerate(figures)
        },
    )


def _found(found: list[FoundEntity], field: FieldName, figure: _Figure, m: re.Match[str]) -> None:
    """Add the figure ``m`` matched, in the figure's unit, unless its value is no number."""
    raw = m.group(figure.value)
    value = None if raw is None else _value(raw)
    if value is None:
        return
    if figure.scale and (unit := m.group(figure.unit_group)):
        value *= figure.scale.get(unit.lower(), 1.0)
    span: Span = (field, m.start(), m.end(), m.group(0))
    found.append(("figure", figure.name, value, figure.unit, (span,)))


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


def _strongest_first(event: tuple[int, float, str, tuple[Span, ...]]) -> tuple[int, float]:
    return (-event[0], -event[1])  # severity rank, then confidence


def _span(field: FieldName, text: str, hit: _Hit) -> Span:
    start, end = hit[1], hit[2] - 2
    return (field, start, end, text[start:end])


def _span_dicts(spans: tuple[Span, ...]) -> list[dict[str, object]]:
    return [{"field": f, "start": s, "end": e, "text": t} for f, s, e, t in spans]


_EVENTS: TypeAdapter[tuple[TaggedEvent, ...]] = TypeAdapter(tuple[TaggedEvent, ...])
_ENTITIES: TypeAdapter[tuple[Entity, ...]] = TypeAdapter(tuple[Entity, ...])
_SPANS: TypeAdapter[tuple[EvidenceSpan, ...]] = TypeAdapter(tuple[EvidenceSpan, ...])


@dataclass(frozen=True)
class Classification:
    """What the classifier concluded about one item.

    The findings are plain tuples; :meth:`event_dicts` and :meth:`entity_dicts`
    give them the contract's JSON shape, and the contract models are validated
    from those when first read (``make bench`` measures both ways).
    """

    relevant: bool
    relevance: float
    event_types: tuple[str, ...]  # strongest first
    found_events: tuple[FoundEvent, ...]
    found_entities: tuple[FoundEntity, ...]
    relevance_spans: tuple[Span, ...] = ()

    def event_dicts(self) -> list[dict[str, object]]:
        """The event tags as ``TaggedEvent`` JSON objects, strongest first."""
        return [
            {"type": t, "confidence": c, "evidence": _span_dicts(spans)}
            for t, c, spans in self.found_events
        ]

    def entity_dicts(self) -> list[dict[str, object]]:
        """The entities and figures as ``Entity`` JSON objects."""
        return [
            {"kind": k, "name": n, "value": v, "unit": u, "evidence": _span_dicts(spans)}
            for k, n, v, u, spans in self.found_entities
        ]

    @cached_property
    def events(self) -> tuple[TaggedEvent, ...]:
        """The event tags with their evidence, strongest first."""
        return _EVENTS.validate_python(self.event_dicts())

    @cached_property
    def entities(self) -> tuple[Entity, ...]:
        """Actors, people and places mentioned, then the figures."""
        return _ENTITIES.validate_python(self.entity_dicts())

    @cached_property
    def relevance_evidence(self) -> tuple[EvidenceSpan, ...]:
        """The spans of the strongest relevance rule that matched."""
        return _SPANS.validate_python(_span_dicts(self.relevance_spans))


@dataclass(frozen=True, slots=True)
class _Rule:
    """A pack rule as bits: ``need`` holds every group, ``groups`` each in order."""

    need: int
    groups: tuple[int, ...]  # the anchor first
    whole_item: bool
    confidence: float
    cancel: int = 0
    window: int = 0
    score: float = 0.0


@dataclass(frozen=True, slots=True)
class _Event:
    name: str
    rank: int
    rules: tuple[_Rule, ...]
    need: int  # the groups every rule shares: an item without them cannot match


@dataclass(frozen=True, slots=True)
class _Figure:
    name: str
    unit: str
    scale: dict[str, float]  # the pattern's unit word, lower-cased -> factor to ``unit``
    value: str  # the names of its groups in the regex it is matched with
    unit_group: str


@dataclass(frozen=True, slots=True)
class _Figures:
    """Figure patterns matched as one alternation (one call per place, where
    the call costs more than the failing branches): at most one figure per
    place, the first in pack order."""

    match: Callable[[str, int], re.Match[str] | None]  # the regex's, bound once
    of: dict[str, _Figure]  # alternative group name -> its figure


class _Item:
    """One item read: its sentences with their hits and masks, the entity
    mentions, and where numbers begin."""

    __slots__ = ("entity_hits", "key_mask", "mask", "numbers", "sentences")

    def __init__(self, key_mask: list[int]) -> None:
        self.key_mask = key_mask
        self.mask = 0
        self.sentences: list[_Sentence] = []  # the title, then the summary's, in order
        self.entity_hits: list[tuple[FieldName, str, _Hit]] = []
        # Per field with numbers: where digits begin, and where number words do.
        self.numbers: list[tuple[FieldName, str, list[int], list[int]]] = []

    def match(self, rule: _Rule) -> list[Span] | None:
        """The spans that satisfy ``rule``, anchor first and one per group, or None."""
        need = rule.need
        if self.mask & need != need:
            return None
        cancel = rule.cancel & self.mask
        anchor_bit = rule.groups[0]
        if rule.whole_item:
            for field, text, hits, mask in self.sentences:
                if mask & anchor_bit:
                    hit = self._anchor(hits, anchor_bit, cancel & mask, rule.window)
                    if hit is not None:
                        chosen = [_span(field, text, hit)]
                        for bit in rule.groups[1:]:
                            chosen.append(self._first(self.sentences, bit))
                        return chosen
            return None
        if len(rule.groups) == 1 and not cancel:
            return [self._first(self.sentences, need)]
        for sentence in self.sentences:
            field, text, hits, mask = sentence
            if mask & need == need:
                hit = self._anchor(hits, anchor_bit, cancel & mask, rule.window)
                if hit is not None:
                    chosen = [_span(field, text, hit)]
                    for bit in rule.groups[1:]:
                        other = self._anchor(hits, bit, cancel & mask, rule.window)
                        if other is None:
                            break
                        chosen.append(_span(field, text, other))
                    else:
                        return chosen
        return None

    def _anchor(self, hits: list[_Hit], bit: int, cancel: int, window: int) -> _Hit | None:
        """The first hit of ``bit`` with no cancel hit ending ``window`` characters before it."""
        key_mask = self.key_mask
        for hit in hits:
            if key_mask[hit[0]] & bit:
                if not cancel:
                    return hit
                start = hit[1]
                for k, _, end in hits:
                    if key_mask[k] & cancel and 0 <= start - (end - 2) <= window:
                        break
                else:
                    return hit
        return None

    def _first(self, sentences: list[_Sentence], bit: int) -> Span:
        """The first hit of ``bit`` in ``sentences``, which must hold one."""
        key_mask = self.key_mask
        for field, text, hits, mask in sentences:
            if mask & bit:
                for hit in hits:
                    if key_mask[hit[0]] & bit:
                        return _span(field, text, hit)
        raise AssertionError("no hit of a group the mask holds")


class Classifier:
    """A topic pack compiled for matching. Build once, call :meth:`classify` often."""

    def __init__(self, pack: TopicPack) -> None:
        self.pack = pack
        self._threshold = pack.relevance.threshold
        self._event_bonus = pack.relevance.event_bonus
        self.version = f"{pack.name}@{pack.version}/engine-{ENGINE_VERSION}"
        bit = {group: 1 << i for i, group in enumerate(pack.terms)}
        entity_names = list(pack.entities)
        keys: dict[str, int] = defaultdict(int)  # normalised key -> its bits
        number_bits = 0  # the groups that hold NUMBER_TERM
        for group, phrases in pack.terms.items():
            for phrase in phrases:
                if phrase == NUMBER_TERM:
                    number_bits |= bit[group]
                    continue
                for variant in expand(phrase):
                    keys[_words(variant)] |= bit[group]
        first_entity = len(bit)
        for i, entity in enumerate(pack.entities.values()):
            for alias in entity.aliases:
                for variant in expand(alias):
                    keys[_words(variant)] |= 1 << (first_entity + i)
        # Number words are numbers too: for the figures, and for NUMBER_TERM.
        self._number_word = 1 << (first_entity + len(entity_names))
        for word in _NUMBER_WORDS:
            keys[_words(word)] |= self._number_word | number_bits
        self._keys = list(keys)
        self._key_mask = list(keys.values())
        # Numbers are found by the scanner, not the automaton: one key past the
        # automaton's stands for all of them.
        self._number_key = -1
        if number_bits:
            self._number_key = len(self._key_mask)
            self._key_mask.append(number_bits)
        self._entities_of: list[tuple[int, ...]] = [
            tuple(i for i in range(len(entity_names)) if mask >> (first_entity + i) & 1)
            for mask in self._key_mask
        ]
        self._entity_meta = [(pack.entities[n].kind, n) for n in entity_names]
        # Bound once: compiled code looks a method up by name at every call.
        self._find_ascii = cast(
            Callable[[bytes, bool], list[_Hit]],
            ahocorasick_rs.BytesAhoCorasick(
                [k.encode() for k in self._keys]
            ).find_matches_as_indexes,
        )
        self._find_text = cast(
            Callable[[str, bool], list[_Hit]],
            ahocorasick_rs.AhoCorasick(self._keys).find_matches_as_indexes,
        )

        def compiled(rule: Rule, cancel: tuple[str, ...] = (), window: int = 0) -> _Rule:
            groups = tuple(bit[g] for g in rule.all)
            need = 0
            for b in groups:
                need |= b
            cancel_bits = 0
            for g in cancel:
                cancel_bits |= bit[g]
            return _Rule(
                need=need,
                groups=groups,
                whole_item=rule.scope == "item",
                confidence=rule.confidence,
                cancel=cancel_bits,
                window=window,
                score=getattr(rule, "score", 0.0),
            )

        self._relevance = [compiled(r) for r in pack.relevance.rules]
        self._events = []
        for name, spec in pack.events.items():
            rules = tuple(compiled(r, spec.cancel, spec.cancel_window) for r in spec.rules)
            shared = rules[0].need
            for r in rules[1:]:
                shared &= r.need
            self._events.append(_Event(name, spec.severity.rank, rules, shared))
        # Patterns that begin with their value are tried only where a number
        # begins; a pattern that spells out no number word, only at digits.
        at_digits: list[tuple[str, FigureSpec]] = []
        at_words: list[tuple[str, FigureSpec]] = []
        self._anywhere: list[tuple[_Figure, Callable[[str], Iterator[re.Match[str]]]]] = []
        for name, figure in pack.figures.items():
            if not figure.pattern.startswith("(?P<value>"):
                pattern = re.compile(figure.pattern, re.IGNORECASE)
                self._anywhere.append((_figure(name, figure, "value", "unit"), pattern.finditer))
                continue
            at_digits.append((name, figure))
            if any(word in figure.pattern.lower() for word in _NUMBER_WORDS):
                at_words.append((name, figure))
        self._at_digits = _figures(at_digits)
        self._at_words = _figures(at_words)

    def _read(self, title: str, summary: str) -> _Item:
        """Find every key in both fields, sort the hits into sentences, note the
        entity mentions and where numbers begin."""
        item = _Item(self._key_mask)
        key_mask = self._key_mask
        number_key = self._number_key
        number_word = self._number_word
        field: FieldName
        ends: list[int] = []
        for field, text in (("title", title), ("summary", summary)):
            if text.isascii():
                raw = text.encode("ascii")
                hits = self._find_ascii(b" " + raw.translate(_ASCII_WORDS) + b" ", True)
                classes = raw.translate(_ASCII_CLASSES)
                numbers = _ascii_numbers(classes)
                if field == "summary":
                    ends = _ascii_sentence_starts(classes)
            else:
                hits = self._find_text(_words(text), True)
                numbers = [m.start() for m in _NUMBER.finditer(text)]
                if field == "summary":
                    ends = [m.end() for m in _SENTENCE_END.finditer(text)]
            if numbers and number_key >= 0:
                hits.extend(_number_hits(text, numbers, number_key))
            words: list[int] = []
            if hits:
                field_mask = self._sort_hits(item, field, text, hits, ends)
                if field_mask & number_word:  # "six", as well as "6"
                    words = [h[1] for h in hits if key_mask[h[0]] & number_word]
                    words.sort()
            if numbers or words:
                item.numbers.append((field, text, numbers, words))
        return item

    def _sort_hits(
        self, item: _Item, field: FieldName, text: str, hits: list[_Hit], ends: list[int]
    ) -> int:
        """Sort one field's hits into its sentences and note its entity mentions;
        return the union of the field's bits."""
        key_mask = self._key_mask
        entities_of = self._entities_of
        entity_hits = item.entity_hits
        if field == "title":  # one sentence
            mask = 0
            for hit in hits:
                mask |= key_mask[hit[0]]
                if entities_of[hit[0]]:
                    entity_hits.append((field, text, hit))
            item.sentences.append((field, text, hits, mask))
            item.mask |= mask
            return mask
        starts = [0, *ends]
        last = len(starts) - 1
        buckets: list[list[_Hit]] = [[] for _ in starts]
        masks = [0] * len(starts)
        i, low, high = 0, 0, starts[1] if last else len(text) + 1
        bucket = buckets[0]
        for hit in hits:
            start = hit[1]
            if not low <= start < high:  # the next sentence, seldom an earlier one
                i = bisect_right(starts, start) - 1
                low, high = starts[i], starts[i + 1] if i < last else len(text) + 1
                bucket = buckets[i]
            bucket.append(hit)
            masks[i] |= key_mask[hit[0]]
            if entities_of[hit[0]]:
                entity_hits.append((field, text, hit))
        field_mask = 0
        for bucket, mask in zip(buckets, masks, strict=True):
            if bucket:
                item.sentences.append((field, text, bucket, mask))
                field_mask |= mask
        item.mask |= field_mask
        return field_mask

    def classify(self, title: str, summary: str) -> Classification:
        """Tag one item's text.

        Args:
            title: plain-text headline.
            summary: plain-text summary.

        Returns:
            Relevance score and flag, the event types (only when relevant,
            strongest first) with their evidence, and the entities and figures.
        """
        item = self._read(title, summary)
        score = 0.0
        evidence: list[Span] = []
        positive: float | None = None
        for rule in self._relevance:
            if rule.score < 0:
                if item.mask & rule.need == rule.need and item.match(rule) is not None:
                    score += rule.score
            elif positive is None or rule.score > positive:
                chosen = item.match(rule)
                if chosen is not None:
                    positive, evidence = rule.score, chosen
        events: list[tuple[int, float, str, tuple[Span, ...]]] = []
        if positive is not None:
            events = self._tagged(item)
            score += positive + self._event_bonus * len(events)
        relevance = round(min(1.0, max(0.0, score)), 3)
        relevant = relevance >= self._threshold
        if not relevant:
            events = []
        elif len(events) > 1:
            events.sort(key=_strongest_first)
        return Classification(
            relevant,
            relevance,
            tuple(e[2] for e in events),
            tuple((name, confidence, spans) for _, confidence, name, spans in events),
            self._entities(item) + self._figures_found(item),
            tuple(evidence),
        )

    def _tagged(self, item: _Item) -> list[tuple[int, float, str, tuple[Span, ...]]]:
        """Each event type the item shows: rank, confidence, name, evidence."""
        found = []
        mask = item.mask
        for event in self._events:
            if mask & event.need != event.need:
                continue
            best: tuple[float, list[Span]] | None = None
            for rule in event.rules:
                chosen = item.match(rule)
                if chosen is None:
                    continue
                confidence = min(0.99, rule.confidence + (0.1 if chosen[0][0] == "title" else 0))
                if best is None or confidence > best[0]:
                    best = (confidence, chosen)
            if best is not None:
                spans = tuple(sorted(set(best[1]), key=lambda s: (s[0], s[1], s[2])))
                found.append((event.rank, round(best[0], 3), event.name, spans))
        return found

    def _entities(self, item: _Item) -> tuple[FoundEntity, ...]:
        """Entities in order of first mention, each with its first three mentions.

        Aliases of one entity that overlap ("Benjamin Netanyahu", "Netanyahu")
        are one mention, its longest alias.
        """
        entities_of = self._entities_of
        mentions: dict[int, list[Span]] = {}
        for field, text, hit in item.entity_hits:
            for i in entities_of[hit[0]]:
                spans = mentions.get(i)
                if spans is None:
                    mentions[i] = [_span(field, text, hit)]
                    continue
                last = spans[-1]
                start, end = hit[1], hit[2] - 2
                if last[0] == field and start < last[2] and end > last[1]:
                    if end - start > last[2] - last[1]:
                        spans[-1] = _span(field, text, hit)
                elif len(spans) < 3:
                    spans.append(_span(field, text, hit))
        meta = self._entity_meta
        return tuple((*meta[i], None, None, tuple(spans)) for i, spans in mentions.items())

    def _figures_found(self, item: _Item) -> tuple[FoundEntity, ...]:
        """The pack's figures, each with its value in the figure's unit."""
        found: list[FoundEntity] = []
        for field, text, digits, words in item.numbers:
            for figures, starts in ((self._at_digits, digits), (self._at_words, words)):
                if figures is None or not starts:
                    continue
                end = -1
                for start in starts:
                    if start >= end and (m := figures.match(text, start)):
                        end = m.end()
                        _found(found, field, figures.of[cast(str, m.lastgroup)], m)
            for figure, finditer in self._anywhere:
                for m in finditer(text):
                    _found(found, field, figure, m)
        return tuple(found)

    def story_key(self, item: NewsItem, result: Classification) -> str:
        """The story an item belongs to: the pack, its primary event type and UTC day.

        Items with no event type are stories of their own (keyed by ``item_id``).
        """
        when: datetime = item.published_at or item.fetched_at
        if not result.event_types:
            return ids.story_key(self.pack.name, f"item:{item.item_id}", when.date())
        return ids.story_key(self.pack.name, result.event_types[0], when.date())
