"""Word families: the inflected forms of an English word, for pack terms.

A pack term word written with a trailing ``~`` ("recall~") stands for its whole
family: "recall", "recalls", "recalled", "recalling". Families are generated
when a pack is compiled, so matching stays one Aho-Corasick pass over the text
and evidence spans are the words as written; a form that English lacks
("sended") is generated but never found, so over-generation costs nothing.

Regular forms follow the spelling rules of the English suffixes -s, -ed and
-ing (e-drop, y to i, a doubled final consonant); irregular verbs come from a
lemma table, which also serves verbs built on them with a verb prefix
("resend", "undertake").
"""

from __future__ import annotations

from typing import Final

__all__ = ["IRREGULAR", "family"]

# Irregular verbs common in news: lemma -> its past and participle forms.
IRREGULAR: Final[dict[str, tuple[str, ...]]] = {
    "arise": ("arose", "arisen"),
    "be": ("is", "are", "was", "were", "been", "being"),
    "bear": ("bore", "borne"),
    "beat": ("beat", "beaten"),
    "become": ("became",),
    "begin": ("began", "begun"),
    "bid": ("bid",),
    "bind": ("bound",),
    "break": ("broke", "broken"),
    "bring": ("brought",),
    "build": ("built",),
    "buy": ("bought",),
    "catch": ("caught",),
    "choose": ("chose", "chosen"),
    "come": ("came",),
    "cut": ("cut",),
    "deal": ("dealt",),
    "draw": ("drew", "drawn"),
    "drive": ("drove", "driven"),
    "fall": ("fell", "fallen"),
    "feel": ("felt",),
    "fight": ("fought",),
    "find": ("found",),
    "fly": ("flew", "flown"),
    "forbid": ("forbade", "forbidden"),
    "freeze": ("froze", "frozen"),
    "get": ("got", "gotten"),
    "give": ("gave", "given"),
    "go": ("goes", "went", "gone"),
    "grind": ("ground",),
    "have": ("has", "had"),
    "hit": ("hit",),
    "hold": ("held",),
    "keep": ("kept",),
    "lay": ("laid",),
    "lead": ("led",),
    "leave": ("left",),
    "let": ("let",),
    "lose": ("lost",),
    "make": ("made",),
    "mean": ("meant",),
    "meet": ("met",),
    "pay": ("paid",),
    "put": ("put",),
    "quit": ("quit",),
    "rise": ("rose", "risen"),
    "run": ("ran",),
    "say": ("said",),
    "see": ("saw", "seen"),
    "seek": ("sought",),
    "sell": ("sold",),
    "send": ("sent",),
    "set": ("set",),
    "shut": ("shut",),
    "sit": ("sat",),
    "speak": ("spoke", "spoken"),
    "spend": ("spent",),
    "stand": ("stood",),
    "strike": ("struck", "stricken"),
    "take": ("took", "taken"),
    "tell": ("told",),
    "think": ("thought",),
    "throw": ("threw", "thrown"),
    "win": ("won",),
    "withdraw": ("withdrew", "withdrawn"),
    "withhold": ("withheld",),
    "write": ("wrote", "written"),
}

_VOWELS: Final = frozenset("aeiou")
_PREFIXES: Final = ("with", "under", "over", "out", "fore", "mis", "re", "up", "be")


def _doubles(word: str) -> bool:
    """Whether the final consonant may double before -ed and -ing ("stop", "plan").

    Stress decides in English ("regret" doubles, "offer" does not), which
    spelling alone cannot tell; both forms are generated for any word ending
    consonant-vowel-consonant, and the one English lacks is never found.
    """
    return (
        len(word) >= 3
        and word[-1] not in _VOWELS
        and word[-1] not in "wxy"
        and word[-2] in _VOWELS
        and word[-3] not in _VOWELS
    )


def _regular(word: str, past: bool = True) -> set[str]:
    """The -s, -ing and (with ``past``) -ed forms by the regular spelling rules."""
    forms = {word}
    if word.endswith(("s", "x", "z", "ch", "sh", "o")):
        forms.add(word + "es")
    elif word.endswith("y") and len(word) > 1 and word[-2] not in _VOWELS:
        forms.add(word[:-1] + "ies")
    else:
        forms.add(word + "s")
    if word.endswith("e"):
        ing = (
            word[:-2] + "y"
            if word.endswith("ie")
            else word
            if word.endswith(("ee", "ye", "oe"))
            else word[:-1]
        ) + "ing"
        forms |= {word + "d", ing}
    elif word.endswith("y") and len(word) > 1 and word[-2] not in _VOWELS:
        forms |= {word[:-1] + "ied", word + "ing"}
    else:
        forms |= {word + "ed", word + "ing"}
    if _doubles(word):
        forms |= {word + word[-1] + "ed", word + word[-1] + "ing"}
    if not past:
        forms -= {f for f in forms if f.endswith("ed") and f != word}
    return forms


def family(word: str) -> frozenset[str]:
    """``word`` (a lemma, lower case) and every form inflected from it.

    >>> sorted(family("withdraw"))
    ['withdraw', 'withdrawed', 'withdrawing', 'withdrawn', 'withdraws', 'withdrew']
    """
    prefix, irregular = "", IRREGULAR.get(word)
    if irregular is None:
        # A verb built on an irregular one with a verb prefix keeps its forms:
        # "withhold" is "with" + "hold", "resend" is "re" + "send".
        for head in _PREFIXES:
            if word.startswith(head) and word[len(head) :] in IRREGULAR:
                prefix, irregular = head, IRREGULAR[word[len(head) :]]
                break
    if irregular is None:
        return frozenset(_regular(word))
    # A prefix may be a coincidence ("relay" is no "re" + "lay"): such a word
    # keeps its regular past as well.
    regular = _regular(word, past=bool(prefix))
    return frozenset(regular.union(prefix + form for form in irregular))
