"""The classifier engine and the Doha talks pack."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from dohawatch.classifier import engine, scan
from dohawatch.classifier.engine import Classification, Classifier
from dohawatch.classifier.evaluate import Labelled, Report, evaluate_parts, read_holdout, score
from dohawatch.classifier.pack import expand, load_pack
from dohawatch.classifier.service import classified_json, classify_item
from dohawatch.shared.codec import encode, encode_classified
from dohawatch.shared.errors import PackError
from dohawatch.shared.events import NewsItem

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "data" / "dev-corpus.jsonl"
HOLDOUT = CORPUS.with_suffix(".holdout")


def events(c: Classifier, title: str, summary: str = "") -> set[str]:
    return {e.type for e in c.classify(title, summary).events}


def _corpus_parts(doha: Classifier) -> dict[str, Report]:
    items = [Labelled.from_json(json.loads(line)) for line in CORPUS.read_text().splitlines()]
    return evaluate_parts(doha, items, read_holdout(HOLDOUT))


def test_tuned_stories_meet_quality_targets(doha: Classifier) -> None:
    """On the stories the pack was tuned on: relevance F1 ≥ 0.95, event micro-F1 ≥ 0.85,
    every type ≥ 0.80 and agreement_reached recall ≥ 0.90."""
    tuned = _corpus_parts(doha)["tuned"]
    report = "\n".join(tuned.lines())
    assert tuned.relevance.f1 >= 0.95, report
    assert tuned.micro.f1 >= 0.85, report
    assert min(s.f1 for s in tuned.events.values()) >= 0.80, report
    assert tuned.events["agreement_reached"].recall >= 0.90, report


def test_held_out_stories_stay_above_their_floor(doha: Classifier) -> None:
    """The held-out stories keep relevance F1 ≥ 0.97 and event micro-F1 ≥ 0.68.

    A floor against regressions, not a target: neither the rules nor the learned
    model ever see these stories, so the failure message shows the scores and
    not the items.
    """
    held_out = _corpus_parts(doha)["held-out"]
    assert held_out.items >= 50
    assert held_out.relevance.f1 >= 0.97, "\n".join(held_out.table())
    assert held_out.micro.f1 >= 0.68, "\n".join(held_out.table())


def test_held_out_stories_are_never_split() -> None:
    """Every held-out story exists in the corpus, and the parts share no story."""
    items = [Labelled.from_json(json.loads(line)) for line in CORPUS.read_text().splitlines()]
    held_out = read_holdout(HOLDOUT)
    assert held_out <= {i.story for i in items}
    parts = evaluate_parts(Classifier(load_pack("doha-talks")), items, held_out)
    tuned_stories = {i.story for i in items if i.story not in held_out}
    assert parts["tuned"].items + parts["held-out"].items == parts["all"].items == len(items)
    assert not tuned_stories & held_out


def _scored(outcomes: list[tuple[str, bool]]) -> Report:
    """A report of one item per ``(story, right)``: each labelled a deal, and
    tagged one when right, a stall when not."""
    results = []
    for n, (story, right) in enumerate(outcomes):
        item = Labelled(f"i{n}", "t", "s", True, frozenset({"deal"}), story)
        found = ("deal",) if right else ("stall",)
        results.append((item, Classification(True, 0.9, found, (), ())))
    return score(results, ["deal", "stall"])


def test_a_perfect_part_has_an_interval_of_one_point() -> None:
    """Every redraw of stories that are all right scores 1.0."""
    assert _scored([(f"s{n}", True) for n in range(8)]).interval() == (1.0, 1.0)


def test_errors_in_one_story_of_ten_leave_the_interval_reaching_one() -> None:
    """Items of one story are drawn together: with every error in one story of
    ten, a third of the redraws miss it and score 1.0, so the interval spans
    from below the point estimate up to 1.0, the same from the same seed."""
    outcomes = [(f"s{n}", True) for n in range(9) for _ in range(3)]
    outcomes += [("bad", False)] * 3
    report = _scored(outcomes)
    low, high = report.interval()
    assert len(report.stories) == 10
    assert low < report.micro.f1 < high == 1.0
    assert report.interval() == (low, high)


def test_the_interval_of_items_without_a_story_draws_each_alone() -> None:
    """An item with no story is a story of its own, and relevance has its own interval."""
    report = _scored([("", True), ("", False), ("", True), ("", True)])
    assert len(report.stories) == 4
    assert report.interval(events=False) == (1.0, 1.0)  # every item was found relevant
    low, high = report.interval()
    assert low < high


@pytest.mark.parametrize(
    "title",
    [
        "Qatar Airways signs record order for Boeing jets in Doha",
        "Israel-Hezbollah ceasefire takes effect in Lebanon",
        "Russia and Ukraine agree prisoner swap at Istanbul talks",
    ],
)
def test_shared_vocabulary_alone_is_not_relevant(doha: Classifier, title: str) -> None:
    """Doha, ceasefire or talks without the Gaza negotiations are not relevant."""
    assert not doha.classify(title, "").relevant


@pytest.mark.parametrize(
    ("other", "talks"),
    [
        (
            "Delegations of Hamas and Fatah met in Cairo for reconciliation talks.",
            "Delegations of Hamas and Israel met in Cairo for ceasefire talks.",
        ),
        (
            "At the Doha Forum, Qatar said its mediation on Gaza goes on.",
            "At the Doha Forum, Qatar said the Gaza talks with Hamas have stalled.",
        ),
        (
            "The Security Council backed a plan for a ceasefire between Israel and Hezbollah.",
            "The Security Council backed a plan for a ceasefire between Israel and Hamas.",
        ),
        (
            "Islamic Jihad released a video of a hostage pleading for his release.",
            "Families released a video of a hostage, pleading for a deal to free him.",
        ),
    ],
    ids=["reconciliation talks", "a forum speech", "a ceasefire resolution", "a hostage video"],
)
def test_other_talks_and_passing_mentions_are_not_relevant(
    doha: Classifier, other: str, talks: str
) -> None:
    """Other Palestinian talks, a forum that mentions the mediation in passing or
    another war's ceasefire plan are not the negotiations; the same setting
    carrying their news is."""
    assert not doha.classify("", other).relevant
    assert doha.classify("", talks).relevant


@pytest.mark.parametrize(
    "title",
    [
        "Three Israeli hostages freed in exchange for 90 Palestinian prisoners",
        "Israel frees 200 Palestinian prisoners under Gaza truce",
        "Red Cross receives four hostages in Gaza handover",
        "Israel releases 1,968 Palestinians as hostages return",
    ],
)
def test_releases_under_the_deal_are_relevant_on_their_own(doha: Classifier, title: str) -> None:
    """A swap carried out is news of the deal even when no talks are named."""
    result = doha.classify(title, "")
    assert result.relevant
    assert "hostage_prisoner_terms" in result.event_types


def test_withdrawal_is_tagged_with_evidence_spans(doha: Classifier) -> None:
    """A recall is delegation_withdrawn, and its evidence points at the words."""
    title = "Israel recalls negotiating team from Doha after Hamas reply"
    result = doha.classify(title, "The talks on a Gaza ceasefire and hostage deal were paused.")
    withdrawn = next(e for e in result.events if e.type == "delegation_withdrawn")
    assert result.relevant
    for span in withdrawn.evidence:
        assert title[span.start : span.end] == span.text
    assert {s.text.lower() for s in withdrawn.evidence} >= {"recalls"}


@pytest.mark.parametrize(
    "summary",
    [
        "Hamas officials denied that Israel recalled its negotiating team from Doha.",
        "Israel could withdraw its negotiating team from Doha if Hamas rejects the proposal.",
        "Israel threatened to pull its team out of the Gaza ceasefire talks in Doha.",
    ],
)
def test_negation_and_modality_cancel_a_withdrawal(doha: Classifier, summary: str) -> None:
    """A denied, hypothetical or threatened recall is not a withdrawal."""
    assert "delegation_withdrawn" not in events(doha, "Gaza hostage talks in Doha", summary)


@pytest.mark.parametrize(
    ("summary", "event_type"),
    [
        ("A Qatari official said the talks have not collapsed.", "talks_stalled"),
        ("Hamas denied reports that the negotiations had stalled.", "talks_stalled"),
        ("Netanyahu refused to send the team back to Doha.", "delegation_dispatched"),
        ("Mediators hope to reach an agreement before Ramadan.", "agreement_reached"),
        ("Israel declined to recall its negotiating team from Doha.", "delegation_withdrawn"),
        ("Mediators are awaiting Israel's reply to the proposal.", "proposal_or_response"),
    ],
)
def test_denials_refusals_and_aims_are_not_events(
    doha: Classifier, summary: str, event_type: str
) -> None:
    """A denied stall, a refused dispatch or recall, a hoped-for deal, an awaited
    reply: none happened."""
    assert event_type not in events(doha, "Gaza hostage talks in Doha", summary)


@pytest.mark.parametrize(
    ("summary", "event_type"),
    [
        ("Israel halted aid to Gaza to press Hamas on the truce extension.", "talks_stalled"),
        (
            "Protesters marched after troops recovered the bodies of hostages.",
            "hostage_prisoner_terms",
        ),
        ("A deal to free the 101 hostages still held is the goal.", "hostage_prisoner_terms"),
    ],
)
def test_the_same_words_about_something_else_are_not_events(
    doha: Classifier, summary: str, event_type: str
) -> None:
    """Aid halted is not talks halted; bodies recovered in an operation and the
    count of hostages held are not release terms."""
    result = doha.classify("Gaza hostage talks in Doha", summary)
    assert result.relevant
    assert event_type not in result.event_types


def test_a_protest_after_bodies_are_recovered_is_pressure(doha: Classifier) -> None:
    """War news weighs against relevance, unless a protest over the deal carries it."""
    result = doha.classify(
        "Protesters clash with police as families demand deal",
        "Protesters calling for a deal to free hostages blocked roads in Tel Aviv,"
        " after the army recovered six bodies of hostages.",
    )
    assert result.relevant
    assert result.event_types == ("public_pressure",)


@pytest.mark.parametrize(
    "summary",
    [
        "A Qatari official said the talks have not collapsed but gaps remain.",
        "Israel will not send a delegation to Cairo until Hamas moves.",
        "Talks failed to reach a deal on the prisoner list.",
    ],
)
def test_a_denied_collapse_that_admits_gaps_is_a_stall(doha: Classifier, summary: str) -> None:
    """Negation cancels the word it stands before, not the setback admitted after it."""
    assert "talks_stalled" in events(doha, "Gaza hostage talks in Doha", summary)


@pytest.mark.parametrize(
    ("summary", "event_type"),
    [
        ("Israel's negotiating team could be recalled from Doha.", "delegation_withdrawn"),
        ("Officials warned the Gaza ceasefire talks in Doha might collapse.", "talks_stalled"),
        ("A new Hamas response is expected to be delivered to mediators.", "proposal_or_response"),
    ],
)
def test_a_modal_after_the_noun_cancels_the_verb(
    doha: Classifier, summary: str, event_type: str
) -> None:
    """A rule anchored on the noun still sees the modal standing before its verb."""
    assert event_type not in events(doha, "Gaza hostage talks in Doha", summary)


@pytest.mark.parametrize(
    ("named", "tagged", "event_type"),
    [
        (
            "Qatar paused its mediation on a Gaza ceasefire and hostage release.",
            "Hamas would release 33 hostages in the first phase of the Gaza ceasefire.",
            "hostage_prisoner_terms",
        ),
        (
            "Envoys in Doha pressed on with talks on freeing the 101 hostages held in Gaza.",
            "The hostages were freed on Sunday under the Gaza ceasefire deal.",
            "hostage_prisoner_terms",
        ),
        (
            "Families rallied ahead of the Mossad chief's meeting with mediators in Doha.",
            "The Mossad chief held talks with mediators in Doha on the Gaza deal.",
            "delegation_dispatched",
        ),
    ],
    ids=["release as the subject", "talks on freeing", "a meeting ahead"],
)
def test_what_the_talks_are_about_is_not_what_happened(
    doha: Classifier, named: str, tagged: str, event_type: str
) -> None:
    """Hostage release named as the talks' subject is no term, a meeting still
    ahead is no round begun; the same words reporting the fact are tagged."""
    title = "Gaza hostage talks in Doha"
    assert event_type not in events(doha, title, named)
    assert event_type in events(doha, title, tagged)


@pytest.mark.parametrize(
    ("summary", "event_type"),
    [
        ("Netanyahu called back the Israeli negotiating team from Doha.", "delegation_withdrawn"),
        ("The Israeli delegation departed for Doha on Sunday.", "delegation_dispatched"),
        ("Talks with the mediators were under way in Cairo.", "delegation_dispatched"),
        ("Mediators relayed the Hamas response to Israel.", "proposal_or_response"),
        ("Israel turned down the Egyptian initiative.", "proposal_or_response"),
        ("The Gaza ceasefire talks have ground to a halt.", "talks_stalled"),
        ("Negotiations are bogged down over the prisoner list.", "talks_stalled"),
        ("Israel and Hamas clinched a ceasefire deal in Doha.", "agreement_reached"),
        ("The Gaza truce went into effect at 8:30 a.m.", "agreement_reached"),
        ("Israel and Hamas agreed to the first phase of the plan.", "agreement_reached"),
        ("The swap of hostages for prisoners starts on Sunday.", "hostage_prisoner_terms"),
        (
            "The plan sees a truce and the release of half of the hostages.",
            "hostage_prisoner_terms",
        ),
        ("Hamas said it was studying a new Israeli proposal.", "proposal_or_response"),
        ("Egypt proposed a two-day ceasefire in Gaza.", "proposal_or_response"),
        ("Netanyahu is obstructing an agreement, Hamas said.", "talks_stalled"),
        ("The corridor has held up a ceasefire deal with Hamas.", "talks_stalled"),
        ("US envoys held direct talks with Hamas in Doha.", "delegation_dispatched"),
        ("The hostage handover was delayed, Israel said.", "talks_stalled"),
        ("Israeli troops redeployed to the yellow line.", "military_withdrawal_terms"),
        ("Thousands rallied in Tel Aviv for a deal to free the hostages.", "public_pressure"),
        ("Hamas walks out of Cairo talks over Israeli demands.", "delegation_withdrawn"),
        ("Netanyahu orders delegation home from Doha.", "delegation_withdrawn"),
        ("Israel and Hamas agree Gaza ceasefire deal.", "agreement_reached"),
        ("Israeli cabinet ratifies Gaza hostage deal.", "agreement_reached"),
        ("Red Cross receives four hostages in Gaza handover.", "hostage_prisoner_terms"),
        ("Hostages' relatives block Tel Aviv highway to demand a deal.", "public_pressure"),
        ("Talks deadlocked over Israeli troop presence in Rafah.", "military_withdrawal_terms"),
    ],
)
def test_each_event_type_reads_the_common_wordings(
    doha: Classifier, summary: str, event_type: str
) -> None:
    """Wire-copy wordings beyond the dev corpus's own tag each event type."""
    assert event_type in events(doha, "Gaza hostage talks in Doha", summary)


def test_entities_and_figures_are_normalised(doha: Classifier) -> None:
    """Aliases map to one canonical name and figures carry value and unit."""
    result = doha.classify(
        "Al-Hayyah says Hamas wants 50 prisoners for every hostage",
        "Israel insists on the Philadelphia corridor and a 60-day truce in Gaza talks.",
    )
    names = {e.name for e in result.entities}
    assert {"Khalil al-Hayya", "Philadelphi Corridor", "Hamas", "Israel"} <= names
    figures = {(e.name, e.value, e.unit) for e in result.entities if e.kind == "figure"}
    assert ("prisoner_ratio", 50.0, "prisoners per hostage") in figures
    assert ("truce_length", 60.0, "days") in figures


@pytest.mark.parametrize(
    ("text", "figure"),
    [
        ("Israel would free 20 for every hostage.", ("prisoner_ratio", 20.0)),
        ("It asks 50 prisoners for each female soldier.", ("prisoner_ratio", 50.0)),
        ("Troops would stay 700–1,200 metres from the border.", ("distance", 700.0)),
        ("A buffer zone 1.5 km wide.", ("distance", 1500.0)),
        ("A 700-metre buffer zone.", ("distance", 700.0)),
        ("A six-week ceasefire.", ("truce_length", 42.0)),
        ("A six\u2011week truce.", ("truce_length", 42.0)),
        ("A two-month truce extension.", ("truce_length", 60.0)),
        ("Release of 1,000 Palestinian prisoners.", ("prisoners", 1000.0)),
    ],
)
def test_figures_are_read_in_their_unit(
    doha: Classifier, text: str, figure: tuple[str, float]
) -> None:
    """Ratios with or without "prisoners", kilometres as metres, weeks and number
    words as days; a ratio is not also read as a prisoner count."""
    found = [(e.name, e.value) for e in doha.classify("", text).entities if e.kind == "figure"]
    assert found == [figure]


def test_overlapping_aliases_are_one_mention_with_the_longest(doha: Classifier) -> None:
    """ "Benjamin Netanyahu" is one mention, not that and "Netanyahu" inside it;
    a later "Netanyahu" is a second one."""
    title = "Benjamin Netanyahu and Ismail Haniyah"
    summary = "The Gaza Strip talks stalled, Netanyahu said."
    result = doha.classify(title, summary)
    spans = {e.name: [(s.field, s.text) for s in e.evidence] for e in result.entities}
    assert spans["Benjamin Netanyahu"] == [
        ("title", "Benjamin Netanyahu"),
        ("summary", "Netanyahu"),
    ]
    assert spans["Ismail Haniyeh"] == [("title", "Ismail Haniyah")]
    assert spans["Gaza"] == [("summary", "Gaza Strip")]


def test_story_key_joins_outlets_and_separates_developments(doha: Classifier) -> None:
    """Two outlets on one recall share a key; a recall and a proposal do not."""

    def item(title: str, day: int) -> NewsItem:
        when = datetime(2025, 7, day, 12, tzinfo=UTC)
        return NewsItem(
            item_id=title,
            feed_url="https://f",
            source="s",
            url="https://u",
            title=title,
            summary="",
            published_at=when,
            fetched_at=when,
        )

    a = item("US recalls its negotiating team from Gaza ceasefire talks in Doha", 24)
    b = item("Israel pulls negotiators out of Gaza hostage talks in Doha", 24)
    c = item("Hamas delivers its response to the Gaza ceasefire proposal", 24)
    d = item("Israel recalls negotiating team from Gaza ceasefire talks in Cairo", 26)
    keys = [doha.story_key(x, doha.classify(x.title, x.summary)) for x in (a, b, c, d)]
    assert keys[0] == keys[1]
    assert len({keys[0], keys[2], keys[3]}) == 3


@pytest.fixture(scope="module")
def strike() -> Classifier:
    return Classifier(load_pack("port-strike"))


@pytest.mark.parametrize(
    ("title", "summary", "expected"),
    [
        (
            "Dockworkers walk off the job at East Coast ports",
            "The union said 45,000 longshoremen began the strike after talks broke down.",
            {"strike_started"},
        ),
        (
            "Union and port employers reach a tentative agreement, strike suspended",
            "The deal includes a 62% wage increase over six years; workers return to work today.",
            {"agreement_reached", "strike_ended"},
        ),
        (
            "Longshore union denied it had called a strike at the ports",
            "Bargaining with USMX could resume next week.",
            set(),
        ),
    ],
)
def test_a_second_bundled_pack_runs_on_the_same_engine(
    strike: Classifier, title: str, summary: str, expected: set[str]
) -> None:
    """Another story is another YAML pack: relevance, events, cancels and figures."""
    result = strike.classify(title, summary)
    assert result.relevant
    assert set(result.event_types) == expected
    assert strike.version.startswith("port-strike@")


def test_each_pack_stays_on_its_own_story(doha: Classifier, strike: Classifier) -> None:
    """The Doha pack ignores a port strike, and the strike pack ignores the Doha talks."""
    port = ("Dockworkers strike shuts 36 ports", "The ILA union began its walkout at 12:01 a.m.")
    talks = ("Israel recalls negotiating team from Doha", "Hamas rejected the ceasefire proposal.")
    assert strike.classify(*port).relevant
    assert not doha.classify(*port).relevant
    assert doha.classify(*talks).relevant
    assert not strike.classify(*talks).relevant
    figures = {(e.name, e.value) for e in strike.classify(*port).entities if e.kind == "figure"}
    assert ("ports", 36.0) in figures


def test_an_invalid_pack_names_the_bad_key(tmp_path: Path) -> None:
    """A rule naming an unknown term group fails at load with its key path."""
    pack = tmp_path / "bad.yaml"
    pack.write_text(
        "name: bad\nversion: '1'\ndescription: x\nterms: {a: [x]}\n"
        "relevance: {rules: [{all: [a], score: 0.9}]}\n"
        "events: {e: {description: d, severity: low, rules: [{all: [nope]}]}}\n"
    )
    with pytest.raises(PackError, match=r"events\.e\.rules\[0\]: unknown term group 'nope'"):
        load_pack(str(pack))


def _counting_pack(tmp_path: Path, count_terms: str) -> Classifier:
    pack = tmp_path / "count.yaml"
    pack.write_text(
        "name: count\nversion: '1'\ndescription: x\n"
        f"terms: {{ship: [ship, ships], count: [{count_terms}]}}\n"
        "relevance: {rules: [{all: [ship], score: 0.9}]}\n"
        "events: {counted: {description: d, severity: low, rules: [{all: [ship, count]}]}}\n"
    )
    return Classifier(load_pack(str(pack)))


@pytest.mark.parametrize(
    ("summary", "evidence"),
    [
        ("Port officials said 33 ships waited.", "33"),
        ("The queue grew to 1,200 ships, then 40.", "1,200"),
        ("Ships: 12,", "12"),
        ("Ships at anchor, a ratio of 2.5.", "2.5"),
    ],
)
def test_a_number_term_matches_every_number(tmp_path: Path, summary: str, evidence: str) -> None:
    """``<number>`` in a term group is hit by each number, its span the digits."""
    counting = _counting_pack(tmp_path, '"<number>"')
    result = counting.classify("", summary)
    assert result.event_types == ("counted",)
    assert evidence in {s.text for s in result.events[0].evidence}
    assert all(summary[s.start : s.end] == s.text for s in result.events[0].evidence)


def test_a_number_term_inside_a_phrase_is_refused(tmp_path: Path) -> None:
    """``<number>`` is a phrase alone; inside one it would match the word "number"."""
    with pytest.raises(PackError, match=r"terms\.count: '<number> ships'"):
        _counting_pack(tmp_path, '"<number> ships"')


def test_a_number_term_is_not_the_word_number(tmp_path: Path) -> None:
    """Without ``<number>`` digits match nothing; with it, the word "number" no more."""
    assert not _counting_pack(tmp_path, "dozens").classify("", "33 ships").event_types
    assert not _counting_pack(tmp_path, '"<number>"').classify("", "A number of ships").event_types


def _figure_pack(tmp_path: Path, figures: str) -> Path:
    pack = tmp_path / "figures.yaml"
    pack.write_text(
        "name: figures\nversion: '1'\ndescription: x\nterms: {a: [x]}\n"
        "relevance: {rules: [{all: [a], score: 0.9}]}\n"
        "events: {e: {description: d, severity: low, rules: [{all: [a]}]}}\n"
        f"figures: {{{figures}}}\n"
    )
    return pack


def test_one_figure_per_number_the_first_in_pack_order(tmp_path: Path) -> None:
    """Two figures that read the same number: the pack's first one takes it."""
    pack = _figure_pack(
        tmp_path,
        "ships: {pattern: '(?P<value>\\d+) ships', unit: ships},"
        " any: {pattern: '(?P<value>\\d+)', unit: things}",
    )
    found = Classifier(load_pack(str(pack))).classify("", "Now 40 ships and 7 cranes.")
    assert [(e.name, e.value) for e in found.entities if e.kind == "figure"] == [
        ("ships", 40.0),
        ("any", 7.0),
    ]


def test_figures_that_cannot_share_one_regex_are_refused(tmp_path: Path) -> None:
    """The figures are matched as one regex, so a global flag inside one fails at load."""
    pack = _figure_pack(tmp_path, "a: {pattern: '(?i)(?P<value>\\d+) x', unit: x}")
    with pytest.raises(PackError, match=r"figures: the patterns do not combine"):
        load_pack(str(pack))


def test_a_figure_scale_needs_a_unit_group(tmp_path: Path) -> None:
    """A scale without a (?P<unit>...) group to choose its factor fails at load."""
    pack = _figure_pack(
        tmp_path, "km: {pattern: '(?P<value>\\d+) km', unit: metres, scale: {km: 1000}}"
    )
    with pytest.raises(PackError, match=r"figures\.km: .*scale needs a \(\?P<unit>"):
        load_pack(str(pack))


def test_brace_expansion() -> None:
    """{a,b} alternatives expand, nested in sequence."""
    assert expand("recall{,s,ed} {team,teams}") == [
        "recall team",
        "recall teams",
        "recalls team",
        "recalls teams",
        "recalled team",
        "recalled teams",
    ]


def _corpus_items() -> list[NewsItem]:
    when = datetime(2025, 7, 24, 9, 30, tzinfo=UTC)
    rows = [json.loads(line) for line in CORPUS.read_text().splitlines()]
    items = [
        NewsItem(
            item_id=f"it1-{i}",
            feed_url="https://f.example/feed",
            source="s",
            url=f"https://f.example/{i}",
            title=row["title"],
            summary=row["summary"],
            published_at=when if i % 2 else None,
            fetched_at=when,
        )
        for i, row in enumerate(rows)
    ]
    # The same items with typographic quotes and dashes take the non-ASCII path.
    return items + [
        x.model_copy(update={"summary": x.summary.replace("'", "’").replace(" - ", " – ")})
        for x in items[:60]
    ]


def test_the_classifier_writes_the_contract_json_byte_for_byte(doha: Classifier) -> None:
    """The service's fast JSON equals the validated model's, message and headers alike."""
    for item in _corpus_items():
        model = classify_item(doha, item)
        result = doha.classify(item.title, item.summary)
        body = classified_json(doha, item, result, model.story_key)
        assert body == model.model_dump_json().encode()
        assert encode_classified(item, model.story_key, body, "t") == encode(model, "t")


COMPILED_TREE = ROOT / ".cache" / "compiled"
ENGINE_SOURCES = ("engine.py", "scan.py", "figures.py", "stems.py")  # setup.py's COMPILED, in order
# Run against the compiled tree: the engine's findings on every corpus item.
COMPILED_RUN = """
import json, sys
from dohawatch.classifier import engine
from dohawatch.classifier.pack import load_pack
classifier = engine.Classifier(load_pack("doha-talks"))
found = [
    [r.relevance, r.found_events, r.found_entities, r.relevance_spans]
    for r in (classifier.classify(t, s) for t, s in json.load(sys.stdin))
]
print(json.dumps({"file": engine.__file__, "from": engine.COMPILED_FROM, "found": found}))
"""


@pytest.mark.skipif(
    not (COMPILED_TREE / ".built").exists(),
    reason="the compiled engine is built by `make test` (make compiled)",
)
def test_the_compiled_engine_is_built_from_the_sources_on_disk_and_agrees_with_them(
    doha: Classifier,
) -> None:
    """The engine mypyc compiled (``make compiled``) was compiled from the sources
    as they are now, and finds what those sources find, item for item."""
    items = _corpus_items()
    run = subprocess.run(  # noqa: S603 - this interpreter, a fixed script
        [sys.executable, "-c", COMPILED_RUN],
        input=json.dumps([[i.title, i.summary] for i in items]),
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(COMPILED_TREE)},
        timeout=300,
    )
    compiled = json.loads(run.stdout)
    assert compiled["file"].endswith(".so"), "the compiled tree holds no compiled engine"
    digest = hashlib.sha256()
    for name in ENGINE_SOURCES:
        digest.update((Path(engine.__file__).parent / name).read_bytes())
    assert compiled["from"] == digest.hexdigest(), "the compiled engine is older than its sources"
    assert engine.__file__.endswith(".py"), "the installed package runs the sources on disk"
    ours = [
        [r.relevance, r.found_events, r.found_entities, r.relevance_spans]
        for r in (doha.classify(i.title, i.summary) for i in items)
    ]
    assert compiled["found"] == json.loads(json.dumps(ours))


@given(st.text(alphabet=" \t\n.!?,'\"()aZ09-_", max_size=60))
@example("a-b, a-0, 0-b, a_-b, -a-")
def test_ascii_scanners_read_sentences_numbers_and_hyphens_as_the_regexes_do(text: str) -> None:
    """The byte scanners of the ASCII path agree with the regexes of the general one."""
    raw = text.encode("ascii")
    padded = b" " + raw.translate(scan.ASCII_WORDS) + b" "
    assert scan.ascii_hyphen_hits(raw, padded, 7) == scan.hyphen_hits(text, 7)
    classes = raw.translate(scan.ASCII_CLASSES)
    assert scan.ascii_numbers(classes) == [m.start() for m in scan.NUMBER.finditer(text)]
    assert scan.ascii_sentence_starts(classes) == [
        m.end() for m in scan.SENTENCE_END.finditer(text)
    ]


@given(st.text(alphabet="aZé- \u2010\u20110_٣².", max_size=40))
def test_a_joining_hyphen_stands_between_two_letters(text: str) -> None:
    """A hyphen hit is a hyphen (or U+2010, U+2011) with a letter (not a digit, not "_")
    on each side, ending where the second word begins."""

    def letter(i: int) -> bool:
        return 0 <= i < len(text) and text[i].isalnum() and not text[i].isdecimal()

    expected = [
        (7, i, i + 3)
        for i, c in enumerate(text)
        if c in "-\u2010\u2011" and letter(i - 1) and letter(i + 1)
    ]
    assert scan.hyphen_hits(text, 7) == expected
