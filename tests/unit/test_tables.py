"""A claimed table read back: each key's latest record written under the claim in
force where it stands, whoever else went on writing (shared/tables.py)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from dohawatch.shared.tables import CLAIM_HEADER, CLAIM_KEY, REPLICA_HEADER, Row, claimed_rows

Record = tuple[bytes | None, bytes | None, list[tuple[str, bytes]] | None]


def claim(token: str) -> Record:
    return CLAIM_KEY, b"", [(CLAIM_HEADER, token.encode())]


def write(key: str, value: bytes | None, token: str | None, replica: str = "r") -> Record:
    headers = [(REPLICA_HEADER, replica.encode())]
    if token is not None:
        headers.append((CLAIM_HEADER, token.encode()))
    return key.encode(), value, headers


def test_records_before_any_claim_are_all_read() -> None:
    rows, superseded = claimed_rows([write("k", b"1", None), write("k", b"2", None)], 3)
    assert rows == {"k": Row(3, b"2", "r")}
    assert superseded == 0


def test_a_write_under_a_superseded_claim_leaves_the_key_as_it_was() -> None:
    records = [
        claim("a"),
        write("k", b"a-1", "a"),
        write("gone", b"x", "a"),
        claim("b"),
        write("k", b"a-2", "a"),  # A, not told, writes on
        write("gone", None, "a"),  # nor is its tombstone read
        write("new", b"n", None),  # a record under no claim, after one
    ]
    rows, superseded = claimed_rows(records, 0)
    assert rows == {"k": Row(0, b"a-1", "r"), "gone": Row(0, b"x", "r")}
    assert superseded == 3


def test_a_replica_that_claims_again_supersedes_its_own_earlier_claim() -> None:
    records = [claim("a1"), claim("a2"), write("k", b"late", "a1"), write("j", b"now", "a2")]
    rows, superseded = claimed_rows(records, 0)
    assert rows == {"j": Row(0, b"now", "r")}
    assert superseded == 1


# A script: each step is a replica claiming the partition, or writing a key.
steps = st.lists(
    st.one_of(
        st.tuples(st.just("claim"), st.sampled_from("ABC"), st.none()),
        st.tuples(st.just("write"), st.sampled_from("ABC"), st.sampled_from(["k1", "k2", "k3"])),
    ),
    max_size=30,
)


@given(steps)
def test_the_table_is_what_the_owner_of_each_moment_wrote(
    script: list[tuple[str, str, str | None]],
) -> None:
    """Replicas claim and write in any order; each writes under its own latest claim.
    Read back, the table is what the partition's owner at each moment (the last to
    claim it) wrote, and every other write is counted as superseded."""
    records: list[Record] = []
    tokens: dict[str, str] = {}  # replica → its latest claim's token
    owner: str | None = None
    expected: dict[str, Row] = {}
    others = 0
    for n, (step, replica, key) in enumerate(script):
        if step == "claim":
            tokens[replica] = f"{replica}{n}"
            owner = replica
            records.append(claim(tokens[replica]))
            continue
        assert key is not None
        value = f"{replica}{n}".encode()
        records.append(write(key, value, tokens.get(replica), replica))
        if owner is None or owner == replica:
            expected[key] = Row(0, value, replica)
        else:
            others += 1
    assert claimed_rows(records, 0) == (expected, others)
