"""The validation report of an ingest: every problem counted, the first few listed, and the action.

Nothing is dropped silently: each row that is skipped or changed is counted under one problem code,
with its first ``MAX_EXAMPLES`` examples, and problems that make the catalog unusable are
``refused`` (the ingest stops before anything is written).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Action = Literal["fixed", "skipped", "refused"]
MAX_EXAMPLES = 10


@dataclass
class Problem:
    """One kind of problem found in an input file."""

    code: str  # e.g. "missing_image"
    file: str  # "catalog", "interactions", "images", ...
    action: Action
    message: str  # what was found and what was done, written for the user
    count: int = 0
    examples: list[str] = field(default_factory=list)


@dataclass
class ValidationReport:
    """Problems found while reading a catalog, and the row counts before and after."""

    problems: list[Problem] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    max_examples: int = MAX_EXAMPLES

    def add(
        self,
        code: str,
        file: str,
        action: Action,
        message: str,
        examples: list[Any] | None = None,
        count: int | None = None,
    ) -> None:
        """Record ``count`` occurrences (default: ``len(examples)``); zero counts are ignored."""
        examples = [str(e) for e in (examples or [])]
        n = len(examples) if count is None else int(count)
        if n == 0 and action != "refused":
            return
        self.problems.append(Problem(code, file, action, message, n, examples[: self.max_examples]))

    def refuse(self, code: str, file: str, message: str, examples: list[Any] | None = None):
        """Record a problem that stops the ingest."""
        self.add(code, file, "refused", message, examples, count=max(1, len(examples or [])))

    @property
    def refused(self) -> bool:
        return any(p.action == "refused" for p in self.problems)

    def count(self, code: str) -> int:
        """How many occurrences of ``code`` were recorded (0 when none)."""
        return sum(p.count for p in self.problems if p.code == code)

    def to_dict(self) -> dict[str, Any]:
        return {
            "refused": self.refused,
            "counts": self.counts,
            "problems": [asdict(p) for p in self.problems],
        }

    def to_text(self) -> str:
        """A human-readable report (the CLI prints it)."""
        lines = ["Rows: " + ", ".join(f"{k} {v:,}" for k, v in self.counts.items())]
        if not self.problems:
            lines.append("No problems found.")
        for p in self.problems:
            lines.append(f"- [{p.action}] {p.file}: {p.message} ({p.count:,})")
            shown = ", ".join(p.examples)
            if shown:
                extra = p.count - len(p.examples)
                more = f" and {extra:,} more" if extra > 0 else ""
                lines.append(f"    e.g. {shown}{more}")
        return "\n".join(lines)


class IngestError(ValueError):
    """The input cannot be ingested; ``report`` says why (shown as-is in the CLI and the UI)."""

    def __init__(self, message: str, report: ValidationReport | None = None):
        super().__init__(message)
        self.report = report
