"""The README's downstream consumer, run as written against a real broker."""

from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path

from aiokafka import AIOKafkaProducer

from dohawatch.shared.codec import encode
from dohawatch.shared.settings import Settings
from tests.factories import alert

ROOT = Path(__file__).resolve().parents[2]


def readme_consumer(bootstrap: str) -> str:
    """The README's consumer example, pointed at ``bootstrap``."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    after = text[text.index("A downstream consumer") :]
    code = re.search(r"```python\n(.*?)```", after, re.S)
    assert code, "the README shows a consumer"
    assert "kafka:9092" in code.group(1)
    return code.group(1).replace("kafka:9092", bootstrap)


async def test_the_readme_consumer_reads_and_checks_an_alert(
    settings: Settings, tmp_path: Path
) -> None:
    """The example joins its group, skips a message of another type, validates an
    alert against schemas/alert.schema.json and prints it."""
    bootstrap = settings.kafka_bootstrap_servers or ""
    script = tmp_path / "consumer.py"
    script.write_text(readme_consumer(bootstrap))
    revision = alert(alert_id="al1-readme", story_key="st1-readme")
    message = encode(revision, "dohawatch.alerts")
    other = [(k, b"dohawatch.other" if k == "ce_type" else v) for k, v in message.headers]
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(script), cwd=ROOT, stdout=asyncio.subprocess.PIPE
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        assert process.stdout is not None
        line = b""
        for _ in range(60):  # until the consumer has joined and read one (it starts at the end)
            await producer.send_and_wait("dohawatch.alerts", b"not json", headers=other)
            await producer.send_and_wait(
                message.topic, message.value, key=message.key, headers=message.headers
            )
            try:
                line = await asyncio.wait_for(process.stdout.readline(), 0.5)
                break
            except TimeoutError:
                continue
    finally:
        await producer.stop()
        process.kill()
        await process.wait()
    assert line.decode().strip() == (
        "high Israel recalls its negotiating team from Doha revision 1"
    )
