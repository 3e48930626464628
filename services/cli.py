"""The ``dohawatch`` command: run services, the demo, and the classifier by hand."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from .shared.config_file import load_file_config, route_secrets
from .shared.errors import ConfigError, DohawatchError
from .shared.logs import configure_logging
from .shared.metrics import package_version
from .shared.settings import Settings, load_settings

if TYPE_CHECKING:
    from .classifier.evaluate import Labelled
    from .fetcher.core import FeedState
    from .shared.config_file import FeedConfig
    from .shared.tables import Row

log = logging.getLogger("dohawatch")

__all__ = ["main"]


def _secrets(settings: Settings) -> list[str]:
    """Every secret to keep out of the logs: the settings' and those the
    configuration file's routes name (a broken file has none; the command that
    needs it reports it)."""
    values = [getattr(settings, name) for name in type(settings).model_fields]
    try:
        routes = load_file_config(settings.config_file).routes
    except DohawatchError:
        routes = ()
    values += route_secrets(routes).values()
    return [v.get_secret_value() for v in values if hasattr(v, "get_secret_value")]


def _services(settings: Settings, names: Sequence[str]) -> int:
    from .app import RunPlan, run_plan, stop_grace_seconds
    from .shared.runtime import install_signal_handlers

    config = load_file_config(settings.config_file)

    async def go() -> None:
        stop = asyncio.Event()
        install_signal_handlers(stop, stop_grace_seconds(settings))
        await run_plan(RunPlan(settings, config, services=names), stop)

    asyncio.run(go())
    return 0


def _demo(settings: Settings, args: argparse.Namespace) -> int:
    from .app import stop_grace_seconds
    from .demo.runner import run_demo
    from .shared.runtime import install_signal_handlers

    async def go() -> None:
        stop = asyncio.Event()
        install_signal_handlers(stop, stop_grace_seconds(settings))
        demo = asyncio.create_task(run_demo(settings, sys.stdout, follow=args.follow))
        stopper = asyncio.create_task(stop.wait())
        await asyncio.wait([demo, stopper], return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()
        if not demo.done():
            demo.cancel()
        await asyncio.gather(demo, return_exceptions=True)

    asyncio.run(go())
    return 0


def _feeds(settings: Settings, args: argparse.Namespace) -> int:
    from .fetcher.feed_list import feeds_table, import_opml

    match args.feeds_command:
        case "import":
            print(import_opml(args.file, args.tag), end="")
            return 0
        case "sync":
            return asyncio.run(_sync_feeds(settings, args.file))
        case "list":
            feeds, states, owners = asyncio.run(_listed_feeds(settings))
            print("\n".join(feeds_table(feeds, states, settings.fetch_failing_after, owners)))
            return 0
        case _:
            raise AssertionError(f"unknown feeds action {args.feeds_command!r}")


def _cluster(settings: Settings, action: str) -> str:
    if not settings.kafka_bootstrap_servers:
        raise ConfigError(
            f"feeds {action} talks to a Kafka cluster: set DOHAWATCH_KAFKA_BOOTSTRAP_SERVERS "
            "(with the embedded broker, the fetcher of `dohawatch run` syncs "
            "DOHAWATCH_CONFIG_FILE itself)"
        )
    return settings.kafka_bootstrap_servers


async def _sync_feeds(settings: Settings, path: Path) -> int:
    from .fetcher.feed_table import sync_feeds
    from .shared.kafka import Topics, ensure_topics

    bootstrap = _cluster(settings, "sync")
    feeds = load_file_config(path).feeds
    topics = Topics.with_prefix(settings.topic_prefix)
    await ensure_topics(settings, bootstrap, topics)
    done = await sync_feeds(settings, bootstrap, topics, feeds)
    for url in done.written:
        print(f"written  {url}")
    for url in done.removed:
        print(f"removed  {url}")
    print(f"{len(done.written)} written, {len(done.removed)} removed, {done.unchanged} unchanged")
    return 0


def _last_poller(row: Row | None) -> str | None:
    return row.replica if row is not None else None


async def _listed_feeds(
    settings: Settings,
) -> tuple[list[FeedConfig], dict[str, FeedState], dict[str, str] | None]:
    """The feeds, their states and owners: from the cluster's tables when there is a
    cluster, else from the configuration file and this machine's state cache."""
    from .fetcher.feed_table import decode_feed, decode_state, partition_owners
    from .fetcher.state import FeedStateStore
    from .shared.kafka import Topics
    from .shared.tables import read_table

    if not settings.kafka_bootstrap_servers:
        path = settings.state_dir / "fetcher.sqlite3"
        states: dict[str, FeedState] = {}
        if path.exists():
            store = FeedStateStore(path)
            try:
                states = {s.feed_key: s for s in store.all()}
            finally:
                store.close()
        return list(load_file_config(settings.config_file).feeds), states, None
    bootstrap = settings.kafka_bootstrap_servers
    topics = Topics.with_prefix(settings.topic_prefix)
    table = await read_table(settings, bootstrap, topics.feeds)
    changelog = await read_table(settings, bootstrap, topics.fetcher_state)
    feeds = [
        feed
        for row in table.values()
        if row.value is not None and (feed := decode_feed(row.value)) is not None
    ]
    states = {
        url: state
        for url, row in changelog.items()
        if row.value is not None and (state := decode_state(row.value)) is not None
    }
    # The group's assignment where the broker describes it (Apache Kafka); else the
    # replica that wrote the feed's last state, which is its owner once it has polled.
    by_partition = await partition_owners(settings, bootstrap, topics.feeds)
    owners = {
        url: owner
        for url, row in table.items()
        if (owner := by_partition.get(row.partition) or _last_poller(changelog.get(url)))
    }
    return feeds, states, owners


def _replay(args: argparse.Namespace) -> int:
    import signal
    import threading

    from .demo.feeds import ReplayServer, load_replay

    outlets, items = load_replay()
    server = ReplayServer(outlets, items, step=args.step, host=args.host, port=args.port)
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    server.start()
    print(
        f"dohawatch replay: {len(items)} items from {len(outlets)} feeds on "
        f"http://{args.host}:{server.port}/<outlet>.xml ({', '.join(outlets)})",
        flush=True,
    )
    done.wait()
    server.stop()
    return 0


def _open_input(path: str) -> TextIO:
    return sys.stdin if path == "-" else open(path, encoding="utf-8")


def _classify(args: argparse.Namespace) -> int:
    from .classifier.engine import Classifier
    from .classifier.pack import load_pack

    classifier = Classifier(load_pack(args.pack))
    with _open_input(args.file) as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                result = classifier.classify(str(row.get("title", "")), str(row.get("summary", "")))
            except (json.JSONDecodeError, AttributeError) as exc:
                print(
                    f"dohawatch classify: line {number}: not a JSON object: {exc}", file=sys.stderr
                )
                return 2
            out = {
                "id": row.get("id"),
                "relevant": result.relevant,
                "relevance": result.relevance,
                "events": [e.type for e in result.events],
                "entities": [
                    e.model_dump(exclude={"evidence"}, exclude_none=True) for e in result.entities
                ],
                "evidence": {
                    "relevance": [s.model_dump() for s in result.relevance_evidence],
                    **{e.type: [s.model_dump() for s in e.evidence] for e in result.events},
                },
            }
            print(json.dumps(out, ensure_ascii=False), flush=False)
    sys.stdout.flush()
    return 0


def _labelled(path: str) -> list[Labelled]:
    from .classifier.evaluate import Labelled

    with _open_input(path) as lines:
        return [Labelled.from_json(json.loads(line)) for line in lines if line.strip()]


def _train(args: argparse.Namespace) -> int:
    from .classifier.evaluate import read_holdout
    from .classifier.pack import load_pack
    from .classifier.train import cross_validate, train

    items = _labelled(args.file)
    held_out = read_holdout(Path(args.holdout)) if args.holdout else frozenset()
    fit = [i for i in items if i.story not in held_out]
    rest = [i for i in items if i.story in held_out]
    pack = load_pack(args.pack)
    cv = cross_validate(fit, pack, folds=args.folds, seed=args.seed, c=args.c)
    stories = len({i.story for i in fit})
    print(
        f"== story-grouped cross-validation: {len(fit)} items, {stories} stories, "
        f"{cv.folds} folds, seed {args.seed}"
    )
    for name, report in (("rules alone", cv.rules), ("rules + learned", cv.learned)):
        print(f"-- {name}", *report.table(), sep="\n", end="\n\n")
    trained: dict[str, object] = {
        "file": Path(args.file).name,
        "items": len(fit),
        "stories": stories,
        "held_out_stories": len(held_out),
        "c": args.c,
        "cross_validation": {
            "folds": cv.folds,
            "seed": args.seed,
            "relevance_f1": round(cv.learned.relevance.f1, 4),
            "event_micro_f1": round(cv.learned.micro.f1, 4),
            "rules_alone": {
                "relevance_f1": round(cv.rules.relevance.f1, 4),
                "event_micro_f1": round(cv.rules.micro.f1, 4),
            },
        },
    }
    model = train(fit, pack, c=args.c, trained=trained)
    if rest:
        from .classifier.engine import Classifier
        from .classifier.evaluate import evaluate

        print(f"== held-out stories: {len(rest)} items, never trained on")
        for name, with_model in (("rules alone", None), ("rules + learned", model)):
            report = evaluate(Classifier(pack.model_copy(update={"learned": with_model})), rest)
            print(f"-- {name}", *report.table(), sep="\n", end="\n\n")
    out = Path(args.out or f"{pack.name}.model.json")
    out.write_text(model.model_dump_json() + "\n", encoding="utf-8")
    print(f"written: {out} (model {model.version}); name it in the pack as `model: {out.name}`")
    return 0


def _eval(args: argparse.Namespace) -> int:
    from .classifier.engine import Classifier
    from .classifier.evaluate import evaluate_parts, read_holdout
    from .classifier.pack import load_pack

    items = _labelled(args.file)
    held_out = read_holdout(Path(args.holdout)) if args.holdout else frozenset()
    pack = load_pack(args.pack)
    if args.rules_only:
        pack = pack.model_copy(update={"learned": None})
    parts = evaluate_parts(Classifier(pack), items, held_out)
    for name, report in parts.items():
        stories = len({i.story for i, *_ in report.wrong})
        print(f"== {name}: {report.items} items ({stories} stories with an error)")
        print(*report.table(), report.interval_line(), sep="\n", end="\n\n")
    # Each wrong item once: by part when the corpus is split, else the whole.
    listed = [name for name in parts if name != "all"] or ["all"]
    if args.wrong != "all":
        listed = [name for name in listed if name == args.wrong]
    for name in listed:
        print(f"== wrong, {name}:", *parts[name].wrong_lines(), sep="\n", end="\n\n")
    return 0


def _schemas(args: argparse.Namespace) -> int:
    from .schemas import write_schemas

    for path in write_schemas(Path(args.write)):
        print(path)
    return 0


def _broker(port: int) -> int:
    from .shared.broker import EmbeddedBroker
    from .shared.logs import log_event
    from .shared.runtime import install_signal_handlers

    async def go() -> int:
        broker = EmbeddedBroker(port=port)
        await broker.start()
        print(f"embedded broker on {broker.bootstrap} (in memory; Ctrl-C stops it)", flush=True)
        stop = asyncio.Event()
        install_signal_handlers(stop)
        exited = asyncio.create_task(broker.wait())
        stopping = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait([exited, stopping], return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
            await broker.stop()
        if stop.is_set():
            return 0
        # The broker process died under us: say so and exit, so a supervisor restarts it.
        log_event(
            log,
            "embedded_broker_exited",
            level=logging.ERROR,
            status="exited",
            exit_code=exited.result(),
        )
        return 1

    return asyncio.run(go())


def _reclassify(settings: Settings, args: argparse.Namespace) -> int:
    from .reclassify import parse_when, run

    try:
        since = parse_when(args.since) if args.since else None
        until = parse_when(args.until) if args.until else None
    except ValueError as exc:
        raise ConfigError(f"--since/--until: {exc}") from exc
    run(
        settings,
        load_file_config(settings.config_file),
        since=since,
        until=until,
        pack=args.pack,
        dry_run=args.dry_run,
        out=sys.stdout,
    )
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dohawatch",
        description="Watch news feeds for the Doha ceasefire and hostage talks and raise alerts. "
        "Settings come from DOHAWATCH_* environment variables (see README).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, text in [
        ("fetcher", "poll the configured feeds and publish new items"),
        ("classifier", "tag raw items with relevance, events and entities"),
        ("notifier", "turn tagged items into alerts"),
    ]:
        sub.add_parser(
            name, help=f"run the {name}: {text}", description=f"Run the {name} service: {text}."
        )
    sub.add_parser(
        "run",
        help="run all three services in one process",
        description="Run fetcher, classifier and notifier in one process on the "
        "configured Kafka, or on the embedded broker when none is configured.",
    )
    demo = sub.add_parser(
        "demo",
        help="the whole pipeline on bundled replay feeds",
        description="Start the embedded broker and a loopback server replaying "
        "bundled feeds from July 2025, run the plan, show each alert.",
    )
    demo.add_argument("--follow", action="store_true", help="keep running after the replay")
    replay = sub.add_parser(
        "replay",
        help="serve the demo's replay feeds over HTTP",
        description="Serve the bundled July 2025 replay feeds at /<outlet>.xml, "
        "revealing one item every --step seconds (the compose demo profile's feed server).",
    )
    replay.add_argument("--host", default="0.0.0.0", help="address to listen on")  # noqa: S104
    replay.add_argument("--port", type=int, default=8080)
    replay.add_argument("--step", type=float, default=5.0, help="seconds between items")
    feeds = sub.add_parser(
        "feeds",
        help="list the feeds with their state and owner, sync them, or import an OPML file",
        description="Inspect and manage the feed list: on a Kafka cluster, the feeds "
        "topic that fetcher replicas share; without one, DOHAWATCH_CONFIG_FILE.",
    )
    feeds_sub = feeds.add_subparsers(dest="feeds_command", required=True, metavar="ACTION")
    feeds_sub.add_parser(
        "list",
        help="each feed's status, last success, next poll, owner and URL",
        description="Each feed with its state: status, last success, next poll, the "
        "fetcher replica that polls it (on a Kafka cluster) and the URL it is polled at now.",
    )
    sync = feeds_sub.add_parser(
        "sync",
        help="write a configuration file's feeds to the feeds topic",
        description="Make the feeds topic hold exactly the feeds of FILE: write new and "
        "changed ones, remove the others. Fetcher replicas follow within a poll.",
    )
    sync.add_argument("file", type=Path, help="configuration file (its feeds: list)")
    opml = feeds_sub.add_parser(
        "import",
        help="print an OPML file's feeds as configuration YAML",
        description="Print the feeds of an OPML subscription list as a YAML `feeds:` "
        "list to paste into the configuration file.",
    )
    opml.add_argument("file", type=Path, help="OPML file")
    opml.add_argument("--tag", action="append", default=[], help="tag every feed (repeatable)")
    classify = sub.add_parser(
        "classify",
        help="classify JSON lines (id, title, summary)",
        description="Read JSON lines with id, title and summary; write "
        "one JSON line per input, in order, with the tags.",
    )
    classify.add_argument("file", nargs="?", default="-", help="input file, - for stdin")
    classify.add_argument("--pack", default="doha-talks", help="topic pack name or path")
    evaluate = sub.add_parser(
        "eval",
        help="score the classifier on labelled JSON lines",
        description="Print precision, recall and F1 for relevance and "
        "each event type, on the whole file and, with --holdout, on the tuned and "
        "held-out stories apart; then every wrongly classified item.",
    )
    evaluate.add_argument("file", help="labelled JSONL (id, title, summary, relevant, events)")
    evaluate.add_argument("--pack", default="doha-talks", help="topic pack name or path")
    evaluate.add_argument(
        "--holdout",
        help="file of held-out story ids: scored apart from the stories the pack was tuned on",
    )
    evaluate.add_argument(
        "--wrong",
        choices=["all", "tuned", "held-out", "none"],
        default="all",
        help="whose wrong items to print (while tuning rules, 'tuned' keeps the held-out unread)",
    )
    evaluate.add_argument(
        "--rules-only", action="store_true", help="leave out the pack's learned model"
    )
    training = sub.add_parser(
        "train",
        help="train the pack's learned model on labelled JSON lines",
        description="Fit the learned stage on labelled JSON lines (id, title, summary, "
        "relevant, events, story), print its story-grouped cross-validated scores beside "
        "the rules', and write the model as JSON. Needs the 'train' extra (scikit-learn).",
    )
    training.add_argument(
        "file", help="labelled JSONL (id, title, summary, relevant, events, story)"
    )
    training.add_argument("--pack", default="doha-talks", help="topic pack name or path")
    training.add_argument(
        "--holdout", help="file of story ids to leave out of training and score apart"
    )
    training.add_argument("--out", help="where to write the model (default: PACK.model.json)")
    training.add_argument("--folds", type=int, default=5, help="cross-validation folds")
    training.add_argument("--seed", type=int, default=0, help="seed of the fold shuffle")
    training.add_argument("--c", type=float, default=1.0, help="inverse regularisation strength")
    broker = sub.add_parser(
        "broker",
        help="run the embedded Kafka-compatible broker",
        description="Run the embedded broker (Tansu, in memory) in the foreground on 127.0.0.1.",
    )
    broker.add_argument("--port", type=int, default=9092)
    schemas = sub.add_parser(
        "schemas",
        help="write the event contracts' JSON Schemas",
        description="Generate JSON Schemas from the event models.",
    )
    schemas.add_argument("--write", default="schemas", help="directory to write into")
    reclassify = sub.add_parser(
        "reclassify",
        help="classify past news.raw with a pack: show or publish what changes",
        description="Read news.raw over a time range (Kafka timestamps), classify it with "
        "a topic pack, and compare with what news.classified holds: items that gain or "
        "lose relevance or an event type, with the evidence, and the alerts that would "
        "appear or disappear. Without --dry-run, publish the new records to "
        "news.classified.",
    )
    reclassify.add_argument("--since", help="from this ISO date or time (UTC unless given)")
    reclassify.add_argument("--until", help="up to this ISO date or time, excluded")
    reclassify.add_argument("--pack", help="a pack file or bundled name (default: the file's)")
    reclassify.add_argument(
        "--dry-run", action="store_true", help="print the differences, publish nothing"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``dohawatch`` console script."""
    args = _parser().parse_args(argv)
    try:
        settings = load_settings()
        level = settings.log_level
        if args.command == "demo" and "DOHAWATCH_LOG_LEVEL" not in os.environ:
            level = "WARNING"  # the demo shows alerts; per-poll logs would bury them
        configure_logging(level, settings.log_format, _secrets(settings))
        match args.command:
            case "fetcher" | "classifier" | "notifier":
                return _services(settings, [args.command])
            case "run":
                from .app import SERVICES

                return _services(settings, SERVICES)
            case "demo":
                return _demo(settings, args)
            case "replay":
                return _replay(args)
            case "feeds":
                return _feeds(settings, args)
            case "classify":
                return _classify(args)
            case "eval":
                return _eval(args)
            case "train":
                return _train(args)
            case "schemas":
                return _schemas(args)
            case "reclassify":
                return _reclassify(settings, args)
            case "broker":
                return _broker(args.port)
            case _:
                raise AssertionError(f"the parser accepted an unknown command {args.command!r}")
    except DohawatchError as exc:
        print(f"dohawatch: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `dohawatch classify ... | head`: the reader has gone
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
