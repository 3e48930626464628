"""Dead letters: what a poison message leaves on the dead-letter topic."""

from __future__ import annotations

from aiokafka.structs import ConsumerRecord

from dohawatch.shared.at_least_once import DEADLETTER_BODY_BYTES, deadletter
from dohawatch.shared.codec import header
from dohawatch.shared.errors import DecodeError


def record(key: bytes | None, value: bytes | None) -> ConsumerRecord[bytes | None, bytes | None]:
    return ConsumerRecord(
        topic="dohawatch.news.raw",
        partition=3,
        offset=41,
        timestamp=0,
        timestamp_type=0,
        key=key,
        value=value,
        checksum=None,
        serialized_key_size=-1,
        serialized_value_size=-1,
        headers=[("ce_type", b"dohawatch.news.item")],
    )


def test_a_null_key_and_body_stay_null() -> None:
    """A tombstone or keyless message is dead-lettered with null, not empty bytes."""
    dead = deadletter(record(None, None), "dlq", "classifier", DecodeError("empty", "no body"))
    assert dead.key is None
    assert dead.value is None
    assert header(dead.headers, "dlq_size") == "0"


def test_an_oversized_body_is_cut_and_its_origin_recorded() -> None:
    """A 5 MB poison message leaves a 64 KiB dead letter naming its size, topic,
    partition and offset, so the dead letter itself always fits the broker."""
    body = b"x" * 5_000_000
    dead = deadletter(record(b"k", body), "dlq", "classifier", DecodeError("too-large", "5 MB"))
    assert dead.value == body[:DEADLETTER_BODY_BYTES]
    assert dead.key == b"k"
    assert header(dead.headers, "dlq_size") == "5000000"
    assert header(dead.headers, "dlq_truncated") == "true"
    assert header(dead.headers, "dlq_topic") == "dohawatch.news.raw"
    assert header(dead.headers, "dlq_partition") == "3"
    assert header(dead.headers, "dlq_offset") == "41"
    assert header(dead.headers, "ce_type") == "dohawatch.news.item"


def test_a_small_body_is_kept_whole() -> None:
    """A body under the cap is dead-lettered as it was, with no truncation mark."""
    dead = deadletter(record(b"k", b"{not json"), "dlq", "classifier", DecodeError("invalid", "x"))
    assert dead.value == b"{not json"
    assert header(dead.headers, "dlq_truncated") is None
