"""The classifier's pure core: a compiled topic pack applied to an item's text.

How an item is read:

1. Title and summary are normalised: lower-cased, every character that is not
   a letter or digit made a space, padded with a space each side. ASCII text,
   almost all news, is translated as bytes; other text goes through a regex.
2. One Aho-Corasick pass per field finds every key of every term group and
   entity alias at once. Keys carry their padding spaces, so they match whole
   words only, and "al-Hayya" and "al Hayya" are one key. A term group that
   holds ``<number>`` is hit by every number too: digits are found by the
   scanner that also serves the figures, number words by the automaton. One
   that holds ``<hyphen>`` is hit by each hyphen joining two words, which
   normalising made a space: as a ``cancel_before`` term it keeps the tail of a
   compound ("Hamas-approved deal") from reading as a verb.
3. A key's term groups are a set of bits held in two machine words (the
   entities it names are a list beside it, so the sets stay as narrow as the
   groups); the hits are sorted into sentences, each with the union of its
   keys' groups. A rule is such a set as well: it holds in a sentence whose set
   contains it. Rules are tried on the item's set first, so most fail without a
   look at any sentence.
4. Positions are read only where a rule's mask holds: the cancel window before
   a word (a ``cancel_before`` term only right before the anchor, a
   ``cancel_after`` term right after a word; a ``cancel_stop`` term between a
   cancel word and the word, such as "but", ends the cancel word's reach), the
   words between the anchor and each other group's word for a rule with
   ``near`` (an ``apart`` term between them, such as "which", keeps them
   apart), and the spans of the rules and entities that matched.
5. An event type that the title shows drops the types it ``supersedes`` that
   only the summary shows: the title is the report's claim.
6. When the pack has a learned model (:mod:`.learned`) and a relevance rule
   matched, the model is read too: relevance is lifted to the mean of the rules'
   score and the model's probability where the model is surer, and the model
   adds the event types the rules missed, each with the sentence that carried it.
   It never lowers the rules' score: it was trained on items with a title and a
   long summary, and reads a bare headline as less likely news of the talks than
   the rules do.

setup.py compiles this module with mypyc for wheels and images
(``DOHAWATCH_COMPILE=1``), which is why it is typed closely and keeps its hot
loops free of small objects; it runs the same as plain Python, which is what a
development install runs. Nothing here does I/O or reads the clock.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import cast, final

import ahocorasick_rs
from pydantic import TypeAdapter

from dohawatch.shared import ids
from dohawatch.shared.events import Entity, EvidenceSpan, NewsItem, TaggedEvent

from . import scan
from .figures import NUMBER_WORDS, Figures
from .learned import RELEVANT
from .pack import HYPHEN_TERM, NUMBER_TERM, Rule, TopicPack, expand
from .scan import FieldName, Hit, Span
from .stems import Prediction, Scorer

__all__ = [
    "ENGINE_VERSION",
    "Classification",
    "Classifier",
    "FoundEntity",
    "FoundEvent",
    "Span",
]

COMPILED_FROM: str | None = None
"""In a compiled build, the SHA-256 of the sources it was compiled from
(``engine.py``, ``scan.py``, ``figures.py``, in that order); None in the source."""

ENGINE_VERSION = "6"

FoundEvent = tuple[str, float, tuple[Span, ...]]
"""An event tag: type, confidence, evidence."""
FoundEntity = tuple[str, str, float | None, str | None, tuple[Span, ...]]
"""An entity or figure: kind, canonical name, value, unit, evidence."""

_WORD_BITS = 62
"""Groups per word of a :class:`_Groups`: compiled code holds an integer below
2**62 in a machine word, and combines a wider one, a Python object, four to
five times slower."""
_LOW = (1 << _WORD_BITS) - 1


@final
class _Groups:
    """A set of the pack's term groups, as the bits of two integers: group ``i``
    is bit ``i`` of ``low`` for the first 62 groups, bit ``i - 62`` of ``high``
    after them. Each stays a machine word for a pack of up to 124 groups; a
    larger pack is slower, not wrong. A set is not changed once made, except a
    sentence's, which :meth:`Classifier._sort_hits` fills in as it reads."""

    __slots__ = ("high", "low")

    def __init__(self, low: int = 0, high: int = 0) -> None:
        self.low = low
        self.high = high

    @staticmethod
    def of(bits: int) -> _Groups:
        """The groups of a mask of any width (bit ``i``: group ``i``)."""
        return _Groups(bits & _LOW, bits >> _WORD_BITS)

    def empty(self) -> bool:
        return not (self.low or self.high)

    def within(self, other: _Groups) -> bool:
        """Whether ``other`` holds every group of this set."""
        return other.low & self.low == self.low and other.high & self.high == self.high

    def meets(self, other: _Groups) -> bool:
        """Whether the two sets share a group."""
        return bool(self.low & other.low or self.high & other.high)

    def beyond(self, other: _Groups) -> bool:
        """Whether this set holds a group that ``other`` does not."""
        return bool(self.low & ~other.low or self.high & ~other.high)

    def hits(self, hits: list[Hit], key_mask: list[_Groups]) -> list[Hit]:
        """The hits whose key holds one of these groups (``key_mask``: per key, its groups)."""
        low, high = self.low, self.high
        found = []
        for hit in hits:
            groups = key_mask[hit[0]]
            if groups.low & low or groups.high & high:
                found.append(hit)
        return found

    def common(self, other: _Groups) -> _Groups:
        return _Groups(self.low & other.low, self.high & other.high)

    def union(self, other: _Groups) -> _Groups:
        return _Groups(self.low | other.low, self.high | other.high)


_NONE = _Groups()

_Sentence = tuple[FieldName, str, list[Hit], _Groups]  # field, its text, hits, their groups


def _strongest_first(event: tuple[int, float, str, tuple[Span, ...]]) -> tuple[int, float]:
    return (-event[0], -event[1])  # severity rank, then confidence


def _span(field: FieldName, text: str, hit: Hit) -> Span:
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
    """A pack rule as sets of groups: ``need`` holds every group, ``groups`` each in order."""

    need: _Groups
    groups: tuple[_Groups, ...]  # the anchor first
    whole_item: bool
    confidence: float
    cancel: _Groups = _NONE
    window: int = 0
    score: float = 0.0
    near: int = -1  # words allowed between the anchor and each other group's word; -1: any
    ordered: bool = False  # the other groups' words follow the anchor's
    before: _Groups = _NONE  # groups that cancel the anchor standing right before it
    after: _Groups = _NONE  # groups that cancel a word beginning right after it
    stop: _Groups = _NONE  # groups that end a cancel word's reach
    apart: _Groups = _NONE  # groups that keep a near rule's words apart when between them


@dataclass(frozen=True, slots=True)
class _Event:
    name: str
    rank: int
    rules: tuple[_Rule, ...]
    need: _Groups  # the groups every rule shares: an item without them cannot match
    supersedes: frozenset[str]  # types that this one, claimed by the title, outranks


def _words_between(text: str, a: Hit, b: Hit) -> int:
    """How many words stand between two hits of one sentence (0 when they touch)."""
    if a[1] > b[1]:
        a, b = b, a
    end = a[2] - 2
    return len(text[end : b[1]].split()) if b[1] > end else 0


class _Item:
    """One item read: its sentences with their hits and masks, the entity
    mentions, and where numbers begin."""

    __slots__ = ("entity_hits", "key_mask", "mask", "numbers", "sentences")

    def __init__(self, key_mask: list[_Groups]) -> None:
        self.key_mask = key_mask  # per key, its groups
        self.mask = _NONE  # the groups of all its keys
        self.sentences: list[_Sentence] = []  # the title, then the summary's, in order
        self.entity_hits: list[tuple[FieldName, str, Hit]] = []
        # Per field with numbers: where digits begin, and where number words do.
        self.numbers: list[tuple[FieldName, str, list[int], list[int]]] = []

    def match(self, rule: _Rule) -> list[Span] | None:
        """The spans that satisfy ``rule``, anchor first and one per group, or None."""
        need = rule.need
        if not need.within(self.mask):
            return None
        cancel = rule.cancel.common(self.mask)
        anchor = rule.groups[0]
        if rule.whole_item:
            for field, text, hits, mask in self.sentences:
                if anchor.meets(mask):
                    hit = self._anchor(hits, anchor, cancel.common(mask), rule)
                    if hit is not None:
                        chosen = [_span(field, text, hit)]
                        for group in rule.groups[1:]:
                            chosen.append(self._first(self.sentences, group))
                        return chosen
            return None
        if len(rule.groups) == 1 and cancel.empty():
            return [self._first(self.sentences, need)]
        if rule.near >= 0:
            return self._near(rule, cancel)
        for sentence in self.sentences:
            field, text, hits, mask = sentence
            if need.within(mask):
                hit = self._anchor(hits, anchor, cancel.common(mask), rule)
                if hit is not None:
                    chosen = [_span(field, text, hit)]
                    for group in rule.groups[1:]:
                        other = self._anchor(hits, group, cancel.common(mask), rule)
                        if other is None:
                            break
                        chosen.append(_span(field, text, other))
                    else:
                        return chosen
        return None

    def _near(self, rule: _Rule, cancel: _Groups) -> list[Span] | None:
        """The spans of ``rule`` in the first sentence where a word of each other
        group stands within ``rule.near`` words of an uncancelled anchor word
        (after it, if the rule is ordered)."""
        need = rule.need
        for field, text, hits, mask in self.sentences:
            if not need.within(mask):
                continue
            c = cancel.common(mask)
            after = rule.after.common(mask)
            anchors = self._uncancelled(
                hits, rule.groups[0], c.union(rule.before.common(mask)), rule, after
            )
            if not anchors:
                continue
            others = [self._uncancelled(hits, g, c, rule, after) for g in rule.groups[1:]]
            apart = rule.apart.common(mask)
            for anchor in anchors:
                chosen = [anchor]
                for group in others:
                    for other in group:
                        if rule.ordered and other[1] < anchor[1]:
                            continue
                        if _words_between(text, anchor, other) <= rule.near and not (
                            not apart.empty() and self._apart(hits, apart, anchor, other)
                        ):
                            chosen.append(other)
                            break
                    else:
                        break
                else:
                    return [_span(field, text, hit) for hit in chosen]
        return None

    def _uncancelled(
        self, hits: list[Hit], group: _Groups, cancel: _Groups, rule: _Rule, after: _Groups
    ) -> list[Hit]:
        """Every hit of ``group`` with no cancel hit ending ``rule.window`` characters
        before it (a ``before`` hit only right before it), nor an ``after`` hit
        beginning right after it."""
        key_mask = self.key_mask
        if cancel.empty() and after.empty():  # most sentences: nothing in them cancels
            return group.hits(hits, key_mask)
        window = rule.window
        before = rule.before
        stops = cancel.union(after)
        cancelling = stops.hits(hits, key_mask)
        found = []
        for hit in group.hits(hits, key_mask):
            start, end = hit[1], hit[2] - 2
            for k, s, e in cancelling:
                groups = key_mask[k]
                gap = start - (e - 2)
                if (
                    cancel.meets(groups)
                    and 0 <= gap <= (window if groups.beyond(before) else 1)
                    and not self._stopped(hits, rule.stop, e - 2, start)
                ):
                    break
                if after.meets(groups) and 0 <= s - end <= 1:
                    break
            else:
                found.append(hit)
        return found

    def _stopped(self, hits: list[Hit], stop: _Groups, after: int, before: int) -> bool:
        """Whether a hit of ``stop`` lies between ``after`` and ``before``: a clause
        boundary between a cancel word and the word it would cancel."""
        if not stop.empty():
            key_mask = self.key_mask
            for k, s, e in hits:
                if stop.meets(key_mask[k]) and after <= s and e - 2 <= before:
                    return True
        return False

    def _apart(self, hits: list[Hit], apart: _Groups, a: Hit, b: Hit) -> bool:
        """Whether a hit of ``apart`` lies between the words ``a`` and ``b``."""
        if a[1] > b[1]:
            a, b = b, a
        return self._stopped(hits, apart, a[2] - 2, b[1])

    def _anchor(self, hits: list[Hit], group: _Groups, cancel: _Groups, rule: _Rule) -> Hit | None:
        """The first hit of ``group`` with no cancel hit ending ``rule.window`` characters
        before it (with no stop hit between them)."""
        key_mask = self.key_mask
        window = rule.window
        for hit in hits:
            if group.meets(key_mask[hit[0]]):
                if cancel.empty():
                    return hit
                start = hit[1]
                for k, _, end in hits:
                    if (
                        cancel.meets(key_mask[k])
                        and 0 <= start - (end - 2) <= window
                        and not self._stopped(hits, rule.stop, end - 2, start)
                    ):
                        break
                else:
                    return hit
        return None

    def _first(self, sentences: list[_Sentence], group: _Groups) -> Span:
        """The first hit of ``group`` in ``sentences``, which must hold one."""
        key_mask = self.key_mask
        for field, text, hits, mask in sentences:
            if group.meets(mask):
                for hit in hits:
                    if group.meets(key_mask[hit[0]]):
                        return _span(field, text, hit)
        raise AssertionError("no hit of a group the mask holds")


class Classifier:
    """A topic pack compiled for matching. Build once, call :meth:`classify` often."""

    def __init__(self, pack: TopicPack) -> None:
        self.pack = pack
        self._threshold = pack.relevance.threshold
        self._event_bonus = pack.relevance.event_bonus
        self.version = f"{pack.name}@{pack.version}/engine-{ENGINE_VERSION}"
        self._learned: Scorer | None = None
        self._learned_threshold = 0.5
        if pack.learned is not None:
            self._learned = pack.learned.scorer
            self.version += f"/model-{pack.learned.version}"
            self._learned_threshold = pack.learned.threshold
        bit = {group: 1 << i for i, group in enumerate(pack.terms)}
        entity_names = list(pack.entities)
        keys: dict[str, int] = defaultdict(int)  # normalised key -> its bits
        number_bits = 0  # the groups that hold NUMBER_TERM
        hyphen_bits = 0  # the groups that hold HYPHEN_TERM
        for group, phrases in pack.terms.items():
            for phrase in phrases:
                if phrase == NUMBER_TERM:
                    number_bits |= bit[group]
                    continue
                if phrase == HYPHEN_TERM:
                    hyphen_bits |= bit[group]
                    continue
                for variant in expand(phrase):
                    keys[scan.words(variant)] |= bit[group]
        # Entities are no rule's business: a key names them in a list of its own,
        # which keeps the masks as narrow as the term groups.
        entities: dict[str, set[int]] = defaultdict(set)
        for i, entity in enumerate(pack.entities.values()):
            for alias in entity.aliases:
                for variant in expand(alias):
                    key = scan.words(variant)
                    keys.setdefault(key, 0)  # a key of its own, though it names no group
                    entities[key].add(i)
        # Number words are numbers too: for the figures, and for NUMBER_TERM.
        number_word = 1 << len(bit)
        self._number_word = _Groups.of(number_word)
        for word in NUMBER_WORDS:
            keys[scan.words(word)] |= number_word | number_bits
        self._keys = list(keys)
        self._key_mask = [_Groups.of(bits) for bits in keys.values()]
        # Numbers are found by the scanner, not the automaton: one key past the
        # automaton's stands for all of them.
        self._number_key = -1
        if number_bits:
            self._number_key = len(self._key_mask)
            self._key_mask.append(_Groups.of(number_bits))
        self._hyphen_key = -1  # likewise the joining hyphens, found by a regex
        if hyphen_bits:
            self._hyphen_key = len(self._key_mask)
            self._key_mask.append(_Groups.of(hyphen_bits))
        self._entities_of: list[tuple[int, ...]] = [
            tuple(sorted(entities.get(key, ()))) for key in self._keys
        ]
        self._entities_of += [()] * (len(self._key_mask) - len(self._keys))
        self._entity_meta = [(pack.entities[n].kind, n) for n in entity_names]
        # Bound once: compiled code looks a method up by name at every call.
        self._find_ascii = cast(
            Callable[[bytes, bool], list[Hit]],
            ahocorasick_rs.BytesAhoCorasick(
                [k.encode() for k in self._keys]
            ).find_matches_as_indexes,
        )
        self._find_text = cast(
            Callable[[str, bool], list[Hit]],
            ahocorasick_rs.AhoCorasick(self._keys).find_matches_as_indexes,
        )

        def bits(names: tuple[str, ...]) -> _Groups:
            mask = 0
            for name in names:
                mask |= bit[name]
            return _Groups.of(mask)

        def compiled(
            rule: Rule,
            cancel: tuple[str, ...] = (),
            window: int = 0,
            before: tuple[str, ...] = (),
            after: tuple[str, ...] = (),
            stop: tuple[str, ...] = (),
            apart: tuple[str, ...] = (),
        ) -> _Rule:
            return _Rule(
                need=bits(rule.all),
                groups=tuple(_Groups.of(bit[g]) for g in rule.all),
                whole_item=rule.scope == "item",
                confidence=rule.confidence,
                cancel=bits(cancel),
                window=window,
                score=getattr(rule, "score", 0.0),
                near=-1 if rule.near is None else rule.near,
                ordered=rule.ordered,
                before=bits(before),
                after=bits(after),
                stop=bits(stop),
                apart=bits(apart),
            )

        self._relevance = [compiled(r) for r in pack.relevance.rules]
        self._events = []
        for name, spec in pack.events.items():
            rules = tuple(
                compiled(
                    r,
                    spec.cancel if r.cancel is None else r.cancel,
                    spec.cancel_window,
                    spec.cancel_before,
                    spec.cancel_after,
                    spec.cancel_stop,
                    spec.apart,
                )
                for r in spec.rules
            )
            shared = rules[0].need
            for r in rules[1:]:
                shared = shared.common(r.need)
            self._events.append(
                _Event(name, spec.severity.rank, rules, shared, frozenset(spec.supersedes))
            )
        self._figures = Figures(pack.figures)

    def _read(self, title: str, summary: str) -> _Item:
        """Find every key in both fields, sort the hits into sentences, note the
        entity mentions and where numbers begin."""
        item = _Item(self._key_mask)
        key_mask = self._key_mask
        number_key = self._number_key
        hyphen_key = self._hyphen_key
        number_word = self._number_word
        field: FieldName
        ends: list[int] = []
        for field, text in (("title", title), ("summary", summary)):
            if text.isascii():
                raw = text.encode("ascii")
                padded = b" " + raw.translate(scan.ASCII_WORDS) + b" "
                hits = self._find_ascii(padded, True)
                classes = raw.translate(scan.ASCII_CLASSES)
                numbers = scan.ascii_numbers(classes)
                if field == "summary":
                    ends = scan.ascii_sentence_starts(classes)
                if hyphen_key >= 0:
                    hits.extend(scan.ascii_hyphen_hits(raw, padded, hyphen_key))
            else:
                hits = self._find_text(scan.words(text), True)
                numbers = [m.start() for m in scan.NUMBER.finditer(text)]
                if field == "summary":
                    ends = [m.end() for m in scan.SENTENCE_END.finditer(text)]
                if hyphen_key >= 0:
                    hits.extend(scan.hyphen_hits(text, hyphen_key))
            if numbers and number_key >= 0:
                hits.extend(scan.number_hits(text, numbers, number_key))
            words: list[int] = []
            if hits:
                field_mask = self._sort_hits(item, field, text, hits, ends)
                if number_word.meets(field_mask):  # "six", as well as "6"
                    words = [h[1] for h in hits if number_word.meets(key_mask[h[0]])]
                    words.sort()
            if numbers or words:
                item.numbers.append((field, text, numbers, words))
        return item

    def _sort_hits(
        self, item: _Item, field: FieldName, text: str, hits: list[Hit], ends: list[int]
    ) -> _Groups:
        """Sort one field's hits into its sentences and note its entity mentions;
        return the groups of the field's keys."""
        key_mask = self._key_mask
        entities_of = self._entities_of
        entity_hits = item.entity_hits
        if field == "title":  # one sentence
            low = high = 0
            for hit in hits:
                groups = key_mask[hit[0]]
                low |= groups.low
                high |= groups.high
                if entities_of[hit[0]]:
                    entity_hits.append((field, text, hit))
            mask = _Groups(low, high)
            item.sentences.append((field, text, hits, mask))
            item.mask = item.mask.union(mask)
            return mask
        starts = [0, *ends]
        last = len(starts) - 1
        buckets: list[list[Hit]] = [[] for _ in starts]
        found = [_Groups() for _ in starts]  # each sentence's groups, filled in here
        i, begin, end = 0, 0, starts[1] if last else len(text) + 1
        bucket, sentence = buckets[0], found[0]
        for hit in hits:
            start = hit[1]
            if not begin <= start < end:  # most often the next sentence
                while i < last and start >= starts[i + 1]:
                    i += 1
                while start < starts[i]:  # numbers and hyphens come after the words
                    i -= 1
                begin, end = starts[i], starts[i + 1] if i < last else len(text) + 1
                bucket, sentence = buckets[i], found[i]
            bucket.append(hit)
            groups = key_mask[hit[0]]
            sentence.low |= groups.low
            sentence.high |= groups.high
            if entities_of[hit[0]]:
                entity_hits.append((field, text, hit))
        low = high = 0
        for i in range(len(buckets)):
            bucket, groups = buckets[i], found[i]
            if bucket:
                item.sentences.append((field, text, bucket, groups))
                low |= groups.low
                high |= groups.high
        field_mask = _Groups(low, high)
        item.mask = item.mask.union(field_mask)
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
                if rule.need.within(item.mask) and item.match(rule) is not None:
                    score += rule.score
            elif positive is None or rule.score > positive:
                chosen = item.match(rule)
                if chosen is not None:
                    positive, evidence = rule.score, chosen
        events: list[tuple[int, float, str, tuple[Span, ...]]] = []
        prediction: Prediction | None = None
        if positive is not None:
            events = self._tagged(item)
            score += positive + self._event_bonus * len(events)
            if self._learned is not None:
                prediction = self._learned.predict(title, summary)
        relevance = min(1.0, max(0.0, score))
        if prediction is not None:  # lifted where the model is surer than the rules
            relevance = max(relevance, (relevance + prediction.probability[RELEVANT]) / 2)
        relevance = round(relevance, 3)
        relevant = relevance >= self._threshold
        if not relevant:
            events = []
        else:
            if prediction is not None:
                self._add_learned(prediction, events)
            if len(events) > 1:
                events.sort(key=_strongest_first)
        return Classification(
            relevant,
            relevance,
            tuple(e[2] for e in events),
            tuple((name, confidence, spans) for _, confidence, name, spans in events),
            self._entities(item) + self._figures_found(item),
            tuple(evidence),
        )

    def _add_learned(
        self, prediction: Prediction, events: list[tuple[int, float, str, tuple[Span, ...]]]
    ) -> None:
        """Add to ``events`` the types the rules missed that the model finds, each
        with the sentence that weighs most towards it as evidence."""
        found = {e[2] for e in events}
        probability = prediction.probability
        for event in self._events:
            p = probability.get(event.name, 0.0)
            if p >= self._learned_threshold and event.name not in found:
                evidence = prediction.evidence(event.name)
                events.append((event.rank, round(p, 3), event.name, evidence))

    def _tagged(self, item: _Item) -> list[tuple[int, float, str, tuple[Span, ...]]]:
        """Each event type the item shows: rank, confidence, name, evidence.

        A type that the title claims drops the types it supersedes unless the
        title claims them too: "Israel recalls its team" with "the team had
        arrived on Monday" in the summary is a recall, not also a dispatch.
        """
        found = []
        in_title: set[str] = set()
        mask = item.mask
        for event in self._events:
            if not event.need.within(mask):
                continue
            best: tuple[float, list[Span]] | None = None
            for rule in event.rules:
                if not rule.need.within(mask):
                    continue
                if best is not None and rule.confidence + 0.1 <= best[0]:
                    continue  # even in the title it would not beat the rule found
                chosen = item.match(rule)
                if chosen is None:
                    continue
                titled = chosen[0][0] == "title"
                if titled:
                    in_title.add(event.name)
                confidence = min(0.99, rule.confidence + (0.1 if titled else 0))
                if best is None or confidence > best[0]:
                    best = (confidence, chosen)
            if best is not None:
                spans = tuple(sorted(set(best[1]), key=lambda s: (s[0], s[1], s[2])))
                found.append((event.rank, round(best[0], 3), event.name, spans))
        if in_title:
            outranked: set[str] = set()
            for event in self._events:
                if event.name in in_title:
                    outranked |= event.supersedes
            outranked -= in_title
            if outranked:
                found = [f for f in found if f[2] not in outranked]
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
            for name, value, unit, span in self._figures.read(field, text, digits, words):
                found.append(("figure", name, value, unit, (span,)))
        return tuple(found)

    def story_key(self, item: NewsItem, result: Classification) -> str:
        """The story an item belongs to: the pack, its primary event type and UTC day.

        Items with no event type are stories of their own (keyed by ``item_id``).
        """
        when: datetime = item.published_at or item.fetched_at
        if not result.event_types:
            return ids.story_key(self.pack.name, f"item:{item.item_id}", when.date())
        return ids.story_key(self.pack.name, result.event_types[0], when.date())
