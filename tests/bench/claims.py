"""What the notifier's claim check adds to a batch (``make bench``).

After a batch's records are acknowledged, the notifier reads its story
partitions back up to them (shared/tables.py, ``Claims.superseded``). Measured
beside the produce and acknowledgement of the record it checks, on the embedded
broker, one story record of 800 bytes a batch, spread over six partitions.
Writes ``.bench/claims.json``.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from pathlib import Path

from dohawatch.shared.broker import EmbeddedBroker
from dohawatch.shared.kafka import Topics, ensure_topics, make_producer
from dohawatch.shared.settings import load_settings
from dohawatch.shared.tables import Claims

OUT = Path(__file__).resolve().parents[2] / ".bench"
BATCHES = 600
WARMUP = 100
PARTITIONS = 6


async def measure() -> dict[str, float]:
    broker = EmbeddedBroker()
    await broker.start()
    try:
        settings = load_settings(
            kafka_bootstrap_servers=broker.bootstrap,
            kafka_idempotence=False,
            topic_partitions=PARTITIONS,
        )
        topics = Topics.with_prefix("dohawatch.")
        await ensure_topics(settings, broker.bootstrap, topics)
        producer = make_producer(settings, broker.bootstrap)
        await producer.start()
        claims = Claims(
            settings, broker.bootstrap, [topics.notifier_stories, topics.notifier_ledger], "bench"
        )
        try:
            await claims.claim(producer, range(PARTITIONS))
            produced, checked = [], []
            for n in range(BATCHES):
                p = n % PARTITIONS
                header = claims.header(p)
                assert header is not None
                started = time.perf_counter()
                sent = await producer.send(
                    topics.notifier_stories,
                    b"v" * 800,
                    key=f"st1-{n}".encode(),
                    headers=[header],
                    partition=p,
                )
                offset = (await sent).offset
                acknowledged = time.perf_counter()
                lost = await claims.superseded({p: (claims.token(p), offset)})
                assert lost == set(), lost
                produced.append(acknowledged - started)
                checked.append(time.perf_counter() - acknowledged)
        finally:
            await claims.close()
            await producer.stop()
    finally:
        await broker.stop()
    produce_ms = 1000 * statistics.median(produced[WARMUP:])
    check_ms = 1000 * statistics.median(checked[WARMUP:])
    return {
        "produce_and_ack_p50_ms": round(produce_ms, 3),
        "claim_check_p50_ms": round(check_ms, 3),
        "check_to_produce_ratio": round(check_ms / produce_ms, 3),
    }


def main() -> None:
    results = asyncio.run(measure())
    print(
        f"claim check: {results['claim_check_p50_ms']:.2f} ms a batch (p50), "
        f"{results['check_to_produce_ratio']:.2f}x the produce and ack it follows "
        f"({results['produce_and_ack_p50_ms']:.2f} ms)"
    )
    OUT.mkdir(exist_ok=True)
    (OUT / "claims.json").write_text(json.dumps(results, indent=2) + "\n")
    print(f"written: {OUT / 'claims.json'}")


if __name__ == "__main__":
    main()
