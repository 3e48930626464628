"""The delivery ledger: a durable queue per route and the record of what each
route has been told, in SQLite.

A revision is written ``pending`` once the alerts topic has acknowledged it and
before the input offsets are committed; a worker marks it ``done`` after its
sink accepted it. So a crash before the write replays the input and enqueues
again (the unique key drops the duplicate), a crash after it finds the row
pending at start-up and delivers it, and a revision marked done is never sent
to the same route again. The one window left is a sink that accepted a request
whose answer never arrived; receivers can recognise that resend by its id
(``X-Dohawatch-Delivery``, the mail's ``Message-ID``).

Every row belongs to the partition of ``news.classified`` its story came from,
and the rows of one (route, alert) travel together as one record of the
``notifier.ledger`` changelog (``record``/``load``): written when a revision is
queued (before the input is committed) and whenever a delivery is closed or put
off, and read back when the group assigns the partition (:mod:`.changelog`).
A worker only takes the rows of the partitions its replica owns.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ValidationError

from dohawatch.shared.events import Alert

from .routes import Notified
from .store import open_cache
from .stories import outlet_count

__all__ = ["DeliveryLedger", "Pending", "ledger_key"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS deliveries (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    partition INTEGER NOT NULL,
    route TEXT NOT NULL,
    alert_id TEXT NOT NULL,
    revision INTEGER NOT NULL,
    reason TEXT NOT NULL,
    alert TEXT NOT NULL,
    fetched_at REAL NOT NULL,
    enqueued_at REAL NOT NULL,
    due_at REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL DEFAULT 'pending',
    last_error TEXT,
    finished_at REAL,
    UNIQUE (route, alert_id, revision)
);
CREATE INDEX IF NOT EXISTS deliveries_pending ON deliveries (route, status, seq);
CREATE TABLE IF NOT EXISTS notified (
    partition INTEGER NOT NULL,
    route TEXT NOT NULL,
    alert_id TEXT NOT NULL,
    revision INTEGER NOT NULL,
    severity_rank INTEGER NOT NULL,
    outlets INTEGER NOT NULL,
    thread TEXT,
    PRIMARY KEY (route, alert_id)
);
"""
_DELIVERY_COLUMNS = (
    "revision, reason, alert, fetched_at, enqueued_at, due_at, attempts, status, "
    "last_error, finished_at"
)


class _Delivery(BaseModel):
    revision: int
    reason: str
    alert: str  # the revision's Alert as JSON, as the cache holds it
    fetched_at: float
    enqueued_at: float
    due_at: float
    attempts: int
    status: str
    last_error: str | None
    finished_at: float | None


class _Notified(BaseModel):
    revision: int
    severity_rank: int
    outlets: int
    thread: str | None


class _LedgerRecord(BaseModel):
    """Everything the ledger holds about one alert on one route: a changelog value."""

    route: str
    alert_id: str
    notified: _Notified | None
    deliveries: list[_Delivery]


def ledger_key(route: str, alert_id: str) -> str:
    """The changelog key of one alert on one route (route names have no ``/``)."""
    return f"{route}/{alert_id}"


def _owned(partitions: Collection[int] | None) -> str:
    """An SQL condition on ``partition``: any when None."""
    if partitions is None:
        return "1"
    return f"partition IN ({','.join(str(int(p)) for p in partitions)})"


@dataclass(frozen=True, slots=True)
class Pending:
    """A revision waiting for its route's worker."""

    seq: int
    route: str
    alert: Alert
    reason: str
    fetched_at: float  # when the item that made the revision was fetched (Unix time)
    enqueued_at: float
    due_at: float
    attempts: int


class DeliveryLedger:
    """Deliveries keyed by (route, alert id, revision), in one SQLite file."""

    def __init__(self, path: Path) -> None:
        self._db = open_cache(path, _SCHEMA)
        self.owned: frozenset[int] | None = None  # the partitions workers take; None: all

    def last_notified(self, route: str, alert_id: str) -> Notified | None:
        """What ``route`` was last queued about ``alert_id``."""
        row = self._db.execute(
            "SELECT revision, severity_rank, outlets FROM notified "
            "WHERE route = ? AND alert_id = ?",
            (route, alert_id),
        ).fetchone()
        return Notified(*row) if row else None

    def enqueue(
        self,
        route: str,
        alert: Alert,
        reason: str,
        *,
        partition: int,
        fetched_at: float,
        now: float,
        due: float,
    ) -> bool:
        """Queue one revision for ``route``; False if it was queued before."""
        with self._db:
            cursor = self._db.execute(
                "INSERT OR IGNORE INTO deliveries (partition, route, alert_id, revision, reason, "
                "alert, fetched_at, enqueued_at, due_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    partition,
                    route,
                    alert.alert_id,
                    alert.revision,
                    reason,
                    alert.model_dump_json(),
                    fetched_at,
                    now,
                    due,
                ),
            )
            self._db.execute(
                "INSERT INTO notified (partition, route, alert_id, revision, severity_rank, "
                "outlets) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (route, alert_id) DO UPDATE SET "
                "revision = excluded.revision, severity_rank = excluded.severity_rank, "
                "outlets = excluded.outlets WHERE excluded.revision > notified.revision",
                (
                    partition,
                    route,
                    alert.alert_id,
                    alert.revision,
                    alert.severity.rank,
                    outlet_count(alert),
                ),
            )
        return cursor.rowcount == 1

    def _pending(
        self, where: str, args: tuple[object, ...], limit: int = -1, order: str = "seq"
    ) -> list[Pending]:
        rows = self._db.execute(
            "SELECT seq, route, alert, reason, fetched_at, enqueued_at, due_at, attempts "
            f"FROM deliveries WHERE status = 'pending' AND {_owned(self.owned)} AND {where} "
            f"ORDER BY {order} "
            f"LIMIT {limit:d}",
            args,
        ).fetchall()
        return [
            Pending(seq, route, Alert.model_validate_json(alert), reason, fetched, enq, due, att)
            for seq, route, alert, reason, fetched, enq, due, att in rows
        ]

    def head(self, route: str, now: float) -> Pending | None:
        """The route's next revision: the oldest due by ``now`` (revisions go out in
        order, but one waiting out a retry holds back none that are due), else the
        one due first."""
        rows = self._pending("route = ? AND due_at <= ?", (route, now), limit=1)
        if not rows:
            rows = self._pending("route = ?", (route,), limit=1, order="due_at, seq")
        return rows[0] if rows else None

    def due(self, route: str, now: float) -> list[Pending]:
        """Every pending revision of ``route`` due by ``now`` (a digest's content)."""
        return self._pending("route = ? AND due_at <= ?", (route, now))

    def pending_for(self, route: str, alert_id: str) -> list[Pending]:
        """Every pending revision of one alert on ``route``, oldest first."""
        return self._pending("route = ? AND alert_id = ?", (route, alert_id), order="revision, seq")

    def thread(self, route: str, alert_id: str) -> str | None:
        """The reference of the story's first delivery on ``route``."""
        row = self._db.execute(
            "SELECT thread FROM notified WHERE route = ? AND alert_id = ?", (route, alert_id)
        ).fetchone()
        return row[0] if row else None

    def finish(
        self,
        items: list[Pending],
        status: str,
        now: float,
        *,
        error: str | None = None,
        thread: str | None = None,
    ) -> None:
        """Close ``items`` as ``done``, ``dead`` or ``superseded``; remember the thread."""
        with self._db:
            self._db.executemany(
                "UPDATE deliveries SET status = ?, finished_at = ?, last_error = ? WHERE seq = ?",
                [(status, now, error, item.seq) for item in items],
            )
            if thread is not None:
                for item in items:
                    self._db.execute(
                        "UPDATE notified SET thread = ? WHERE route = ? AND alert_id = ? "
                        "AND thread IS NULL",
                        (thread, item.route, item.alert.alert_id),
                    )

    def retry_later(self, items: list[Pending], due: float, error: str) -> None:
        """Count a failed attempt on ``items`` and hold them until ``due``."""
        with self._db:
            self._db.executemany(
                "UPDATE deliveries SET attempts = attempts + 1, due_at = ?, last_error = ? "
                "WHERE seq = ?",
                [(due, error, item.seq) for item in items],
            )

    def depth(self, route: str) -> int:
        """How many revisions wait for ``route``."""
        row = self._db.execute(
            "SELECT count(*) FROM deliveries WHERE route = ? AND status = 'pending' "
            f"AND {_owned(self.owned)}",
            (route,),
        ).fetchone()
        return int(row[0])

    def partition_of(self, route: str, alert_id: str) -> int | None:
        """The partition the rows of ``alert_id`` on ``route`` belong to."""
        row = self._db.execute(
            "SELECT partition FROM notified WHERE route = ? AND alert_id = ?", (route, alert_id)
        ).fetchone()
        return int(row[0]) if row else None

    def record(self, route: str, alert_id: str) -> bytes:
        """The changelog value of one alert on one route: its notified row and every
        delivery row, whatever their status."""
        notified = self._db.execute(
            "SELECT revision, severity_rank, outlets, thread FROM notified "
            "WHERE route = ? AND alert_id = ?",
            (route, alert_id),
        ).fetchone()
        rows = self._db.execute(
            f"SELECT {_DELIVERY_COLUMNS} FROM deliveries WHERE route = ? AND alert_id = ? "
            "ORDER BY seq",
            (route, alert_id),
        ).fetchall()
        names = [n.strip() for n in _DELIVERY_COLUMNS.split(",")]
        return (
            _LedgerRecord(
                route=route,
                alert_id=alert_id,
                notified=_Notified(**dict(zip(_Notified.model_fields, notified, strict=True)))
                if notified
                else None,
                deliveries=[_Delivery(**dict(zip(names, row, strict=True))) for row in rows],
            )
            .model_dump_json()
            .encode()
        )

    def replace_partition(self, partition: int, records: Mapping[str, bytes]) -> int:
        """Make ``partition`` hold exactly the rows of ``records`` (changelog key →
        value); returns how many values were no ledger record (skipped)."""
        loaded, invalid = [], 0
        for value in records.values():
            try:
                loaded.append(_LedgerRecord.model_validate_json(value))
            except ValidationError:
                invalid += 1
        # Rows go in by the time they were queued, so each route keeps its order.
        rows = sorted(
            ((r, d) for r in loaded for d in r.deliveries),
            key=lambda rd: (rd[1].enqueued_at, rd[0].alert_id, rd[1].revision),
        )
        with self._db:
            self._db.execute("DELETE FROM deliveries WHERE partition = ?", (partition,))
            self._db.execute("DELETE FROM notified WHERE partition = ?", (partition,))
            self._db.executemany(
                f"INSERT OR REPLACE INTO deliveries (partition, route, alert_id, "
                f"{_DELIVERY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(partition, r.route, r.alert_id, *d.model_dump().values()) for r, d in rows],
            )
            self._db.executemany(
                "INSERT OR REPLACE INTO notified (partition, route, alert_id, revision, "
                "severity_rank, outlets, thread) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (partition, r.route, r.alert_id, *r.notified.model_dump().values())
                    for r in loaded
                    if r.notified is not None
                ],
            )
        return invalid

    def counts(self) -> dict[tuple[str, str], int]:
        """Deliveries by (route, status): what the demo summary and tests read."""
        rows = self._db.execute(
            "SELECT route, status, count(*) FROM deliveries GROUP BY route, status"
        ).fetchall()
        return {(route, status): n for route, status, n in rows}

    def close(self) -> None:
        """Close the database."""
        self._db.close()
