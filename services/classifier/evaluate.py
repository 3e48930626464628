"""Quality measurement of a classifier on labelled items (``dohawatch eval``).

A score on the items a pack was tuned against says little about news it has
never seen. Labelled items therefore carry their ``story`` (reports of one
development), and a corpus can name a fixed set of held-out stories
(``tests/data/dev-corpus.holdout``): stories chosen before tuning whose errors are
not read while the pack's rules are written. :func:`evaluate_parts` scores the
whole corpus, the tuned part and the held-out part side by side; the held-out
figure is the one to quote.

A part of some fifty items gives a figure that moves by several points with
which stories happened to land in it, so each report also gives a bootstrap
interval: the stories are drawn again with replacement, the F1 recomputed, and
the middle 90% of those F1s is the interval. A change inside it is not yet
shown to be an improvement.
"""

from __future__ import annotations

import random
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .engine import Classification, Classifier

__all__ = [
    "Labelled",
    "Report",
    "Score",
    "evaluate",
    "evaluate_parts",
    "read_holdout",
    "score",
]

_RESAMPLES = 2000  # bootstrap draws: on the tuned part the ends move under 0.002 between seeds


@dataclass(frozen=True, slots=True)
class Labelled:
    """One labelled item, as in the dev corpus."""

    id: str
    title: str
    summary: str
    relevant: bool
    events: frozenset[str]
    story: str = ""  # items of one story report one development; "" for its own

    @classmethod
    def from_json(cls, row: Mapping[str, object]) -> Labelled:
        """Build from a corpus line; ``events`` defaults to none, ``story`` to the id."""
        events = row.get("events") or []
        assert isinstance(events, list)
        return cls(
            str(row["id"]),
            str(row["title"]),
            str(row.get("summary", "")),
            bool(row["relevant"]),
            frozenset(map(str, events)),
            str(row.get("story") or row["id"]),
        )


@dataclass(slots=True)
class Score:
    """True positives, false positives and false negatives of one label."""

    tp: int = 0
    fp: int = 0
    fn: int = 0

    def add(self, expected: bool, predicted: bool) -> None:
        """Count one decision."""
        self.tp += expected and predicted
        self.fp += predicted and not expected
        self.fn += expected and not predicted

    @property
    def precision(self) -> float:
        """tp / (tp + fp), 1.0 when nothing was predicted."""
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        """tp / (tp + fn), 1.0 when nothing was expected."""
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def f1(self) -> float:
        """Harmonic mean of precision and recall."""
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


@dataclass(slots=True)
class Report:
    """Scores for relevance, each event type and all events together, plus the misses."""

    relevance: Score = field(default_factory=Score)
    events: dict[str, Score] = field(default_factory=dict)
    micro: Score = field(default_factory=Score)
    wrong: list[tuple[Labelled, bool, frozenset[str]]] = field(default_factory=list)
    items: int = 0
    # Per story (an item without one is its own): its relevance and event scores.
    stories: dict[str, tuple[Score, Score]] = field(default_factory=dict)

    def interval(
        self, *, events: bool = True, resamples: int = _RESAMPLES, seed: int = 0
    ) -> tuple[float, float]:
        """The 90% story bootstrap interval of the event micro-F1 (or, with
        ``events=False``, of the relevance F1): ``resamples`` draws of as many
        stories as the report has, with replacement, from a fixed seed."""
        scores = [pair[1] if events else pair[0] for pair in self.stories.values()]
        if not scores:
            return (0.0, 0.0)
        draw = random.Random(seed).choices
        f1s = []
        for _ in range(resamples):
            total = Score()
            for s in draw(scores, k=len(scores)):
                total.tp += s.tp
                total.fp += s.fp
                total.fn += s.fn
            f1s.append(total.f1)
        cuts = statistics.quantiles(f1s, n=20, method="inclusive")  # 5%, 10%, … 95%
        return (cuts[0], cuts[-1])

    def interval_line(self) -> str:
        """The two intervals, printable under the table."""
        (rl, rh), (el, eh) = self.interval(events=False), self.interval()
        n = len(self.stories)
        stories = f"{n} story" if n == 1 else f"{n} stories"
        return (
            f"90% intervals over {_RESAMPLES:,} redraws of its {stories}: "
            f"relevance F1 {rl:.3f}–{rh:.3f}, event micro-F1 {el:.3f}–{eh:.3f}"
        )

    def table(self) -> list[str]:
        """The scores as a printable table."""
        rows = [
            ("relevance", self.relevance),
            *sorted(self.events.items()),
            ("events (micro)", self.micro),
        ]
        out = [f"{'label':<28} {'P':>6} {'R':>6} {'F1':>6} {'tp':>4} {'fp':>4} {'fn':>4}"]
        out += [
            f"{name:<28} {s.precision:6.3f} {s.recall:6.3f} {s.f1:6.3f} "
            f"{s.tp:4d} {s.fp:4d} {s.fn:4d}"
            for name, s in rows
        ]
        return out

    def wrong_lines(self) -> list[str]:
        """Each wrongly classified item: what was expected and what was found."""
        out = []
        for item, relevant, events in self.wrong:
            out.append(f"\n{item.id} ({item.story}): {item.title}")
            if relevant != item.relevant:
                out.append(f"  relevant: expected {item.relevant}, predicted {relevant}")
            if missing := sorted(item.events - events):
                out.append(f"  missed:   {', '.join(missing)}")
            if extra := sorted(events - item.events):
                out.append(f"  extra:    {', '.join(extra)}")
        return out

    def lines(self) -> list[str]:
        """A printable table followed by each wrong item."""
        return self.table() + self.wrong_lines()


def evaluate(
    classifier: Classifier, items: Iterable[Labelled], event_types: Sequence[str] | None = None
) -> Report:
    """Classify every item and score the predictions against the labels."""
    types = list(event_types or classifier.pack.events)
    return score(((item, classifier.classify(item.title, item.summary)) for item in items), types)


def score(results: Iterable[tuple[Labelled, Classification]], event_types: Sequence[str]) -> Report:
    """Score each item's classification against its labels."""
    report = Report()
    report.events = {t: Score() for t in event_types}
    for item, result in results:
        report.items += 1
        predicted = frozenset(result.event_types)
        relevance, events = report.stories.setdefault(
            item.story or f"item:{item.id}", (Score(), Score())
        )
        report.relevance.add(item.relevant, result.relevant)
        relevance.add(item.relevant, result.relevant)
        for t in event_types:
            report.events[t].add(t in item.events, t in predicted)
            report.micro.add(t in item.events, t in predicted)
            events.add(t in item.events, t in predicted)
        if result.relevant != item.relevant or predicted != item.events:
            report.wrong.append((item, result.relevant, predicted))
    return report


def read_holdout(path: Path) -> frozenset[str]:
    """The held-out story ids in ``path``: one a line, ``#`` starts a comment."""
    stories = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return frozenset(s for s in stories if s)


def evaluate_parts(
    classifier: Classifier, items: Sequence[Labelled], held_out: frozenset[str]
) -> dict[str, Report]:
    """Score ``items`` whole, then split by story into the tuned and held-out parts.

    Returns:
        ``{"all": …, "tuned": …, "held-out": …}``; without held-out stories only
        ``"all"``. A story is never split between the parts.
    """
    parts = {"all": evaluate(classifier, items)}
    if held_out:
        parts["tuned"] = evaluate(classifier, [i for i in items if i.story not in held_out])
        parts["held-out"] = evaluate(classifier, [i for i in items if i.story in held_out])
    return parts
