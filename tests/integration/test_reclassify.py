"""`dohawatch reclassify` on the real broker: the demo's news through a changed pack."""

from __future__ import annotations

import io
from pathlib import Path

import yaml

from dohawatch.classifier.engine import ENGINE_VERSION
from dohawatch.classifier.pack import load_pack
from dohawatch.demo.feeds import ReplayServer
from dohawatch.reclassify import reclassify
from dohawatch.shared.codec import decode
from dohawatch.shared.config_file import FileConfig
from dohawatch.shared.events import ClassifiedItem
from dohawatch.shared.kafka import Topics
from dohawatch.shared.settings import Settings

from .conftest import read_topic, running
from .test_pipeline import replay_feeds

TOPICS = Topics.with_prefix("dohawatch.")
BUNDLED = Path(__file__).resolve().parents[2] / "services" / "classifier" / "packs"


def without_stalls(directory: Path) -> Path:
    """The bundled pack without its talks_stalled event type, as a new version."""
    pack = yaml.safe_load((BUNDLED / "doha-talks.yaml").read_text(encoding="utf-8"))
    del pack["events"]["talks_stalled"]
    for event in pack["events"].values():
        if "talks_stalled" in event.get("supersedes", ()):
            event["supersedes"] = [t for t in event["supersedes"] if t != "talks_stalled"]
    pack["version"] = "2026.12-no-stalls"
    pack["model"] = str(BUNDLED / pack["model"])  # the bundled model, from another folder
    path = directory / "no-stalls.yaml"
    path.write_text(yaml.safe_dump(pack), encoding="utf-8")
    return path


async def test_reclassify_shows_what_a_pack_change_does_then_publishes_it(
    settings: Settings, feed_server: ReplayServer, tmp_path: Path
) -> None:
    """With talks_stalled taken out of the pack, the dry run lists exactly the
    items the classifier had tagged talks_stalled, each losing that type and
    nothing else, and the talks_stalled alerts disappearing; it publishes
    nothing. The real run publishes every item again under the new version."""
    bootstrap = settings.kafka_bootstrap_servers or ""
    count = len(feed_server.items)
    async with running(settings, replay_feeds(feed_server), services=["fetcher", "classifier"]):
        records = await read_topic(bootstrap, TOPICS.classified, count)
    tagged = [decode(r.value, r.headers, ClassifiedItem) for r in records]
    stalled = {c.item.item_id for c in tagged if "talks_stalled" in {e.type for e in c.events}}
    assert stalled, "the demo's news has stalled talks"
    pack = without_stalls(tmp_path)

    out = io.StringIO()
    dry = await reclassify(settings, bootstrap, FileConfig(), pack=str(pack), dry_run=True, out=out)
    assert dry.read == count
    assert {c.after.item.item_id for c in dry.changes} == stalled
    for change in dry.changes:
        assert [e.type for e in change.lost] == ["talks_stalled"]
        assert not change.relevance_changed
    assert dry.disappeared
    assert {a.event_type for a in dry.disappeared} == {"talks_stalled"}
    assert dry.published == 0
    text = out.getvalue()
    assert text.count("    - talks_stalled") == len(stalled)
    assert f"{count} items read, {len(stalled)} changed" in text

    applied = await reclassify(settings, bootstrap, FileConfig(), pack=str(pack), out=io.StringIO())
    assert applied.published == count
    after = await read_topic(bootstrap, TOPICS.classified, 2 * count)
    republished = [decode(r.value, r.headers, ClassifiedItem) for r in after]
    new = [c for c in republished if c.classifier_version.startswith("doha-talks@2026.12-no-")]
    assert len(new) == count
    model = load_pack("doha-talks").learned
    assert model is not None
    assert {c.classifier_version for c in new} == {
        f"doha-talks@2026.12-no-stalls/engine-{ENGINE_VERSION}/model-{model.version}"
    }
    assert not any("talks_stalled" in {e.type for e in c.events} for c in new)
