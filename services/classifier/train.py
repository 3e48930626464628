"""Training the learned stage (``dohawatch train``), and scoring it by story.

A model is fitted per label, relevance and each of the pack's event types: a
logistic regression (scikit-learn) on the features :mod:`.learned` reads, with
L2 regularisation and classes weighted by their rarity, so that an event type
seen in a dozen items is not drowned by the items without it. Only the weights
go into the stored model; running it needs no scikit-learn.

Its quality is measured the way it will meet news: items of one story report
one development in similar words, so cross-validation holds out whole stories
(``GroupKFold`` on the ``story`` field, shuffled from a fixed seed), and each
fold is scored with the rules and the fold's model together, as the service
runs them.

Needs the ``train`` extra (``pip install 'dohawatch[train]'``).
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from dohawatch.shared.errors import ConfigError

from .engine import Classification, Classifier
from .evaluate import Labelled, Report, score
from .learned import RELEVANT, LearnedModel
from .pack import TopicPack
from .stems import features

__all__ = ["CrossValidation", "cross_validate", "train"]

try:
    from sklearn.feature_extraction import DictVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold
except ImportError as exc:  # the default install has no scikit-learn
    raise ConfigError(
        "training a model needs scikit-learn: pip install 'dohawatch[train]'"
    ) from exc

_MIN_ITEMS = 2  # a feature of one training item says more about the item than the label
_MIN_WEIGHT = 1e-3  # smaller weights move no probability by a thousandth; not stored
_NEVER = -20.0  # the bias of a label no training item has: probability ~2e-9


def _wanted(item: Labelled, label: str) -> bool:
    return item.relevant if label == RELEVANT else label in item.events


def train(
    items: Sequence[Labelled],
    pack: TopicPack,
    *,
    c: float = 1.0,
    trained: dict[str, object] | None = None,
) -> LearnedModel:
    """Fit one model per label on ``items``.

    Args:
        items: labelled items; their events should be the pack's event types.
        pack: the pack the model serves, for its name and event types.
        c: inverse regularisation strength (scikit-learn's ``C``).
        trained: what to record about the training in the model.
    """
    read = [features(i.title, i.summary) for i in items]
    seen = Counter(f for found in read for f in found)
    rows = [{f: 1 for f in found if seen[f] >= _MIN_ITEMS} for found in read]
    vectors = DictVectorizer()
    x = vectors.fit_transform(rows)
    names = vectors.get_feature_names_out()
    bias: dict[str, float] = {}
    weights: dict[str, dict[str, float]] = {}
    for label in (RELEVANT, *pack.events):
        y = [_wanted(i, label) for i in items]
        if len(set(y)) < 2:  # nothing to tell apart: always or never
            bias[label] = -_NEVER if y and y[0] else _NEVER
            continue
        fitted = LogisticRegression(C=c, class_weight="balanced", max_iter=5000).fit(x, y)
        bias[label] = round(float(fitted.intercept_[0]), 5)
        weights[label] = {
            str(name): round(float(w), 5)
            for name, w in zip(names, fitted.coef_[0], strict=True)
            if abs(w) >= _MIN_WEIGHT
        }
    digest = hashlib.sha256(json.dumps([bias, weights], sort_keys=True).encode()).hexdigest()
    return LearnedModel(
        pack=f"{pack.name}@{pack.version}",
        version=digest[:12],
        bias=bias,
        weights=weights,
        trained=trained or {},
    )


@dataclass(frozen=True, slots=True)
class CrossValidation:
    """Story-grouped cross-validated scores: the rules alone, and with the model."""

    rules: Report
    learned: Report
    folds: int
    seed: int


def cross_validate(
    items: Sequence[Labelled], pack: TopicPack, *, folds: int = 5, seed: int = 0, c: float = 1.0
) -> CrossValidation:
    """Score the rules with a model trained on the other stories' items, fold by fold.

    Every item is classified by a model that never saw its story; the same
    folds come back for the same items and seed.
    """
    stories = [i.story for i in items]
    folds = min(folds, len(set(stories)))
    splitter = GroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    rules = Classifier(pack.model_copy(update={"learned": None}))
    with_model: dict[int, Classification] = {}
    for fit, held in splitter.split(items, groups=stories):
        model = train([items[j] for j in fit], pack, c=c)
        fold = Classifier(pack.model_copy(update={"learned": model}))
        for j in held:
            with_model[j] = fold.classify(items[j].title, items[j].summary)
    types = list(pack.events)
    return CrossValidation(
        rules=score(((i, rules.classify(i.title, i.summary)) for i in items), types),
        learned=score(((items[j], with_model[j]) for j in range(len(items))), types),
        folds=folds,
        seed=seed,
    )
