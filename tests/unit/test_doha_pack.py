"""The Doha talks pack on wordings of its own: the critical agreement alert, and
cancels read with word families and proximity."""

from __future__ import annotations

import pytest

from dohawatch.classifier.engine import Classifier


def _types(c: Classifier, title: str, summary: str = "") -> set[str]:
    return set(c.classify(title, summary).event_types)


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
        # struck, clinched, sealed
        ("Negotiators strike a Gaza hostage deal in Doha", ""),
        ("Mediators clinch Israel-Hamas ceasefire deal after marathon talks", ""),
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


@pytest.mark.parametrize(
    ("title", "summary", "event"),
    [
        ("Israel pulls its negotiators out of Doha after talks sour", "", "delegation_withdrawn"),
        ("Hamas delegation walks out of Cairo talks", "", "delegation_withdrawn"),
        ("Netanyahu orders Mossad team home from Qatar", "", "delegation_withdrawn"),
        (
            "Gaza talks",
            "The Israeli delegation left Doha on Thursday without an agreement, officials said.",
            "delegation_withdrawn",
        ),
        ("US envoy Witkoff recalls team from Gaza ceasefire talks", "", "delegation_withdrawn"),
        (
            "Israel brings negotiating team back from Cairo for consultations",
            "",
            "delegation_withdrawn",
        ),
        (
            "Israeli negotiators land in Doha for new round of Gaza talks",
            "",
            "delegation_dispatched",
        ),
        ("Hamas team heads to Cairo for ceasefire talks", "", "delegation_dispatched"),
        (
            "Netanyahu dispatches Dermer to Washington for Gaza deal talks",
            "",
            "delegation_dispatched",
        ),
        (
            "Gaza talks",
            "A Hamas delegation led by Khalil al-Hayya arrived in Cairo on Sunday for talks with "
            "Egyptian mediators.",
            "delegation_dispatched",
        ),
        ("Gaza ceasefire negotiations resume in Doha", "", "delegation_dispatched"),
        ("Indirect Israel-Hamas talks open in Sharm el-Sheikh", "", "delegation_dispatched"),
        (
            "Hamas hands mediators its reply to the latest Gaza truce proposal",
            "",
            "proposal_or_response",
        ),
        ("Israel rejects Hamas counterproposal on Gaza ceasefire", "", "proposal_or_response"),
        ("Egypt submits new Gaza ceasefire plan to Israel and Hamas", "", "proposal_or_response"),
        ("Hamas says it accepts Egyptian-Qatari ceasefire offer", "", "proposal_or_response"),
        (
            "Gaza talks",
            "Israel delivered its response to the bridging proposal through Qatari mediators on "
            "Tuesday.",
            "proposal_or_response",
        ),
        (
            "Netanyahu rejects Hamas demands as Gaza truce talks continue",
            "",
            "proposal_or_response",
        ),
        ("Gaza ceasefire talks stall over Israeli troop presence", "", "talks_stalled"),
        ("Hostage talks at an impasse as Israel and Hamas trade blame", "", "talks_stalled"),
        ("Qatar suspends its mediation between Israel and Hamas", "", "talks_stalled"),
        (
            "Gaza talks",
            "Negotiations in Doha broke down on Friday over the number of prisoners to be freed.",
            "talks_stalled",
        ),
        ("Gaza truce negotiations deadlocked, mediators say", "", "talks_stalled"),
        (
            "Hamas postpones next hostage release, accusing Israel of violations",
            "",
            "talks_stalled",
        ),
        (
            "Hamas to free 33 hostages in first phase in exchange for 1,900 Palestinian prisoners",
            "",
            "hostage_prisoner_terms",
        ),
        (
            "Gaza talks",
            "Under the deal, Israel will release 30 Palestinian prisoners for each civilian "
            "hostage.",
            "hostage_prisoner_terms",
        ),
        (
            "Three Israeli hostages freed in latest exchange under Gaza truce",
            "",
            "hostage_prisoner_terms",
        ),
        (
            "Israel releases 90 Palestinian detainees as ceasefire holds",
            "",
            "hostage_prisoner_terms",
        ),
        (
            "Israel to withdraw troops from Netzarim corridor under Gaza deal",
            "",
            "military_withdrawal_terms",
        ),
        (
            "Gaza talks",
            "The proposal would see Israeli forces pull back to a buffer zone 700 metres wide "
            "along the border.",
            "military_withdrawal_terms",
        ),
        (
            "IDF pulls back to yellow line as Gaza ceasefire takes effect",
            "",
            "military_withdrawal_terms",
        ),
        (
            "Maps of Israeli withdrawal remain sticking point in Gaza talks",
            "",
            "military_withdrawal_terms",
        ),
        (
            "Hostage families protest outside Netanyahu's home demanding a deal",
            "",
            "public_pressure",
        ),
        ("Thousands rally in Tel Aviv to demand Gaza hostage deal", "", "public_pressure"),
        (
            "Relatives of hostages block highway, urging government to accept ceasefire",
            "",
            "public_pressure",
        ),
        (
            "Gaza talks",
            "The Hostages and Missing Families Forum urged Netanyahu to sign the agreement "
            "without delay.",
            "public_pressure",
        ),
        ("Hamas negotiators quit Doha talks in protest", "", "delegation_withdrawn"),
        (
            "Gaza talks",
            "Netanyahu instructed the negotiating team to return home from Qatar on Monday.",
            "delegation_withdrawn",
        ),
        ("Israel calls back negotiators as Gaza truce talks falter", "", "delegation_withdrawn"),
        ("CIA chief Burns travels to Cairo for Gaza hostage talks", "", "delegation_dispatched"),
        (
            "Gaza talks",
            "Israel will send a delegation to Doha on Monday to resume negotiations, the prime "
            "minister's office said.",
            "delegation_dispatched",
        ),
        ("New round of Gaza ceasefire talks begins in Cairo", "", "delegation_dispatched"),
        ("Hamas responds to US ceasefire proposal, seeks amendments", "", "proposal_or_response"),
        (
            "Israel approves updated hostage deal proposal to send to Hamas",
            "",
            "proposal_or_response",
        ),
        ("Mediators present bridging proposal to Israel and Hamas", "", "proposal_or_response"),
        (
            "Gaza talks",
            "Hamas turned down the offer, saying it did not guarantee an end to the war.",
            "proposal_or_response",
        ),
        ("Gaza ceasefire talks collapse as Israel resumes strikes", "", "talks_stalled"),
        ("Hostage negotiations hit a snag over Philadelphi corridor", "", "talks_stalled"),
        (
            "Gaza talks",
            "Egyptian officials said the negotiations had reached a dead end.",
            "talks_stalled",
        ),
        ("Qatar halts its role as mediator in Gaza talks", "", "talks_stalled"),
        ("Israel and Hamas reach deal on second phase of Gaza truce", "", "agreement_reached"),
        ("Gaza ceasefire comes into force after 15 months of war", "", "agreement_reached"),
        ("Israeli cabinet signs off on Gaza hostage deal", "", "agreement_reached"),
        (
            "Gaza talks",
            "Mediators announced that Israel and Hamas had agreed to a six-week truce.",
            "agreement_reached",
        ),
        (
            "Red Cross receives four Israeli hostages from Hamas in Gaza",
            "",
            "hostage_prisoner_terms",
        ),
        (
            "Israel frees 110 Palestinian prisoners after hostages return",
            "",
            "hostage_prisoner_terms",
        ),
        (
            "Gaza talks",
            "Hamas will release the remaining 20 living hostages within 72 hours.",
            "hostage_prisoner_terms",
        ),
        ("Israeli forces pull out of Rafah under ceasefire terms", "", "military_withdrawal_terms"),
        (
            "Gaza talks",
            "Israel would keep troops along the Philadelphi corridor during the first phase.",
            "military_withdrawal_terms",
        ),
        ("Hostage families march to Jerusalem demanding ceasefire deal", "", "public_pressure"),
        (
            "Gaza talks",
            "Protesters blocked Ayalon highway in Tel Aviv calling for the release of the "
            "hostages.",
            "public_pressure",
        ),
    ],
)
def test_each_event_type_reads_wordings_of_its_own(
    doha: Classifier, title: str, summary: str, event: str
) -> None:
    """Wire wordings written for these tests, not taken from the corpus, raise their event."""
    assert event in _types(doha, title, summary)


@pytest.mark.parametrize(
    ("title", "summary", "event", "raised"),
    [
        (
            "Israel to send negotiators to Doha on Sunday for Gaza talks",
            "",
            "delegation_dispatched",
            True,
        ),
        (
            "Gaza talks",
            "Witkoff plans to travel to the region next week to push the second phase.",
            "delegation_dispatched",
            True,
        ),
        (
            "Gaza talks",
            "A Hamas delegation is due in Cairo on Monday for talks with Egyptian officials.",
            "delegation_dispatched",
            True,
        ),
        (
            "Qatar resumes mediation between Israel and Hamas",
            "",
            "delegation_dispatched",
            True,
        ),
        (
            "Gaza talks",
            "Israeli negotiators are expected in Doha later this week, an official said.",
            "delegation_dispatched",
            True,
        ),
        (
            "Talks on second phase of Gaza deal get under way in Cairo",
            "",
            "delegation_dispatched",
            True,
        ),
        (
            "Gaza talks",
            "Mediators urged Israel to send a delegation to Cairo.",
            "delegation_dispatched",
            False,
        ),
        (
            "Gaza talks",
            "Netanyahu refused to send the negotiating team back to Doha.",
            "delegation_dispatched",
            False,
        ),
        (
            "Gaza talks",
            "Hamas said it would not send a delegation until Israel stops its offensive.",
            "delegation_dispatched",
            False,
        ),
        (
            "Netanyahu meets hostage families in Jerusalem",
            "",
            "delegation_dispatched",
            False,
        ),
        (
            "Gaza talks",
            "The last round of talks in Doha ended on Thursday without a breakthrough.",
            "delegation_dispatched",
            False,
        ),
        (
            "Israeli troops advance into Rafah as talks stall",
            "",
            "delegation_dispatched",
            False,
        ),
        (
            "Gaza talks",
            "Aid convoys arrived in northern Gaza on Tuesday.",
            "delegation_dispatched",
            False,
        ),
        (
            "Gaza hostage talks hit impasse over Philadelphi corridor",
            "",
            "talks_stalled",
            True,
        ),
        (
            "Gaza talks",
            "Officials said there had been no breakthrough after three days of negotiations in "
            "Cairo.",
            "talks_stalled",
            True,
        ),
        (
            "Gaza talks",
            "Israel is withholding its delegation until Hamas revises its demands.",
            "talks_stalled",
            True,
        ),
        (
            "Hamas delays handover of hostages, citing Israeli violations",
            "",
            "talks_stalled",
            True,
        ),
        (
            "Gaza truce negotiations on hold as Israel expands offensive",
            "",
            "talks_stalled",
            True,
        ),
        (
            "Gaza talks",
            "Aid deliveries were halted as fighting resumed in Khan Younis.",
            "talks_stalled",
            False,
        ),
        (
            "Gaza talks",
            "Israeli officials said the negotiations were progressing well.",
            "talks_stalled",
            False,
        ),
        (
            "Gaza ceasefire holds despite sporadic violations",
            "",
            "talks_stalled",
            False,
        ),
        (
            "IDF withdraws from Netzarim corridor as Gaza deal requires",
            "",
            "military_withdrawal_terms",
            True,
        ),
        (
            "Gaza talks",
            "Israeli troops would remain in a buffer zone one kilometre deep along the border.",
            "military_withdrawal_terms",
            True,
        ),
        (
            "Gaza talks",
            "Displaced Palestinians began returning to northern Gaza under the ceasefire deal.",
            "military_withdrawal_terms",
            True,
        ),
        (
            "Hamas demands full Israeli withdrawal from Gaza before any deal",
            "",
            "military_withdrawal_terms",
            False,
        ),
        (
            "Israeli troops advance deeper into Rafah as talks falter",
            "",
            "military_withdrawal_terms",
            False,
        ),
        (
            "Gaza talks",
            "Israeli forces raided the Nur Shams camp near Tulkarm overnight.",
            "military_withdrawal_terms",
            False,
        ),
        (
            "Hamas rejects Netanyahu's conditions for Gaza truce",
            "",
            "proposal_or_response",
            True,
        ),
        (
            "Gaza talks",
            "Mediators are still waiting for Hamas to respond to the proposal.",
            "proposal_or_response",
            False,
        ),
        (
            "Gaza talks",
            "Israel has not responded to the latest offer, officials said.",
            "proposal_or_response",
            False,
        ),
        (
            "Gaza talks",
            "Hamas handed over the bodies of four hostages to the Red Cross on Thursday.",
            "hostage_prisoner_terms",
            True,
        ),
        (
            "Gaza talks",
            "Families want all the hostages home.",
            "hostage_prisoner_terms",
            False,
        ),
        (
            "Gaza talks",
            "Former hostages joined a rally in Tel Aviv urging a deal to free those still held.",
            "public_pressure",
            True,
        ),
        (
            "Gaza talks",
            "Thousands celebrated in Tel Aviv as the first hostages came home under the deal.",
            "public_pressure",
            False,
        ),
    ],
)
def test_each_event_type_tells_the_development_from_talk_about_it(
    doha: Classifier, title: str, summary: str, event: str, raised: bool
) -> None:
    """Planned and done developments raise their event; asked-for, denied, finished or
    unrelated ones do not (wordings written for these tests)."""
    assert (event in _types(doha, title, summary)) is raised
