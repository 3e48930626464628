"""Quality measurement of a classifier on labelled items (``dohawatch eval``)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from .engine import Classifier

__all__ = ["Labelled", "Report", "Score", "evaluate"]


@dataclass(frozen=True, slots=True)
class Labelled:
    """One labelled item, as in the dev corpus."""

    id: str
    title: str
    summary: str
    relevant: bool
    events: frozenset[str]

    @classmethod
    def from_json(cls, row: Mapping[str, object]) -> Labelled:
        """Build from a corpus line; ``events`` defaults to none."""
        events = row.get("events") or []
        assert isinstance(events, list)
        return cls(
            str(row["id"]),
            str(row["title"]),
            str(row.get("summary", "")),
            bool(row["relevant"]),
            frozenset(map(str, events)),
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

    def lines(self) -> list[str]:
        """A printable table followed by each wrong item."""
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
        for item, relevant, events in self.wrong:
            out.append(f"\n{item.id}: {item.title}")
            if relevant != item.relevant:
                out.append(f"  relevant: expected {item.relevant}, predicted {relevant}")
            if missing := sorted(item.events - events):
                out.append(f"  missed:   {', '.join(missing)}")
            if extra := sorted(events - item.events):
                out.append(f"  extra:    {', '.join(extra)}")
        return out


def evaluate(
    classifier: Classifier, items: Iterable[Labelled], event_types: Sequence[str] | None = None
) -> Report:
    """Classify every item and score the predictions against the labels."""
    report = Report()
    types = list(event_types or classifier.pack.events)
    report.events = {t: Score() for t in types}
    for item in items:
        result = classifier.classify(item.title, item.summary)
        predicted = frozenset(result.event_types)
        report.relevance.add(item.relevant, result.relevant)
        for t in types:
            report.events[t].add(t in item.events, t in predicted)
            report.micro.add(t in item.events, t in predicted)
        if result.relevant != item.relevant or predicted != item.events:
            report.wrong.append((item, result.relevant, predicted))
    return report
