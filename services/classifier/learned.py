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

How an item is read and scored, in :mod:`.stems`: each sentence's words
reduced to their stems, as themselves, tagged with their field (title or
summary) and in neighbouring pairs; a label's probability is the logistic
function of its bias plus the weights of those features. The evidence of a
learned tag is the sentence whose features weigh most towards it: a tag still
names the text that carried it.

The model is plain data (:class:`LearnedModel`, a JSON file beside the pack), so
running it needs no training library; training it needs scikit-learn
(``dohawatch[train]``, see :mod:`.train`).
"""

from __future__ import annotations

from functools import cached_property
from typing import Final

from pydantic import BaseModel, ConfigDict, Field

from .stems import Prediction, Scorer

__all__ = ["RELEVANT", "LearnedModel"]

RELEVANT: Final = "relevant"
"""The label under which a model keeps its relevance weights."""


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
    def scorer(self) -> Scorer:
        """The weights arranged for reading items."""
        return Scorer(self.bias, self.weights)

    def predict(self, title: str, summary: str) -> Prediction:
        """Read one item."""
        return self.scorer.predict(title, summary)
