"""The Doha talks pack on wordings of its own: the critical agreement alert, and
cancels read with word families and proximity."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from dohawatch.classifier.engine import Classifier


def _types(c: Classifier, title: str, summary: str = "") -> set[str]:
    return set(c.classify(title, summary).event_types)


_WORDINGS = yaml.safe_load((Path(__file__).parents[1] / "data" / "doha-wordings.yaml").read_text())
_RAISED = [
    (w["title"], w.get("summary", ""), event)
    for event, wordings in _WORDINGS["raised"].items()
    for w in wordings
]
_TOLD_APART = [
    (w["title"], w.get("summary", ""), event, outcome == "raised")
    for event, outcomes in _WORDINGS["told apart"].items()
    for outcome, wordings in outcomes.items()
    for w in wordings
]


@pytest.mark.parametrize(
    ("title", "summary"),
    [
        # announced by a mediator
        ("Qatar announces Gaza ceasefire deal between Israel and Hamas", ""),
        (
            "Egypt says Israel and Hamas reach truce",
            "Cairo said the hostage deal was reached late on Tuesday.",
        ),
        # approved by a cabinet
        ("Israeli cabinet approves Gaza hostage accord", ""),
        ("Security cabinet ratifies ceasefire with Hamas", ""),
        ("Israel OKs Gaza ceasefire agreement with Hamas", ""),
        ("Israel, Hamas ink Gaza truce", ""),
        ("Israel and Hamas shake on Gaza deal, Trump says", ""),
        ("Gaza talks", "Qatar said the truce with Hamas would start at 7 a.m. on Friday."),
        ("Israeli cabinet backs Gaza ceasefire agreement with Hamas", ""),
        (
            "Gaza talks",
            "Netanyahu's government gave the green light to the hostage deal on Friday.",
        ),
        (
            "Gaza talks",
            "Israel's government voted to endorse the agreement with Hamas early on Saturday.",
        ),
        # signed by leaders
        ("Leaders sign Gaza ceasefire accord at Sharm el-Sheikh summit", ""),
        ("Gaza talks", "Hamas and Israeli envoys signed the agreement in Cairo, mediators said."),
        # taking effect
        ("Gaza truce takes effect as hostages prepare to leave", ""),
        (
            "Gaza hostage talks",
            "The ceasefire between Israel and Hamas went into effect at 8:30 a.m.",
        ),
        ("Gaza talks", "The truce with Hamas comes into force on Sunday, Qatar said."),
        # an extension agreed
        ("Israel and Hamas agree to extend Gaza truce by two days", ""),
        (
            "Gaza hostage talks",
            "Mediators said the truce between Israel and Hamas was extended by 48 hours.",
        ),
        # a phase agreed
        ("Israel and Hamas agree first phase of Gaza deal", ""),
        ("Hamas and Israel sign off on the first stage of the Gaza plan", ""),
        (
            "Gaza talks",
            "Israel and Hamas have agreed on the second phase of the ceasefire, Qatar said.",
        ),
        # both parties agreeing its terms or accepting it
        ("Breakthrough: Israel and Hamas agree terms for hostage swap", ""),
        ("Israel and Hamas finalise Gaza truce terms in Sharm el-Sheikh", ""),
        ("Gaza talks", "Both sides have accepted the agreement, Egypt's foreign ministry said."),
        ("Gaza ceasefire deal done, Trump says, hostages to be freed Monday", ""),
        # struck, clinched, sealed
        ("Negotiators strike a Gaza hostage deal in Doha", ""),
        ("Mediators clinch Israel-Hamas ceasefire deal after marathon talks", ""),
        # the news itself, dated this week
        (
            "Gaza ceasefire deal reached",
            "The ceasefire, agreed on Wednesday, takes effect on Sunday.",
        ),
        (
            "Gaza talks",
            "The ceasefire in Gaza took effect at noon on Friday, the Israeli military said.",
        ),
        # a day named between the verb and the phase
        ("Gaza talks", "Israel and Hamas agreed on Wednesday to the first phase of a deal."),
        # confirmed by a party or a mediator
        ("Hamas says it has accepted Gaza deal; Israel confirms agreement", ""),
        ("Gaza talks", "Egypt confirmed the ceasefire would begin at 8 a.m. on Sunday."),
        # a leader hailing it
        ("Netanyahu hails deal to bring hostages home", ""),
        ("Biden hails Gaza ceasefire deal as hostages prepare to go home", ""),
        # a relative clause after a new deal leaves it a deal
        ("Israel and Hamas reached a deal, which takes effect on Sunday", ""),
        ("Gaza talks", "Qatar announced a truce which begins at 8am on Sunday."),
    ],
)
def test_the_ways_wires_report_a_deal_are_each_an_agreement(
    doha: Classifier, title: str, summary: str
) -> None:
    """A deal announced, approved, signed, in force, extended or agreed by phase is an agreement."""
    assert "agreement_reached" in _types(doha, title, summary)


@pytest.mark.parametrize(
    ("title", "summary"),
    [
        ("Hamas says it agreed to the Egyptian ceasefire proposal", ""),  # a response, no deal
        ("Gaza talks", "Mediators hope to reach a Gaza ceasefire deal with Hamas this week."),
        ("Gaza talks", "Israel rejected a Hamas proposal to extend the truce by a week."),
        ("Gaza talks", "Hamas has not agreed to a ceasefire, its officials in Doha said."),
        ("Gaza talks", "Israel could approve the hostage deal with Hamas if the list arrives."),
        ("Gaza talks", "Washington proposed extending the truce with Hamas through the holiday."),
        ("Gaza talks", "The two sides are close to a ceasefire deal, a Hamas official said."),
        ("Gaza talks", "A ceasefire could take effect as early as Sunday if Hamas signs off."),
        (
            "Gaza talks",
            "Qatar says Israel and Hamas must agree on the deal's second phase by Saturday.",
        ),
        (
            "Gaza talks",
            "The sides have to agree on a ceasefire before the holiday, mediators said.",
        ),
        ("Gaza talks", "Israeli ministers back calls for a ceasefire with Hamas."),
        ("Netanyahu says he will approve a Gaza deal only if all hostages are freed", ""),
        # talks about a deal, and a deal failing
        ("Israel and Hamas agree on extension of Gaza talks in Cairo", ""),
        ("Gaza truce extension talks begin in Cairo", ""),
        ("Gaza ceasefire begins to fray as Israeli strikes resume", ""),
        # terms not yet agreed, a proposal accepted by both
        ("Israel and Hamas fail to agree terms for Gaza truce extension", ""),
        (
            "Gaza talks",
            "Both sides have accepted the ceasefire proposal in principle, a source said.",
        ),
        ("Gaza talks", "Trump said the Gaza deal with Hamas is not done yet."),
        # a letter signed is no deal signed
        ("Israeli reservists sign letter demanding hostage deal", ""),
        # a detail of the deal named as agreed
        (
            "Gaza deal",
            "The army will move back to the lines agreed in the first phase within a day.",
        ),
        ("Israel strikes Gaza despite ceasefire, dozens killed", ""),  # an air strike
        ("Displaced Palestinians begin returning to northern Gaza as truce holds", ""),
        # a deal that is the background of other news
        (
            "Hamas delays return of hostage bodies",
            "Hamas accused Israel of violating the ceasefire that took effect on October 10.",
        ),
        (
            "Israeli strikes kill 20 in Gaza despite truce",
            "It was the deadliest day since the ceasefire between Israel and Hamas took effect.",
        ),
        (
            "Hamas hands over remains of two hostages",
            "The handover is part of the Gaza ceasefire deal agreed with Israel in October.",
        ),
        (
            "Hamas submits reply on second phase",
            "Under the agreement reached in January, the sides were to negotiate phase two.",
        ),
        ("Gaza truce talks collapse", "The truce, agreed in November and extended twice, ended."),
        ("Gaza residents return to rubble a year after the Gaza ceasefire began", ""),
        ("Gaza talks", "Months after the truce took effect, Hamas has yet to return two bodies."),
        # a compound names a deal, approves none
        ("Israel to send team to Cairo despite gaps with Hamas-approved deal", ""),
        ("Gaza talks", "Israel said the Egypt-approved ceasefire outline fell short."),
        # what talks reach
        ("Gaza talks", "Talks on renewing the truce reached an impasse on Saturday."),
        ("Gaza talks", "Negotiations over the Gaza ceasefire reached a stalemate in Cairo."),
        # a deal already made, told in a relative clause or held to
        ("Gaza talks", "The truce, which began on January 19, has largely held."),
        ("Gaza talks", "The ceasefire, which took hold in October, remains fragile."),
        ("Gaza talks", "Hamas said it remained committed to the agreement reached with Israel."),
        ("Gaza talks", "Israel said it would abide by the ceasefire agreed in January."),
        ("Gaza talks", "Biden hailed the January ceasefire deal as a major achievement."),
        ("Gaza talks", "Qatar confirmed that talks on a deal were continuing."),
        ("Gaza talks", "Thousands rallied in Tel Aviv demanding the government sign the deal."),
        # agreement on some points only
        (
            "Gaza talks",
            "Israel and Hamas reached agreement on most points but not on the prisoner list.",
        ),
        ("Gaza talks", "The sides have agreed on several issues, but gaps remain on the maps."),
    ],
)
def test_a_hoped_proposed_denied_or_conditional_deal_is_no_agreement(
    doha: Classifier, title: str, summary: str
) -> None:
    """Aims, proposals, denials and conditions around a deal raise no agreement_reached."""
    assert "agreement_reached" not in _types(doha, title, summary)


def test_a_deal_in_the_title_is_the_claim_over_a_stall_in_the_summary(doha: Classifier) -> None:
    """A reached deal in the title drops the stall that the summary recalls as background."""
    summary = "The talks had stalled for months over the Philadelphi corridor."
    assert _types(doha, "Gaza hostage talks in Doha", summary) >= {"talks_stalled"}
    found = _types(doha, "Israel and Hamas agree Gaza ceasefire deal", summary)
    assert "agreement_reached" in found
    assert "talks_stalled" not in found


@pytest.mark.parametrize(
    ("summary", "event"),
    [
        ("Israel has not recalled its negotiating team from Doha.", "delegation_withdrawn"),
        ("Officials denied reports that Israel was recalling its team.", "delegation_withdrawn"),
        ("Israel could recall its negotiators from Cairo.", "delegation_withdrawn"),
        ("Israel refused to send a new delegation to Cairo on Sunday.", "delegation_dispatched"),
        ("Hamas has not rejected the latest Egyptian proposal.", "proposal_or_response"),
        ("A Qatari official said the talks have not stalled.", "talks_stalled"),
    ],
)
def test_negation_denial_and_modality_cancel_words_of_any_form(
    doha: Classifier, summary: str, event: str
) -> None:
    """Cancel words hold for inflected forms the pack never lists (recalling, stalled)."""
    assert event not in _types(doha, "Gaza hostage talks in Doha", summary)


@pytest.mark.parametrize(
    ("summary", "event"),
    [
        ("Israel recalled its negotiating team from Doha.", "delegation_withdrawn"),
        ("Israel is recalling its negotiators from Cairo.", "delegation_withdrawn"),
        ("Netanyahu brought the Mossad team back from Qatar.", "delegation_withdrawn"),
        ("Hamas rejected the latest Egyptian proposal.", "proposal_or_response"),
        ("Hamas rebuffs the US bridging offer.", "proposal_or_response"),
        ("A Qatari official said the talks have stalled.", "talks_stalled"),
        ("The talks are stalling over the prisoner list.", "talks_stalled"),
    ],
)
def test_the_same_words_uncancelled_are_events(doha: Classifier, summary: str, event: str) -> None:
    """Without the cancel word, the same family of words raises the event."""
    assert event in _types(doha, "Gaza hostage talks in Doha", summary)


@pytest.mark.parametrize(("title", "summary", "event"), _RAISED)
def test_each_event_type_reads_wordings_of_its_own(
    doha: Classifier, title: str, summary: str, event: str
) -> None:
    """Wire wordings written for these tests, not taken from the corpus, raise their event."""
    assert event in _types(doha, title, summary)


@pytest.mark.parametrize(("title", "summary", "event", "raised"), _TOLD_APART)
def test_each_event_type_tells_the_development_from_talk_about_it(
    doha: Classifier, title: str, summary: str, event: str, raised: bool
) -> None:
    """Planned and done developments raise their event; asked-for, denied, finished or
    unrelated ones do not (wordings written for these tests)."""
    assert (event in _types(doha, title, summary)) is raised
