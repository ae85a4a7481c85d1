"""Judgments as CSV: export, and import that reports every bad row instead of dropping it.

Format: UTF-8 (a byte-order mark is accepted), a header row, and these columns in any order
(extra columns are ignored)::

    catalog,query,item_id,grade,reviewer,judged_at
    demo,navy polka dot backpack,i000123,3,Ann,2026-01-31T12:00:00.000Z

``grade`` is a whole number 0..3 (``2.0`` is accepted as 2); ``judged_at`` an ISO 8601 time
(without a zone it is taken as UTC). A file without one of the columns is refused as a whole; a
row that fails validation is counted and reported with its line number and reason, and the
other rows are still read. Several reviewers are combined into one grade per result by
:mod:`engine.judgments.qrels` (lower median) when the file is used as ground truth.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from engine.judgments.store import Judgment, JudgmentStore

COLUMNS = ("catalog", "query", "item_id", "grade", "reviewer", "judged_at")
LISTED_BAD_ROWS = 10


@dataclass(frozen=True)
class BadRow:
    """A CSV row that was not read, and why."""

    line: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


@dataclass
class CsvRead:
    """What reading a judgments CSV found: the good judgments and every bad row."""

    judgments: list[Judgment] = field(default_factory=list)
    bad: list[BadRow] = field(default_factory=list)
    written: int | None = None  # rows stored by import_csv

    @property
    def rows(self) -> int:
        return len(self.judgments) + len(self.bad)

    def summary(self, listed: int = LISTED_BAD_ROWS) -> str:
        """One paragraph: rows read, rows refused, and the first ``listed`` reasons."""
        text = f"{self.rows} row(s): {len(self.judgments)} valid, {len(self.bad)} refused"
        if self.written is not None:
            text += f", {self.written} stored"
        if self.bad:
            shown = "; ".join(str(b) for b in self.bad[:listed])
            more = f"; … and {len(self.bad) - listed} more" if len(self.bad) > listed else ""
            text += f". Refused: {shown}{more}"
        return text + "."


def _parse_grade(text: str | None) -> int:
    value = (text or "").strip()
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"grade {value!r} is not a number from 0 to 3") from None
    if not number.is_integer():
        raise ValueError(f"grade {value!r} is not a whole number from 0 to 3")
    return int(number)


def read_csv_text(text: str) -> CsvRead:
    """Parse judgments from CSV text (see module for the format)."""
    reader = csv.DictReader(io.StringIO(text.removeprefix("\ufeff"), newline=""))
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise ValueError(
            f"the judgments CSV lacks column(s) {', '.join(missing)}; "
            f"expected a header row with {','.join(COLUMNS)}"
        )
    reader.fieldnames = header
    result = CsvRead()
    for row in reader:
        line = reader.line_num
        n_fields = sum(v is not None for k, v in row.items() if k is not None)
        n_fields += len(row.get(None) or [])
        if n_fields != len(header):
            result.bad.append(BadRow(line, f"has {n_fields} field(s), expected {len(header)}"))
            continue
        if not any((row[c] or "").strip() for c in COLUMNS):
            result.bad.append(BadRow(line, "the row is empty"))
            continue
        try:
            result.judgments.append(
                Judgment.make(
                    row["catalog"],
                    row["query"],
                    row["item_id"],
                    _parse_grade(row["grade"]),
                    row["reviewer"],
                    row["judged_at"],
                )
            )
        except ValueError as exc:
            result.bad.append(BadRow(line, str(exc)))
    return result


def read_csv(path: Path | str) -> CsvRead:
    """Parse a judgments CSV file; ``ValueError`` if it is not UTF-8 or lacks a column."""
    try:
        text = Path(path).read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path} is not UTF-8 text (byte {exc.start})") from None
    return read_csv_text(text)


def import_csv(store: JudgmentStore, text: str) -> CsvRead:
    """Store the valid rows of CSV text (newest grade per result wins); report the bad ones."""
    result = read_csv_text(text)
    result.written = store.add_many(result.judgments)
    return result


def to_csv_text(judgments: Iterable[Judgment]) -> str:
    """Judgments as CSV text with the header row."""
    buf = io.StringIO(newline="")
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(COLUMNS)
    for j in judgments:
        writer.writerow([j.catalog, j.query, j.item_id, j.grade, j.reviewer, j.judged_at])
    return buf.getvalue()


def write_csv(judgments: Iterable[Judgment], path: Path | str) -> Path:
    """Write judgments to a CSV file (UTF-8)."""
    path = Path(path)
    path.write_text(to_csv_text(judgments), encoding="utf-8", newline="")
    return path
