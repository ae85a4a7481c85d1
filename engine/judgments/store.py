"""The judgment store: reviewers' relevance grades in a local SQLite database.

One row per (catalog, query, item_id, reviewer) holds the latest grade (0..3) and when it was
given (UTC, ISO 8601 with milliseconds and a trailing ``Z``, so text order is time order). A
grade is written the moment it is given; rating the same result again replaces the row when the
new time is not older than the stored one, so an import of an old CSV never overwrites newer
clicks.

Safe for several reviewers at once: the database uses WAL journal mode (readers never block the
writer), every call opens its own short-lived connection (so a store object can be shared by
threads), writes take the write lock up front (``BEGIN IMMEDIATE``) and wait up to
``BUSY_TIMEOUT_S`` for another writer instead of failing with "database is locked".

Queries and reviewer names are stored with white space collapsed; grades outside 0..3, empty
names and empty queries are refused with a ``ValueError`` that says what is wrong.
"""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from numbers import Integral
from pathlib import Path

from engine.paths import data_dir

GRADES = (0, 1, 2, 3)
GRADE_LABELS = {
    0: "not relevant",
    1: "related",
    2: "close (one detail off)",
    3: "exactly what was asked",
}
MAX_REVIEWER_CHARS = 100
MAX_TEXT_CHARS = 1000
BUSY_TIMEOUT_S = 30.0
DB_NAME = "judgments.db"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS judgments (
    catalog   TEXT NOT NULL,
    query     TEXT NOT NULL,
    item_id   TEXT NOT NULL,
    reviewer  TEXT NOT NULL,
    grade     INTEGER NOT NULL CHECK (grade BETWEEN 0 AND 3),
    judged_at TEXT NOT NULL,
    PRIMARY KEY (catalog, query, item_id, reviewer)
)
"""
_UPSERT = """
INSERT INTO judgments (catalog, query, item_id, reviewer, grade, judged_at)
VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (catalog, query, item_id, reviewer) DO UPDATE
SET grade = excluded.grade, judged_at = excluded.judged_at
WHERE excluded.judged_at >= judgments.judged_at
"""
_COLUMNS = "catalog, query, item_id, grade, reviewer, judged_at"
_SPACE = re.compile(r"\s+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def default_db_path() -> Path:
    """``<data folder>/judgments.db`` (``PIXELMATCH_DATA`` moves the data folder)."""
    return data_dir() / DB_NAME


# -- validation ----------------------------------------------------------------------------------
def clean_text(value: object, what: str, max_chars: int = MAX_TEXT_CHARS) -> str:
    """``value`` with control characters and runs of white space turned into one space."""
    if not isinstance(value, str):
        raise ValueError(f"{what} must be text, got {value!r}")
    text = _SPACE.sub(" ", _CONTROL.sub(" ", value)).strip()
    if not text:
        raise ValueError(f"{what} is empty")
    if len(text) > max_chars:
        raise ValueError(f"{what} is {len(text):,} characters long; the limit is {max_chars:,}")
    return text


def check_reviewer(name: object) -> str:
    """A reviewer name: non-empty text of at most ``MAX_REVIEWER_CHARS`` characters."""
    if isinstance(name, str) and not name.strip():
        raise ValueError("the reviewer name is empty: enter your name first")
    return clean_text(name, "the reviewer name", MAX_REVIEWER_CHARS)


def check_grade(grade: object) -> int:
    """A grade: a whole number 0, 1, 2 or 3."""
    if isinstance(grade, bool) or not isinstance(grade, Integral):
        raise ValueError(f"a grade must be a whole number from 0 to 3, got {grade!r}")
    if int(grade) not in GRADES:
        raise ValueError(f"a grade must be from 0 to 3, got {grade}")
    return int(grade)


def utc_now() -> str:
    """The current time, UTC, as stored (``2026-01-31T12:00:00.123Z``)."""
    return format_time(datetime.now(UTC))


def format_time(moment: datetime) -> str:
    """A datetime as stored: UTC, milliseconds, ``Z`` (naive datetimes are taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_time(value: object) -> str:
    """An ISO 8601 time (text or datetime) in the stored form; ``ValueError`` if it is not one."""
    if isinstance(value, datetime):
        return format_time(value)
    if not isinstance(value, str) or not value.strip():
        raise ValueError("judged_at is empty")
    try:
        return format_time(datetime.fromisoformat(value.strip()))
    except ValueError:
        raise ValueError(
            f"judged_at {value.strip()!r} is not an ISO 8601 time (e.g. 2026-01-31T12:00:00Z)"
        ) from None


@dataclass(frozen=True)
class Judgment:
    """One reviewer's grade for one result of one query."""

    catalog: str
    query: str
    item_id: str
    grade: int
    reviewer: str
    judged_at: str

    @classmethod
    def make(
        cls,
        catalog: object,
        query: object,
        item_id: object,
        grade: object,
        reviewer: object,
        judged_at: object | None = None,
    ) -> Judgment:
        """A validated judgment (``judged_at`` defaults to now); ``ValueError`` says what is bad."""
        return cls(
            catalog=clean_text(catalog, "the catalog name", 200),
            query=clean_text(query, "the query"),
            item_id=clean_text(item_id, "the item id", 200),
            grade=check_grade(grade),
            reviewer=check_reviewer(reviewer),
            judged_at=utc_now() if judged_at is None else parse_time(judged_at),
        )

    @property
    def key(self) -> tuple[str, str, str, str]:
        """(catalog, query, item_id, reviewer): what one row stands for."""
        return self.catalog, self.query, self.item_id, self.reviewer

    def as_row(self) -> tuple:
        return self.catalog, self.query, self.item_id, self.reviewer, self.grade, self.judged_at


# -- the store -------------------------------------------------------------------------------------
class JudgmentStore:
    """Reviewers' grades in a SQLite file (default ``data/judgments.db``); thread-safe."""

    def __init__(self, path: Path | str | None = None) -> None:
        self.path = Path(path) if path is not None else default_db_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._init_schema()

    def _init_schema(self) -> None:
        # Switching to WAL needs a moment alone with the file; another process creating the
        # same database at the same instant can make it fail at once, so retry briefly.
        deadline = time.monotonic() + BUSY_TIMEOUT_S
        while True:
            try:
                with self._connect() as con:
                    con.execute("PRAGMA journal_mode=WAL")
                    con.execute(_SCHEMA)
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        con = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        try:
            con.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            yield con
        finally:
            con.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._connect() as con:
            con.execute("BEGIN IMMEDIATE")
            try:
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")

    # -- writing ---------------------------------------------------------------------------------
    def rate(
        self,
        catalog: str,
        query: str,
        item_id: str,
        grade: int,
        reviewer: str,
        judged_at: object | None = None,
    ) -> Judgment:
        """Save one grade now (validated); returns the judgment as stored."""
        judgment = Judgment.make(catalog, query, item_id, grade, reviewer, judged_at)
        self.add_many([judgment])
        return judgment

    def add_many(self, judgments: Iterable[Judgment]) -> int:
        """Upsert judgments in one transaction; returns how many rows were written or replaced."""
        rows = [j.as_row() for j in judgments]
        if not rows:
            return 0
        with self._write() as con:
            before = con.total_changes
            con.executemany(_UPSERT, rows)
            return con.total_changes - before

    def delete(self, catalog: str, query: str, item_id: str, reviewer: str) -> bool:
        """Remove one reviewer's grade (a rating taken back); True if there was one."""
        key = (
            clean_text(catalog, "the catalog name", 200),
            clean_text(query, "the query"),
            clean_text(item_id, "the item id", 200),
            check_reviewer(reviewer),
        )
        with self._write() as con:
            cur = con.execute(
                "DELETE FROM judgments WHERE catalog=? AND query=? AND item_id=? AND reviewer=?",
                key,
            )
            return cur.rowcount > 0

    # -- reading ---------------------------------------------------------------------------------
    def judgments(
        self,
        catalog: str | None = None,
        query: str | None = None,
        reviewer: str | None = None,
    ) -> list[Judgment]:
        """Stored judgments, optionally of one catalog, query and/or reviewer."""
        where, params = [], []
        for column, value in (("catalog", catalog), ("query", query), ("reviewer", reviewer)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(_SPACE.sub(" ", _CONTROL.sub(" ", value)).strip())
        sql = f"SELECT {_COLUMNS} FROM judgments"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY catalog, query, item_id, reviewer"
        with self._connect() as con:
            return [Judgment(*row) for row in con.execute(sql, params)]

    def grades(self, catalog: str, query: str, reviewer: str) -> dict[str, int]:
        """``{item_id: grade}`` one reviewer gave for one query."""
        return {
            j.item_id: j.grade for j in self.judgments(catalog, query=query, reviewer=reviewer)
        }

    def reviewers(self, catalog: str | None = None) -> list[str]:
        """Names of everyone who has rated something (in ``catalog`` if given)."""
        return sorted({j.reviewer for j in self.judgments(catalog)})

    def count(self) -> int:
        """Number of stored rows."""
        with self._connect() as con:
            return int(con.execute("SELECT COUNT(*) FROM judgments").fetchone()[0])

    def journal_mode(self) -> str:
        """The database's journal mode (``wal``)."""
        with self._connect() as con:
            return str(con.execute("PRAGMA journal_mode").fetchone()[0])
