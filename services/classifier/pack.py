"""Topic packs: the YAML data that tells the classifier what a story looks like.

A pack names groups of terms, then builds relevance rules, event rules and
entities from those groups. Nothing about the Doha talks is in code; another
story is another pack (see ``packs/``). A pack is validated when it is loaded,
and every error names its key path.
"""

from __future__ import annotations

import re
from importlib import resources
from itertools import product
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from dohawatch.shared.errors import PackError, key_path, validation_problems
from dohawatch.shared.events import Severity

from .forms import family
from .learned import LearnedModel

__all__ = [
    "FAMILY",
    "HYPHEN_TERM",
    "NUMBER_TERM",
    "EntitySpec",
    "EventSpec",
    "FigureSpec",
    "Rule",
    "TopicPack",
    "alternation",
    "expand",
    "load_pack",
    "with_model",
]

_BRACES = re.compile(r"\{([^{}]*)\}")
_GROUP = re.compile(r"\(\?P<(\w+)>")
_BACKREF = re.compile(r"\(\?P=(\w+)\)")


def alternation(patterns: list[str]) -> str:
    """Figure patterns as one regex: the i-th is the group ``f{i}``, its own
    groups renamed ``f{i}_value``, ``f{i}_unit`` and so on."""
    parts = []
    for i, pattern in enumerate(patterns):
        body = _BACKREF.sub(rf"(?P=f{i}_\1)", _GROUP.sub(rf"(?P<f{i}_\1>", pattern))
        parts.append(f"(?P<f{i}>{body})")
    return "|".join(parts)


FAMILY = "~"
"""Written after a term word ("recall~"): the word stands for its whole family."""

NUMBER_TERM = "<number>"
"""A term group phrase that stands for any number in the text ("33", "1,200", "six")."""

HYPHEN_TERM = "<hyphen>"
"""A term group phrase that stands for a hyphen joining two words: in a cancel
group named by ``cancel_before``, it cancels the second word of a compound
("Hamas-approved deal" approves nothing)."""


def expand(phrase: str) -> list[str]:
    """Expand ``{a,b}`` alternatives and ``word~`` families into plain phrases.

    ``recall{,s,ed}`` gives recall, recalls, recalled; ``recall~ {team,envoy}``
    gives every form of "recall" (recalls, recalled, recalling) before each noun.
    """
    match = _BRACES.search(phrase)
    if not match:
        options = [
            sorted(family(word[:-1].lower())) if word.endswith(FAMILY) else [word]
            for word in phrase.split()
        ]
        return [" ".join(words) for words in product(*options)]
    head, tail = phrase[: match.start()], phrase[match.end() :]
    return [v for alt in match.group(1).split(",") for v in expand(head + alt + tail)]


class _Spec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Rule(_Spec):
    """Groups that must all occur in one sentence (or anywhere, with ``scope: item``).

    The first group is the anchor; evidence lists it first, and the title
    anchoring a match raises its confidence. In a sentence rule, a cancel term
    (negation, denial, modality) shortly before the word of any group cancels
    that word: "the team could be recalled" has no recall, nor has "talks could
    resume" a resumption. An item rule checks its anchor only.
    """

    all: tuple[str, ...] = Field(min_length=1)
    scope: Literal["sentence", "item"] = "sentence"
    confidence: float = Field(0.8, gt=0, le=1)
    cancel: tuple[str, ...] | None = Field(
        None,
        description="Cancel groups for this rule alone, in place of its event's: "
        "'would take effect' is still an agreement, 'would accept' no response.",
    )
    near: int | None = Field(
        None,
        ge=0,
        description="At most this many words between the anchor and each other group's "
        "word (sentence rules only): 'agreed' near 'first phase', not anywhere in the sentence.",
    )

    ordered: bool = Field(
        False, description="With near: the other groups' words come after the anchor's."
    )

    @model_validator(mode="after")
    def _near_needs_a_sentence(self) -> Rule:
        if self.near is not None and self.scope == "item":
            raise ValueError("near applies to sentence rules only")
        if self.ordered and self.near is None:
            raise ValueError("ordered applies to rules with near")
        return self


class RelevanceRule(Rule):
    """A combination of signals and the relevance score it gives."""

    score: float = Field(ge=-1, le=1)


class EventSpec(_Spec):
    """One event type: when it fires, what cancels it, how severe it is."""

    description: str
    severity: Severity
    rules: tuple[Rule, ...] = Field(min_length=1)
    cancel: tuple[str, ...] = ()
    cancel_window: int = Field(40, ge=0, description="Characters before a rule's word.")
    cancel_before: tuple[str, ...] = Field(
        (),
        description="Cancel groups whose term cancels a near rule's anchor only when it "
        "stands right before it: 'to' in 'a proposal to extend the truce'.",
    )
    cancel_after: tuple[str, ...] = Field(
        (),
        description="Groups whose term right after a near rule's word cancels it: the word "
        "is then a modifier of another noun ('ceasefire' in 'ceasefire proposal').",
    )
    cancel_stop: tuple[str, ...] = Field(
        (),
        description="Groups whose term ends a cancel word's reach, as a clause boundary: "
        "'not' cancels nothing after 'but' in 'Hamas did not attend, but Israel accepted "
        "the offer'.",
    )
    apart: tuple[str, ...] = Field(
        (),
        description="Groups whose term between a near rule's anchor and another of its "
        "words keeps the two apart: 'which' in 'the truce, which began in January', a "
        "relative clause telling of a deal already made.",
    )
    supersedes: tuple[str, ...] = Field(
        (),
        description="Event types that the title's claim of this one outranks: when the "
        "title shows this type, those count only if the title shows them too. The "
        "title is the report's claim, the summary its context.",
    )


class EntitySpec(_Spec):
    """A canonical name and the aliases that refer to it."""

    kind: Literal["actor", "person", "place"]
    aliases: tuple[str, ...] = Field(min_length=1)


class FigureSpec(_Spec):
    """A number worth extracting: a regex with a ``value`` group and its unit.

    ``value`` may match digits ("1,200", "1.5"), a number word from two to
    twenty, or a tens word to ninety ("six", "sixty"). With ``scale``, the pattern's
    ``unit`` group names the factor that converts into ``unit``: "week": 7 for
    days, "km": 1000 for metres.
    """

    pattern: str
    unit: str
    scale: dict[str, float] = {}

    @model_validator(mode="after")
    def _compiles(self) -> FigureSpec:
        try:
            compiled = re.compile(self.pattern)
        except re.error as exc:
            raise ValueError(f"pattern does not compile: {exc}") from exc
        if "value" not in compiled.groupindex:
            raise ValueError("pattern needs a (?P<value>...) group")
        if self.scale and "unit" not in compiled.groupindex:
            raise ValueError("scale needs a (?P<unit>...) group in the pattern")
        return self


class Relevance(_Spec):
    """How relevance is scored: the best positive rule plus every matching penalty."""

    threshold: float = Field(0.5, gt=0, lt=1)
    rules: tuple[RelevanceRule, ...] = Field(min_length=1)
    event_bonus: float = Field(0.1, ge=0, le=1, description="Added per event type found.")


class TopicPack(_Spec):
    """A whole topic pack."""

    name: str = Field(pattern=r"^[a-z0-9-]+$")
    version: str
    description: str
    terms: dict[str, tuple[str, ...]]
    relevance: Relevance
    events: dict[str, EventSpec]
    entities: dict[str, EntitySpec] = {}
    figures: dict[str, FigureSpec] = {}
    model: str | None = Field(
        None,
        description="A learned model trained for this pack (dohawatch train): a JSON file, "
        "its path relative to the pack file's folder.",
    )
    learned: LearnedModel | None = Field(None, exclude=True)  # the model, once read

    @model_validator(mode="after")
    def _groups_exist(self) -> TopicPack:
        known = set(self.terms)
        used: list[tuple[str, str]] = [
            (f"relevance.rules[{i}]", g) for i, r in enumerate(self.relevance.rules) for g in r.all
        ]
        for name, event in self.events.items():
            used += [
                (f"events.{name}.rules[{i}]", g) for i, r in enumerate(event.rules) for g in r.all
            ]
            used += [(f"events.{name}.cancel", g) for g in event.cancel]
            used += [(f"events.{name}.cancel_before", g) for g in event.cancel_before]
            used += [(f"events.{name}.cancel_after", g) for g in event.cancel_after]
            used += [(f"events.{name}.apart", g) for g in event.apart]
            used += [(f"events.{name}.cancel_stop", g) for g in event.cancel_stop]
            used += [
                (f"events.{name}.rules[{i}].cancel", g)
                for i, r in enumerate(event.rules)
                for g in r.cancel or ()
            ]
        missing = [
            f"events.{name}.supersedes: unknown event type {other!r}"
            for name, event in self.events.items()
            for other in event.supersedes
            if other not in self.events
        ]
        missing += [
            f"{where}: unknown term group {group!r}" for where, group in used if group not in known
        ]
        try:
            re.compile(alternation([f.pattern for f in self.figures.values()]))
        except re.error as exc:
            missing.append(f"figures: the patterns do not combine into one regex: {exc}")
        missing += [
            f"terms.{group}: {phrase!r}: {special} is a phrase of its own"
            for group, phrases in self.terms.items()
            for phrase in phrases
            for special in (NUMBER_TERM, HYPHEN_TERM)
            if special in phrase and phrase != special
        ]
        if missing:
            raise ValueError("; ".join(missing))
        return self


def _bundled(name: str) -> Path | None:
    candidate = resources.files("dohawatch.classifier") / "packs" / f"{name}.yaml"
    return Path(str(candidate)) if candidate.is_file() else None


def load_pack(name_or_path: str) -> TopicPack:
    """Load a bundled pack by name (``doha-talks``) or a pack file by path.

    Raises:
        PackError: the file is missing, not YAML, or invalid; the message names the key.
    """
    path = _bundled(name_or_path) or Path(name_or_path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        pack = TopicPack.model_validate(raw)
    except OSError as exc:
        raise PackError(f"topic pack {name_or_path!r}: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise PackError(f"topic pack {path}: not valid YAML: {exc}") from exc
    except ValidationError as exc:
        problems = validation_problems(exc, lambda loc: key_path(loc) or "pack")
        raise PackError(f"topic pack {path}: {problems}") from exc
    return pack if pack.model is None else with_model(pack, path.parent / pack.model)


def with_model(pack: TopicPack, path: Path) -> TopicPack:
    """``pack`` with the learned model stored at ``path``.

    A label of the model that the pack lacks is never read, so a pack derived
    from another (an event type taken out) keeps its model; a type the model
    lacks is left to the rules.

    Raises:
        PackError: the file is missing or invalid, or the model was trained for
            another pack.
    """
    try:
        model = LearnedModel.model_validate_json(path.read_bytes())
    except OSError as exc:
        raise PackError(f"learned model {path}: {exc.strerror or exc}") from exc
    except ValidationError as exc:
        problems = validation_problems(exc, lambda loc: key_path(loc) or "model")
        raise PackError(f"learned model {path}: {problems}") from exc
    if model.pack.split("@", 1)[0] != pack.name:
        raise PackError(f"learned model {path}: trained for {model.pack}, not for pack {pack.name}")
    return pack.model_copy(update={"learned": model})
