"""Where the words, sentences and numbers of an item's text are.

Offsets are those of the text as given: the automaton reads a normalised copy of
the same length (``words``), and ASCII text, almost all news, is scanned as
bytes through translation tables, which costs less than starting a regex on
texts this short. Compiled with the engine by mypyc (see setup.py).
"""

from __future__ import annotations

import re
from typing import Final, Literal

__all__ = [
    "ASCII_CLASSES",
    "ASCII_WORDS",
    "NUMBER",
    "SENTENCE_END",
    "FieldName",
    "Hit",
    "Span",
    "ascii_hyphen_hits",
    "ascii_numbers",
    "ascii_sentence_starts",
    "hyphen_hits",
    "number_hits",
    "words",
]

FieldName = Literal["title", "summary"]
Span = tuple[FieldName, int, int, str]
"""Evidence as plain data: field, start, end (one past the last character), text."""

# A hit: key index, start, end + 2 (the key's padding) in its field. Typed as a
# plain tuple so that compiled code passes the finder's tuples on as they are
# instead of unpacking each into a C struct and boxing it again when stored.
Hit = tuple[int, ...]

# A sentence ends at . ! ? followed by space and an upper-case letter or a quote;
# abbreviations such as "U.S. officials" stay inside their sentence.
SENTENCE_END: Final = re.compile(r"[.!?][\"'’”)]?\s+(?=[\"'‘“(]?[A-Z0-9])")
NUMBER: Final = re.compile(r"\d[\d,.]*")  # each match is one whole number: its start is a start
_NOT_WORD: Final = re.compile(r"[^\w ]|_")  # every character but letters, digits and the space


def _table(classes: dict[bytes, int], other: int) -> bytes:
    """A 256-byte translation table: each byte of a key of ``classes`` to its value."""
    table = bytearray([other]) * 256
    for members, to in classes.items():
        for byte in members:
            table[byte] = to
    return bytes(table)


_UPPER = bytes(range(65, 91))
_LOWER = bytes(range(97, 123))
_DIGITS = b"0123456789"
# ASCII words: letters lower-cased, digits kept, every other byte a space.
ASCII_WORDS: Final = bytes(
    c + 32 if c in _UPPER else c if c in _LOWER or c in _DIGITS else 32 for c in range(256)
)
# ASCII character classes, so that sentence ends and numbers are found with
# ``bytes.find`` (a regex costs more to start than these texts cost to scan):
# "." and "!" end a sentence, "q" quotes it, "A" may begin one, "0" is a digit.
ASCII_CLASSES: Final = _table(
    {b".": ord("."), b"!?": ord("!"), b"\"'": ord("q"), b")": ord(")"), b"(": ord("(")}
    | {b" \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f": 32, _UPPER: ord("A"), _DIGITS: ord("0"), b",": ord(",")},
    ord("x"),
)
# The classes as ints, Final so that compiled code reads them as constants.
_DIGIT: Final = 48  # "0"
_COMMA: Final = 44  # ","
_DOT: Final = 46  # "."
_SPACE: Final = 32  # " "
_CAPITAL: Final = 65  # "A"
_QUOTE: Final = 113  # "q"
_OPEN: Final = 40  # "("
_CLOSE: Final = 41  # ")"
_A: Final = 97  # "a"
_Z: Final = 122  # "z"


def ascii_numbers(classes: bytes) -> list[int]:
    """Where numbers begin: each run of digits, commas and full stops that starts
    with a digit (``\\d[\\d,.]*``, the regex's own reading), found with ``find``."""
    starts = []
    end = len(classes)
    i = classes.find(b"0")
    while i >= 0:
        starts.append(i)
        i += 1
        while i < end and classes[i] in (_DIGIT, _COMMA, _DOT):
            i += 1
        i = classes.find(b"0", i)
    return starts


def ascii_sentence_starts(classes: bytes) -> list[int]:
    """Where sentences after the first begin: after "." or "!", an optional closing
    quote, spaces, then a capital or digit, perhaps behind an opening quote
    (``SENTENCE_END`` for ASCII text, found with ``find``)."""
    starts = []
    end = len(classes)
    for stop in (b".", b"!"):
        i = classes.find(stop)
        while i >= 0:
            j = i + 1
            if j < end and classes[j] in (_QUOTE, _CLOSE):
                j += 1
            k = j
            while k < end and classes[k] == _SPACE:
                k += 1
            if k > j and k < end:
                first = classes[k]
                if first in (_QUOTE, _OPEN) and k + 1 < end:
                    first = classes[k + 1]
                if first in (_CAPITAL, _DIGIT):
                    starts.append(k)
            i = classes.find(stop, i + 1)
    if len(starts) > 1:
        starts.sort()
    return starts


def number_hits(text: str, starts: list[int], key: int) -> list[Hit]:
    """A hit of ``key`` on each number beginning at ``starts``: its digits and the
    commas and full stops between them, not one that ends it ("33," is "33")."""
    hits: list[Hit] = []
    size = len(text)
    for start in starts:
        i = end = start + 1
        while i < size and (text[i].isdigit() or text[i] in ",."):
            i += 1
            if text[i - 1].isdigit():
                end = i
        hits.append((key, start, end + 2))
    return hits


# A hyphen between two letters. The hyphen comes first and the letter before it
# is looked back at from there: a pattern that begins with its look-behind is
# tried at every character, one that begins with a character class is not.
_JOINING_HYPHEN: Final = re.compile(r"[-\u2010\u2011](?<=[^\W\d_].)(?=[^\W\d_])")


def hyphen_hits(text: str, key: int) -> list[Hit]:
    """A hit of ``key`` on each hyphen that joins two words ("Hamas-approved"),
    ending where the second word begins, so that it stands right before it."""
    return [(key, m.start(), m.end() + 2) for m in _JOINING_HYPHEN.finditer(text)]


def ascii_hyphen_hits(raw: bytes, padded: bytes, key: int) -> list[Hit]:
    """:func:`hyphen_hits` for ASCII text, given as bytes and as its padded words
    (``ASCII_WORDS``), where a letter is a byte from "a" to "z"."""
    hits: list[Hit] = []
    i = raw.find(b"-")
    while i >= 0:
        # padded[i] is the character before the hyphen, padded[i + 2] the one after.
        if _A <= padded[i] <= _Z and _A <= padded[i + 2] <= _Z:
            hits.append((key, i, i + 3))
        i = raw.find(b"-", i + 1)
    return hits


def _lower_same_length(text: str) -> str:
    lowered = text.lower()
    if len(lowered) == len(text):
        return lowered
    # A few characters lower-case to two (İ → i̇); keep offsets aligned with the original.
    return "".join(c if len(c.lower()) != 1 else c.lower() for c in text)


def words(text: str) -> str:
    """``text`` lower-cased, every character that is not a letter or digit made a
    space, and padded with a space each side: an automaton key `` key `` then
    matches whole words only, and offsets stay those of ``text`` plus one."""
    return f" {_NOT_WORD.sub(' ', _lower_same_length(text))} "
