"""How pack rules match: word families, proximity, order, cancels around a word
and where their reach stops, the title's claim, number words and joining hyphens."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dohawatch.classifier.engine import Classifier, _Groups
from dohawatch.classifier.figures import NUMBER_WORDS
from dohawatch.classifier.forms import family
from dohawatch.classifier.pack import expand, load_pack
from dohawatch.shared.errors import PackError


def _pack(tmp_path: Path, terms: str, events: str) -> Classifier:
    """A pack whose every item is relevant, with the given term groups and events."""
    path = tmp_path / "p.yaml"
    path.write_text(
        "name: p\nversion: '1'\ndescription: x\n"
        f"terms: {{any: [the, a, its], {terms}}}\n"
        "relevance: {rules: [{all: [any], scope: item, score: 0.9}]}\n"
        f"events: {{{events}}}\n"
    )
    return Classifier(load_pack(str(path)))


def _types(c: Classifier, summary: str, title: str = "The news") -> set[str]:
    return set(c.classify(title, summary).event_types)


@pytest.mark.parametrize(
    ("lemma", "forms"),
    [
        ("recall", {"recall", "recalls", "recalled", "recalling"}),
        ("agree", {"agree", "agrees", "agreed", "agreeing"}),
        ("reply", {"reply", "replies", "replied", "replying"}),
        ("stop", {"stop", "stops", "stopped", "stopping"}),
        ("withdraw", {"withdraw", "withdraws", "withdrew", "withdrawn", "withdrawing"}),
        ("withhold", {"withhold", "withholds", "withheld", "withholding"}),
        ("send", {"send", "sends", "sent", "sending"}),
        ("relay", {"relay", "relays", "relayed", "relaying"}),
        ("strike", {"strike", "strikes", "struck", "striking"}),
    ],
)
def test_a_word_family_holds_every_inflected_form(lemma: str, forms: set[str]) -> None:
    """A lemma's family holds its -s, -ed and -ing forms and its irregular ones."""
    assert forms <= family(lemma)


def test_an_irregular_verb_has_no_regular_past() -> None:
    """ "sended" and "withdrawed" are not generated where English has "sent" and "withdrew"."""
    assert "sended" not in family("send")
    assert "withdrawed" not in family("withdraw")


def test_a_family_marker_expands_each_marked_word() -> None:
    """``word~`` expands to the family, other words stay as written."""
    assert set(expand("recall~ {team,envoy}")) == {
        f"{verb} {noun}"
        for verb in ("recall", "recalls", "recalled", "recalling")
        for noun in ("team", "envoy")
    }


@pytest.mark.parametrize("form", ["recalls", "recalled", "recalling", "Recall"])
def test_a_family_term_matches_a_form_the_pack_never_listed(tmp_path: Path, form: str) -> None:
    """One ``recall~`` in the pack matches every form in the text, evidence as written."""
    c = _pack(
        tmp_path,
        'verb: ["recall~"], team: [team]',
        "recalled: {description: d, severity: low, rules: [{all: [verb, team]}]}",
    )
    result = c.classify("", f"Israel {form} its team.")
    assert result.event_types == ("recalled",)
    assert form in {s.text for s in result.events[0].evidence}


def _near_pack(tmp_path: Path, near: int, ordered: bool = False) -> Classifier:
    order = ", ordered: true" if ordered else ""
    return _pack(
        tmp_path,
        'verb: ["agree~"], deal: [deal, "first phase"]',
        "agreed: {description: d, severity: low, "
        f"rules: [{{all: [verb, deal], near: {near}{order}}}]}}",
    )


@pytest.mark.parametrize(
    ("summary", "found"),
    [
        ("Israel and Hamas agreed a deal.", True),
        ("Both sides agreed on the first phase.", True),
        ("They agreed to a ceasefire deal.", True),  # three words between
        ("They agreed that talks would go on, and a deal is far off.", False),
    ],
)
def test_near_asks_for_the_words_within_so_many_words(
    tmp_path: Path, summary: str, found: bool
) -> None:
    """With ``near: 3`` the words stand at most three words apart, not anywhere in a sentence."""
    assert (_types(_near_pack(tmp_path, 3), summary) == {"agreed"}) is found


def test_ordered_near_wants_the_other_words_after_the_anchor(tmp_path: Path) -> None:
    """``ordered`` keeps "agreed a deal" and drops "a deal Hamas agreed" read backwards."""
    assert _types(_near_pack(tmp_path, 3, ordered=True), "Hamas agreed a deal.") == {"agreed"}
    assert _types(_near_pack(tmp_path, 3, ordered=True), "The deal, Hamas agreed.") == set()
    assert _types(_near_pack(tmp_path, 3), "The deal, Hamas agreed.") == {"agreed"}


def test_near_applies_to_sentence_rules_only(tmp_path: Path) -> None:
    """A pack asking ``near`` of an item rule is refused with its key path."""
    path = tmp_path / "bad.yaml"
    path.write_text(
        "name: bad\nversion: '1'\ndescription: x\nterms: {a: [x]}\n"
        "relevance: {rules: [{all: [a], scope: item, near: 2, score: 0.9}]}\n"
        "events: {e: {description: d, severity: low, rules: [{all: [a]}]}}\n"
    )
    with pytest.raises(PackError, match=r"relevance\.rules\.0.*near applies to sentence rules"):
        load_pack(str(path))


def _cancel_pack(tmp_path: Path) -> Classifier:
    return _pack(
        tmp_path,
        'verb: ["extend~", "agree~"], deal: [truce, ceasefire], to: [to], '
        "head: [proposal, talks], neg: [not]",
        "agreed: {description: d, severity: low, "
        "rules: [{all: [verb, deal], near: 3, ordered: true}], "
        "cancel: [neg], cancel_before: [to], cancel_after: [head]}",
    )


@pytest.mark.parametrize(
    ("summary", "found"),
    [
        ("Hamas agreed to extend the truce.", True),  # "agreed" anchors it
        ("Hamas extended the truce by a day.", True),
        ("Hamas rejected a proposal to extend the truce.", False),  # "to" right before
        ("Hamas agreed to a ceasefire proposal.", False),  # "ceasefire" modifies "proposal"
        ("Hamas agreed to hold ceasefire talks.", False),
        ("Hamas has not agreed to a truce.", False),  # the event's own cancel
    ],
)
def test_cancels_right_before_the_anchor_and_right_after_a_word(
    tmp_path: Path, summary: str, found: bool
) -> None:
    """``cancel_before`` cancels the anchor alone; ``cancel_after`` a word modifying the next."""
    assert (_types(_cancel_pack(tmp_path), summary) == {"agreed"}) is found


def _stop_pack(tmp_path: Path, stop: bool) -> Classifier:
    stops = ", cancel_stop: [clause]" if stop else ""
    return _pack(
        tmp_path,
        'verb: ["accept~"], offer: [offer], team: [team], neg: [not], clause: [but, while]',
        "accepted: {description: d, severity: low, cancel: [neg], cancel_window: 40"
        + stops
        + ", rules: [{all: [verb, offer], near: 3, ordered: true}, {all: [verb, team]}]}",
    )


@pytest.mark.parametrize(
    ("summary", "stopped", "unstopped"),
    [
        ("Hamas did not attend, but Israel accepted the offer.", True, False),
        ("Egypt has not said while Israel accepted the offer.", True, False),
        ("Israel did not accept the offer.", False, False),  # nothing between
        ("Israel did not accept the offer, but Hamas did.", False, False),  # the stop comes after
        # a sentence rule: each of its words is read on its own
        ("Hamas did not come but Israel accepted the team.", True, False),
    ],
)
def test_a_stop_term_ends_a_cancel_words_reach(
    tmp_path: Path, summary: str, stopped: bool, unstopped: bool
) -> None:
    """A ``cancel_stop`` term between a cancel word and a rule's word is a clause
    boundary: the cancel word no longer reaches the word. Without it, it does."""
    assert (_types(_stop_pack(tmp_path, stop=True), summary) == {"accepted"}) is stopped
    assert (_types(_stop_pack(tmp_path, stop=False), summary) == {"accepted"}) is unstopped


def _apart_pack(tmp_path: Path, apart: bool) -> Classifier:
    aparts = ", apart: [relative]" if apart else ""
    return _pack(
        tmp_path,
        "deal: [truce, deal], began: [began, begins], relative: [which]",
        "began: {description: d, severity: low"
        + aparts
        + ", rules: [{all: [deal, began], near: 4, ordered: true}]}",
    )


@pytest.mark.parametrize(
    ("summary", "kept_apart"),
    [
        ("The truce, which began on January 19, has held.", True),
        ("The deal which began the exchanges is gone.", True),
        ("The truce began on Sunday.", False),  # nothing between
        ("The truce began, which few expected.", False),  # the term comes after both
        ("Which truce began on Sunday?", False),  # the term comes before both
    ],
)
def test_an_apart_term_between_two_words_keeps_them_apart(
    tmp_path: Path, summary: str, kept_apart: bool
) -> None:
    """An ``apart`` term between a near rule's anchor and its other word, such as the
    "which" of a relative clause, keeps the rule from pairing them; elsewhere in the
    sentence, and without ``apart``, it does nothing."""
    assert (_types(_apart_pack(tmp_path, apart=True), summary) == set()) is kept_apart
    assert _types(_apart_pack(tmp_path, apart=False), summary) == {"began"}


def _compound_pack(tmp_path: Path) -> Classifier:
    return _pack(
        tmp_path,
        'verb: ["approve~"], deal: [deal], joined: ["<hyphen>"]',
        "approved: {description: d, severity: low, "
        "rules: [{all: [verb, deal], near: 3, ordered: true}], cancel_before: [joined]}",
    )


@pytest.mark.parametrize(
    ("summary", "found"),
    [
        ("The cabinet approved the deal.", True),
        ("Hamas approved deal, Israel says.", True),
        ("The Hamas-approved deal was rejected.", False),
        ("The Hamas\u2011approved deal was rejected.", False),  # a non-breaking hyphen
        ("Hamas - approved deal, Israel says.", True),  # a dash between spaces joins nothing
        ("The cabinet approved a 60-day deal.", True),  # a hyphen elsewhere cancels nothing
    ],
)
def test_a_hyphen_term_cancels_the_tail_of_a_compound(
    tmp_path: Path, summary: str, found: bool
) -> None:
    """``<hyphen>`` stands for a hyphen joining two words: right before the anchor, it
    cancels it, though normalising made the hyphen a space."""
    assert (_types(_compound_pack(tmp_path), summary) == {"approved"}) is found


@pytest.mark.parametrize("term", ["<number>", "<hyphen>"])
def test_a_special_term_is_a_phrase_of_its_own(tmp_path: Path, term: str) -> None:
    """A special term inside a longer phrase is refused: it would never match."""
    path = tmp_path / "bad.yaml"
    path.write_text(
        "name: bad\nversion: '1'\ndescription: x\n"
        f"terms: {{a: [x], b: ['{term} deal']}}\n"
        "relevance: {rules: [{all: [a], score: 0.9}]}\n"
        "events: {e: {description: d, severity: low, rules: [{all: [b]}]}}\n"
    )
    with pytest.raises(PackError, match=f"{term} is a phrase of its own"):
        load_pack(str(path))


def _claim_pack(tmp_path: Path) -> Classifier:
    return _pack(
        tmp_path,
        'recall: ["recall~"], arrive: ["arrive~"], team: [team]',
        "recalled: {description: d, severity: high, rules: [{all: [recall, team], near: 3}], "
        "supersedes: [arrived]}, "
        "arrived: {description: d, severity: low, rules: [{all: [team, arrive], near: 3}]}",
    )


def test_the_titles_claim_outranks_the_context_of_the_summary(tmp_path: Path) -> None:
    """A recall in the title drops an arrival that only the summary tells."""
    c = _claim_pack(tmp_path)
    summary = "The team had arrived on Monday."
    assert _types(c, summary, title="Israel recalls its team") == {"recalled"}
    assert _types(c, summary, title="Talks in Doha") == {"arrived"}
    assert _types(c, summary, title="Team arrived, then Israel recalls the team") == {
        "recalled",
        "arrived",
    }


def test_supersedes_names_known_event_types(tmp_path: Path) -> None:
    """A pack superseding an unknown event type is refused with its key path."""
    path = tmp_path / "bad.yaml"
    path.write_text(
        "name: bad\nversion: '1'\ndescription: x\nterms: {a: [x]}\n"
        "relevance: {rules: [{all: [a], score: 0.9}]}\n"
        "events: {e: {description: d, severity: low, rules: [{all: [a]}], supersedes: [nope]}}\n"
    )
    with pytest.raises(PackError, match=r"events\.e\.supersedes: unknown event type 'nope'"):
        load_pack(str(path))


TENS = ["twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]


@pytest.mark.parametrize("word", TENS)
def test_every_tens_word_is_a_number(tmp_path: Path, word: str) -> None:
    """Each tens word from twenty to ninety hits ``<number>`` and reads as its value."""
    assert NUMBER_WORDS[word] == 10 * (TENS.index(word) + 2)
    path = tmp_path / "n.yaml"
    words = "|".join(TENS)
    path.write_text(
        "name: n\nversion: '1'\ndescription: x\n"
        "terms: {ship: [ships], count: ['<number>']}\n"
        "relevance: {rules: [{all: [ship], score: 0.9}]}\n"
        "events: {counted: {description: d, severity: low, rules: [{all: [count, ship]}]}}\n"
        f"figures: {{ships: {{pattern: '(?P<value>\\d+|{words})\\s+ships', unit: ships}}}}\n"
    )
    result = Classifier(load_pack(str(path))).classify("", f"Some {word} ships waited.")
    assert result.event_types == ("counted",)
    figures = [(e.name, e.value) for e in result.entities if e.kind == "figure"]
    assert figures == [("ships", float(NUMBER_WORDS[word]))]


def _wide_pack(tmp_path: Path) -> Classifier:
    """130 term groups: ``g<i>`` holds the word ``w<i>`` and is the pack's group ``i``
    (``any`` is group 0), so the rules below sit at the edges of the engine's words."""
    terms = ", ".join(f"g{i}: [w{i}]" for i in range(1, 130))
    return _pack(
        tmp_path,
        terms,
        "low: {description: d, severity: low, rules: [{all: [g1, g61]}]}, "
        "across: {description: d, severity: low, rules: [{all: [g61, g62], near: 1}], "
        "cancel: [g63]}, "
        "beyond: {description: d, severity: low, rules: [{all: [g124, g129]}], cancel: [g128]}",
    )


@pytest.mark.parametrize(
    ("title", "summary", "found"),
    [
        ("The news", "Then w1 and w61.", {"low"}),
        ("w61 in the title", "And w1 in the summary.", set()),  # a sentence rule
        ("The news", "Then w61 w62.", {"across"}),
        ("The news", "Then w63 w61 w62.", set()),
        ("The news", "Then w124 and w129.", {"beyond"}),
        ("The news", "Then w128 w124 and w129.", set()),
        ("The news", "Then w62 and w124. Then w1 and w129. Then w60 w63.", set()),
        ("The news", "w1 w61 w62. And w124 w129.", {"low", "across", "beyond"}),
    ],
)
def test_a_pack_of_more_groups_than_a_machine_word_holds(
    tmp_path: Path, title: str, summary: str, found: set[str]
) -> None:
    """Rules whose groups straddle the engine's two words, or lie past both, match
    and cancel like any other, and a group never stands in for another."""
    assert _types(_wide_pack(tmp_path), summary, title) == found


def _bits(groups: _Groups) -> int:
    return groups.low | groups.high << 62


@given(st.integers(0, 2**200 - 1), st.integers(0, 2**200 - 1))
def test_sets_of_groups_behave_as_the_masks_they_split(a: int, b: int) -> None:
    """Split into two words, two masks of any width compare and combine as the
    integers do, across the words' boundary and past 124 groups."""
    x, y = _Groups.of(a), _Groups.of(b)
    assert _bits(x) == a
    assert x.within(y) is (a & b == a)
    assert x.meets(y) is bool(a & b)
    assert x.beyond(y) is bool(a & ~b)
    assert x.empty() is (a == 0)
    assert _bits(x.common(y)) == a & b
    assert _bits(x.union(y)) == a | b
