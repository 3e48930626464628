"""The learned stage: a linear model over word stems that backs up a pack's rules.

Rules are precise on the wordings they name and blind to the others; a model
trained on labelled items (``dohawatch train``) reads every word, so it catches
wordings nobody wrote a rule for. The engine uses it, when the pack names one
(``model:`` in the pack file), on the items where a relevance rule matched:

* relevance is lifted to the mean of the rules' score and the model's
  probability where the model is surer, so an item the rules half-recognised
  can pass; it is never lowered;
* an event type the rules missed is tagged when the model's probability for it
  reaches the model's threshold (0.5), with that probability as its confidence.

How an item is read: the title is one sentence and the summary is split into
sentences as the engine splits it. Each word is lower-cased and reduced to its
stem (Snowball's English stemmer, after irregular verb forms are mapped to their
lemma, so "broke", "breaks" and "breaking" are one feature). A sentence gives
each stem twice, as itself and tagged with its field (``t:`` the title, ``s:`` the
summary, since the title is the claim and the summary the context), and each pair
of neighbouring stems. The item's features are the union of its sentences'.

A label's score is its bias plus the weights of the features present, and its
probability the logistic function of the score. The evidence of a learned tag is
the sentence whose features weigh most towards it: a tag still names the text
that carried it.

The model is plain data (:class:`LearnedModel`, a JSON file beside the pack), so
running it needs nothing beyond this module; training it needs scikit-learn
(``dohawatch[train]``, see :mod:`.train`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from functools import cached_property
from itertools import pairwise
from typing import Final

import snowballstemmer  # type: ignore[import-untyped]
from pydantic import BaseModel, ConfigDict, Field

from .forms import IRREGULAR
from .scan import ASCII_WORDS, SENTENCE_END, FieldName, Span

__all__ = [
    "RELEVANT",
    "LearnedModel",
    "Prediction",
    "features",
    "sentence_features",
    "sentences",
    "words",
]

RELEVANT: Final = "relevant"
"""The label under which a model keeps its relevance weights."""

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
        stem = _STEMS[word] = _stem_word(_LEMMA.get(word, word))
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


class Prediction:
    """A model's reading of one item: a probability per label, and per label the
    sentence that weighs most towards it."""

    __slots__ = ("_model", "_sentences", "probability")

    def __init__(self, model: LearnedModel, title: str, summary: str) -> None:
        self._model = model
        self._sentences = [
            (span, sentence_features(span[0], span[3])) for span in sentences(title, summary)
        ]
        columns = model.columns
        weighed: set[str] = set()  # the item's features that some label weighs
        for _, found in self._sentences:
            weighed |= found & columns.keys()
        # One lookup per feature gives its weight for every label; zip turns the
        # features' rows into the labels' columns, each summed in C.
        rows = [columns[f] for f in weighed]
        totals = [sum(column) for column in zip(*rows, strict=True)] if rows else None
        self.probability: dict[str, float] = {
            label: 1.0 / (1.0 + math.exp(-(bias + (totals[i] if totals else 0))))
            for i, (label, bias, _) in enumerate(model.rows)
        }

    def evidence(self, label: str) -> tuple[Span, ...]:
        """The sentence whose features weigh most towards ``label``; none for an empty item."""
        weights = self._model.weights.get(label, {})
        best: tuple[float, Span] | None = None
        for span, found in self._sentences:
            weight = sum(w for f in found if (w := weights.get(f, 0.0)) > 0)
            if best is None or weight > best[0]:
                best = (weight, span)
        return () if best is None else (best[1],)


class LearnedModel(BaseModel):
    """A trained model as stored beside its pack: per label a bias and feature weights,
    and how it was trained and scored."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    pack: str = Field(description="The pack whose labels it learned, 'name@version'.")
    version: str = Field(description="A digest of the weights: part of the classifier version.")
    threshold: float = Field(0.5, gt=0, lt=1, description="Probability that tags an event.")
    bias: dict[str, float] = Field(description="Per label: the score of an item with no features.")
    weights: dict[str, dict[str, float]] = Field(description="Per label: feature -> weight.")
    trained: dict[str, object] = Field(
        default_factory=dict,
        description="How it was trained: the file, items, stories, seed, regularisation, "
        "and the story-grouped cross-validated scores.",
    )

    @property
    def labels(self) -> tuple[str, ...]:
        """Relevance first, then the event types, in the order stored."""
        return tuple(self.bias)

    @cached_property
    def rows(self) -> tuple[tuple[str, float, dict[str, float]], ...]:
        """Per label: its name, bias and weights (empty for a label never seen)."""
        return tuple(
            (label, bias, self.weights.get(label, {})) for label, bias in self.bias.items()
        )

    @cached_property
    def columns(self) -> dict[str, tuple[float, ...]]:
        """Per feature that some label weighs: its weight for each label, in the
        order of :attr:`labels` (0.0 where a label does not weigh it)."""
        rows = self.rows
        return {
            f: tuple(weights.get(f, 0.0) for _, _, weights in rows)
            for f in sorted({f for weights in self.weights.values() for f in weights})
        }

    def predict(self, title: str, summary: str) -> Prediction:
        """Read one item."""
        return Prediction(self, title, summary)
