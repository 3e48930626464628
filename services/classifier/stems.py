"""How the learned stage reads an item, and the arithmetic of one prediction.

How an item is read: the title is one sentence and the summary is split into
sentences as the engine splits it. Each word is lower-cased and reduced to its
stem (Snowball's English stemmer, after irregular verb forms are mapped to their
lemma, so "broke", "breaks" and "breaking" are one feature). A sentence gives
each stem twice, as itself and tagged with its field (``t:`` the title, ``s:`` the
summary, since the title is the claim and the summary the context), and each pair
of neighbouring stems. The item's features are the union of its sentences'.

A label's score is its bias plus the weights of the item's features, and its
probability the logistic function of the score. :class:`Scorer` numbers the
features a model weighs and reads each sentence straight into those numbers, so
that a word the model does not know costs a lookup and no string is built for
it. A set of numbers yields them in the same order in every process, whatever
its hash seed, so a probability, which adds the weights in that order, is the
same to the last bit wherever it is computed.

setup.py compiles this module with the engine (:mod:`.engine`), which calls it
natively; :mod:`.learned` keeps the model's stored form, a pydantic model,
which mypyc does not compile.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from itertools import pairwise
from typing import Final, final

import snowballstemmer  # type: ignore[import-untyped]

from .forms import IRREGULAR
from .scan import ASCII_WORDS, SENTENCE_END, FieldName, Span

__all__ = ["Prediction", "Scorer", "features", "sentence_features", "sentences", "words"]

_WORD: Final = re.compile(r"[^\W_]+")
_LEMMA: Final = {form: lemma for lemma, forms in IRREGULAR.items() for form in forms}
_stem_word = snowballstemmer.stemmer("english").stemWord
_STEMS: dict[str, str] = {}  # bounded below: news reuses a vocabulary of some thousands
_MAX_STEMS: Final = 200_000


def _stem(word: str) -> str:
    if word.isascii() and word.isdigit():
        return word  # the stemmer leaves a number as it is, and news is full of new ones
    stem = _STEMS.get(word)
    if stem is None:
        if len(_STEMS) >= _MAX_STEMS:
            _STEMS.clear()
        stem = _stem_word(_LEMMA.get(word, word))
        _STEMS[word] = stem
    return stem


def sentences(title: str, summary: str) -> Iterator[Span]:
    """The title, then each sentence of the summary, as evidence spans."""
    if title.strip():
        yield ("title", 0, len(title), title)
    start = 0
    for end in [m.end() for m in SENTENCE_END.finditer(summary)] + [len(summary)]:
        text = summary[start:end].rstrip()
        if text.strip():
            yield ("summary", start, start + len(text), text)
        start = end


def words(text: str) -> list[str]:
    """The lower-cased words of ``text``: runs of letters and digits. ASCII text,
    almost all news, is split by a byte translation, four times faster than the
    regex that reads the rest."""
    if text.isascii():
        return text.encode("ascii").translate(ASCII_WORDS).decode("ascii").split()
    return _WORD.findall(text.lower())


def sentence_features(field: FieldName, text: str) -> set[str]:
    """The features of one sentence: each stem, each stem tagged with its field,
    and each pair of neighbouring stems."""
    stems = [_STEMS.get(w) or _stem(w) for w in words(text)]
    tag = "t:" if field == "title" else "s:"
    found = set(stems)
    found.update([tag + s for s in stems])
    found.update([f"{a} {b}" for a, b in pairwise(stems)])
    return found


def features(title: str, summary: str) -> set[str]:
    """The features of a whole item: the union of its sentences'."""
    found: set[str] = set()
    for field, _, _, text in sentences(title, summary):
        found |= sentence_features(field, text)
    return found


@final
class Scorer:
    """A linear model's weights arranged for reading items.

    Each feature the model weighs gets a number, and its row holds its weight
    for every label. A sentence is read into the numbers of its known features
    without building their names: a stem is looked up as itself and under its
    field's tag, a pair of neighbouring stems as the second stem under the
    first. The features the model does not know cost one lookup each, and no
    string is made for them.
    """

    def __init__(self, bias: dict[str, float], weights: dict[str, dict[str, float]]) -> None:
        """``bias`` names every label, in order; ``weights`` the features of those
        that weigh any (a label absent from it weighs none)."""
        self.labels: tuple[str, ...] = tuple(bias)
        self.biases: tuple[float, ...] = tuple(bias.values())
        self._label: dict[str, int] = {label: i for i, label in enumerate(self.labels)}
        names = sorted({f for label_weights in weights.values() for f in label_weights})
        self.names: tuple[str, ...] = tuple(names)  # the features the model weighs, by number
        # Per feature number, its weight for each label in the order of `labels`.
        self.rows: tuple[tuple[float, ...], ...] = tuple(
            [tuple([weights.get(label, {}).get(f, 0.0) for label in self.labels]) for f in names]
        )
        self._stems: dict[str, int] = {}
        self._title: dict[str, int] = {}
        self._summary: dict[str, int] = {}
        self._pairs: dict[str, dict[str, int]] = {}
        for number, name in enumerate(names):
            first, space, second = name.partition(" ")
            if space:
                self._pairs.setdefault(first, {})[second] = number
            elif name.startswith("t:"):
                self._title[name[2:]] = number
            elif name.startswith("s:"):
                self._summary[name[2:]] = number
            else:
                self._stems[name] = number

    def known(self, field: FieldName, text: str) -> set[int]:
        """The numbers of the features of one sentence that the model weighs: the
        features :func:`sentence_features` names, less those it does not know."""
        stems = [_STEMS.get(w) or _stem(w) for w in words(text)]
        plain = self._stems
        tagged = self._title if field == "title" else self._summary
        found: set[int] = set()
        for stem in stems:
            number = plain.get(stem)
            if number is not None:
                found.add(number)
            number = tagged.get(stem)
            if number is not None:
                found.add(number)
        pairs = self._pairs
        for first, second in pairwise(stems):
            following = pairs.get(first)
            if following is not None:
                number = following.get(second)
                if number is not None:
                    found.add(number)
        return found

    def predict(self, title: str, summary: str) -> Prediction:
        """Read one item."""
        return Prediction(self, title, summary)

    def label(self, name: str) -> int:
        """The position of label ``name`` in a row; -1 for a label the model lacks."""
        return self._label.get(name, -1)


@final
class Prediction:
    """A model's reading of one item: a probability per label, and per label the
    sentence that weighs most towards it."""

    def __init__(self, scorer: Scorer, title: str, summary: str) -> None:
        self._scorer = scorer
        self._sentences: list[tuple[Span, set[int]]] = [
            (span, scorer.known(span[0], span[3])) for span in sentences(title, summary)
        ]
        weighed: set[int] = set()  # the item's features: the union of its sentences'
        for _, found in self._sentences:
            weighed |= found
        self.probability: dict[str, float] = {}
        rows = scorer.rows
        # zip turns the features' rows into the labels' columns, each summed in C.
        columns = list(zip(*[rows[number] for number in weighed], strict=True))
        for i, label in enumerate(scorer.labels):
            score = scorer.biases[i] + (sum(columns[i]) if columns else 0.0)
            self.probability[label] = 1.0 / (1.0 + math.exp(-score))

    def evidence(self, label: str) -> tuple[Span, ...]:
        """The sentence whose features weigh most towards ``label``; none for an
        empty item or a label the model lacks."""
        column = self._scorer.label(label)
        if column < 0:
            return ()
        rows = self._scorer.rows
        best: tuple[float, Span] | None = None
        for span, found in self._sentences:
            weight = sum([w for number in found if (w := rows[number][column]) > 0])
            if best is None or weight > best[0]:
                best = (weight, span)
        return () if best is None else (best[1],)
