"""The event and review store: one SQLAlchemy interface over SQLite (WAL) or PostgreSQL.

``insert_events`` commits before it returns, so a caller that answers only afterwards never
acknowledges a verdict that is not durable. SQLite runs in WAL mode; with ``synchronous=NORMAL`` (the
default) a committed transaction survives the server being killed (``kill -9``: it is in the WAL, in
the OS's hands), with ``FULL`` it also survives a power cut, at one fsync per commit (group commit
shares it between concurrent requests). PostgreSQL commits as configured (fsync by default). The schema
is created and upgraded by Alembic (``migrate``). Inputs are kept as raw little-endian float32 bytes
with their shape, for the review queue and the exported dataset.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from fortify.types import FortifyError

REVIEW_STATES = ("pending", "accepted", "labelled", "rejected")
MIGRATIONS = Path(__file__).parent / "migrations"

metadata = sa.MetaData()
events = sa.Table(
    "events",
    metadata,
    sa.Column(
        "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True
    ),
    sa.Column("created_at", sa.Float(), nullable=False),
    sa.Column("request_id", sa.String(128), nullable=False),
    sa.Column("row", sa.Integer(), nullable=False),
    sa.Column("key_id", sa.String(64), nullable=False),
    sa.Column("model_name", sa.String(64), nullable=False),
    sa.Column("model_version", sa.String(32), nullable=False),
    sa.Column("label", sa.Integer(), nullable=False),
    sa.Column("confidence", sa.Float(), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("reasons", sa.JSON(), nullable=False),
    sa.Column("scores", sa.JSON(), nullable=False),
    sa.Column("latency_ms", sa.Float(), nullable=False),
    sa.Column("input", sa.LargeBinary(), nullable=True),
    sa.Column("input_shape", sa.JSON(), nullable=True),
    sa.Column("review_state", sa.String(16), nullable=True),
    sa.Column("review_label", sa.Integer(), nullable=True),
    sa.Column("reviewed_by", sa.String(64), nullable=True),
    sa.Column("reviewed_at", sa.Float(), nullable=True),
    sa.Column("review_note", sa.String(500), nullable=True),
)
alerts = sa.Table(
    "alerts",
    metadata,
    sa.Column(
        "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True
    ),
    sa.Column("rule", sa.String(128), nullable=False),
    sa.Column("metric", sa.String(128), nullable=False),
    sa.Column("value", sa.Float(), nullable=True),
    sa.Column("threshold", sa.Float(), nullable=True),
    sa.Column("client", sa.String(64), nullable=True),
    sa.Column("first_offending_at", sa.Float(), nullable=True),
    sa.Column("fired_at", sa.Float(), nullable=False),
    sa.Column("action", sa.String(32), nullable=True),
    sa.Column("detail", sa.JSON(), nullable=False),
)
_SUMMARY = [c for c in events.c if c.name != "input"]


def normalize_url(url: str) -> str:
    """``postgresql://`` and ``postgres://`` use psycopg 3; anything but SQLite and PostgreSQL is refused."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    if url.startswith(("sqlite://", "postgresql+psycopg://")):
        return url
    raise FortifyError(f"store URL must be sqlite:///path.db or postgresql://..., got {redact(url)!r}")


def redact(url: str) -> str:
    """``url`` with any password replaced by ``***``."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return "<unparseable URL>"


class Store:
    """Events, reviews and alerts in one database; thread-safe (one pooled connection per call)."""

    def __init__(self, url: str, *, sqlite_synchronous: str = "NORMAL") -> None:
        self.url = normalize_url(url)
        self.is_sqlite = self.url.startswith("sqlite")
        if self.is_sqlite:
            self._prepare_sqlite_file()
        try:
            self.engine: Engine = sa.create_engine(self.url, pool_pre_ping=not self.is_sqlite)
        except (sa.exc.ArgumentError, ImportError) as exc:
            raise FortifyError(f"cannot open store {redact(url)}: {exc}") from None
        if self.is_sqlite:
            sync = {"FULL": "FULL", "NORMAL": "NORMAL"}[sqlite_synchronous]

            @sa.event.listens_for(self.engine, "connect")
            def _pragmas(dbapi_conn: Any, _record: Any) -> None:
                cur = dbapi_conn.cursor()
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute(f"PRAGMA synchronous={sync}")
                cur.execute("PRAGMA busy_timeout=10000")
                cur.close()

    def _prepare_sqlite_file(self) -> None:
        path = sa.engine.make_url(self.url).database
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)

    def migrate(self) -> None:
        """Create or upgrade the schema to the newest Alembic revision (idempotent)."""
        from alembic import command
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        try:
            with self.engine.begin() as conn:
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
        except sa.exc.OperationalError as exc:
            raise FortifyError(
                f"cannot reach the store {redact(self.url)}: {exc.orig}".splitlines()[0]
            ) from None

    def close(self) -> None:
        """Release every pooled connection."""
        self.engine.dispose()

    # writes ----------------------------------------------------------------------------------

    def insert_events(self, rows: list[dict[str, Any]]) -> list[int]:
        """Insert ``rows`` (``events`` columns but ``id``) in one committed transaction; their ids."""
        if not rows:
            return []
        with self.engine.begin() as conn:
            result = conn.execute(events.insert().returning(events.c.id, sort_by_parameter_order=True), rows)
            return [int(r[0]) for r in result]

    def insert_alert(self, row: dict[str, Any]) -> int:
        """Insert one alert (columns of ``alerts`` but ``id``), committed; its id."""
        with self.engine.begin() as conn:
            return int(conn.execute(alerts.insert().returning(alerts.c.id), row).scalar_one())

    def review(self, event_id: int, state: str, label: int | None, by: str, note: str | None) -> bool:
        """Record a review of a pending item; ``False`` if it is not pending (missing or already reviewed)."""
        if state not in REVIEW_STATES[1:]:
            raise FortifyError(f"review state must be one of {REVIEW_STATES[1:]}, got {state!r}")
        values = {"review_state": state, "review_label": label, "reviewed_by": by, "reviewed_at": time.time()}
        with self.engine.begin() as conn:
            done = conn.execute(
                events.update()
                .where(events.c.id == event_id, events.c.review_state == "pending")
                .values(**values, review_note=note)
            )
            return done.rowcount == 1

    # reads -----------------------------------------------------------------------------------

    def get_event(self, event_id: int) -> dict[str, Any] | None:
        """One event with its input (``input`` as a float32 array shaped ``input_shape``, or ``None``)."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(events).where(events.c.id == event_id)).mappings().first()
        return None if row is None else _with_array(dict(row))

    def list_events(
        self,
        *,
        review_state: str | None = "pending",
        status: str | None = None,
        model_version: str | None = None,
        key_id: str | None = None,
        after_id: int = 0,
        limit: int = 50,
    ) -> list[dict[str, Any]]:
        """Events with ``id > after_id`` in id order, filtered; without their inputs (keyset pagination)."""
        query = sa.select(*_SUMMARY).where(events.c.id > after_id)
        if review_state == "reviewed":
            query = query.where(events.c.review_state.in_(REVIEW_STATES[1:]))
        elif review_state is not None:
            query = query.where(events.c.review_state == review_state)
        for column, value in (
            (events.c.status, status),
            (events.c.model_version, model_version),
            (events.c.key_id, key_id),
        ):
            if value is not None:
                query = query.where(column == value)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query.order_by(events.c.id).limit(limit)).mappings()]

    def count_events(self, *, review_state: str | None = None, request_ids: list[str] | None = None) -> int:
        """How many events (in a review state, or with one of ``request_ids``)."""
        query = sa.select(sa.func.count()).select_from(events)
        if review_state is not None:
            query = query.where(events.c.review_state == review_state)
        if request_ids is not None:
            query = query.where(events.c.request_id.in_(request_ids))
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def request_ids(self) -> set[str]:
        """Every request id in the store (for durability checks)."""
        with self.engine.connect() as conn:
            return {r[0] for r in conn.execute(sa.select(events.c.request_id).distinct())}

    def traffic(self, since: float, bucket_s: float) -> list[tuple[float, str, str, int]]:
        """``(bucket start, version, status, count)`` of events since ``since``, per ``bucket_s``."""
        bucket = sa.func.floor(events.c.created_at / bucket_s) * bucket_s
        query = (
            sa.select(bucket.label("t"), events.c.model_version, events.c.status, sa.func.count())
            .where(events.c.created_at >= since)
            .group_by("t", events.c.model_version, events.c.status)
            .order_by("t")
        )
        with self.engine.connect() as conn:
            return [(float(t), v, s, int(n)) for t, v, s, n in conn.execute(query)]

    def recent_scores(self, limit: int) -> list[dict[str, float]]:
        """The detector scores of the newest ``limit`` scored events."""
        query = (
            sa.select(events.c.scores).where(events.c.label >= 0).order_by(events.c.id.desc()).limit(limit)
        )
        with self.engine.connect() as conn:
            return [r[0] for r in conn.execute(query)]

    def recent_alerts(self, limit: int) -> list[dict[str, Any]]:
        """The newest ``limit`` alerts, newest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(alerts).order_by(alerts.c.id.desc()).limit(limit)).mappings()
            return [dict(r) for r in rows]

    def reviewed(self, batch: int = 500) -> Iterator[dict[str, Any]]:
        """Every accepted or labelled item with its input, in id order (the export's rows)."""
        after = 0
        while True:
            query = (
                sa.select(events)
                .where(
                    events.c.id > after,
                    events.c.review_state.in_(("accepted", "labelled")),
                    events.c.input.is_not(None),
                )
                .order_by(events.c.id)
                .limit(batch)
            )
            with self.engine.connect() as conn:
                rows = [dict(r) for r in conn.execute(query).mappings()]
            if not rows:
                return
            yield from (_with_array(r) for r in rows)
            after = rows[-1]["id"]


def encode_input(x: np.ndarray) -> bytes:
    """Raw little-endian float32 bytes of one input."""
    return np.ascontiguousarray(x, dtype="<f4").tobytes()


def _with_array(row: dict[str, Any]) -> dict[str, Any]:
    raw, shape = row.get("input"), row.get("input_shape")
    if raw is not None and shape is not None:
        array = np.frombuffer(bytes(raw), dtype="<f4")
        if array.size != int(np.prod(shape)):
            raise FortifyError(f"event {row['id']}: stored input does not match its shape {shape}")
        row["input"] = array.reshape(shape)
    else:
        row["input"] = None
    return row
