"""Progress reporting: the non-terminal line reporter's format and throttling (fake clock, fake
stream), the reporter choice, step prefixes and the end-of-build time table."""

from __future__ import annotations

import io
from collections.abc import Iterator

from engine.pipeline.timings import step_table
from engine.progress import bar_progress, no_progress, progress_for, with_prefix
from engine.progress_lines import LineProgress, format_duration, format_line, format_rate


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def ticking(clock: FakeClock, items: list, seconds_each: float) -> Iterator:
    """Yield ``items``, each one taking ``seconds_each`` of fake time."""
    for x in items:
        clock.t += seconds_each
        yield x


def run(items: list, seconds_each: float, total: int | None = None, **kw) -> list[str]:
    clock, out = FakeClock(), io.StringIO()
    reporter = LineProgress(out, clock=clock)
    total = len(items) if total is None else total
    consumed = list(reporter(ticking(clock, items, seconds_each), total, "[s] do", **kw))
    assert consumed == items  # the reporter passes every item through, in order
    return out.getvalue().splitlines()


def test_format_duration_and_rate() -> None:
    assert format_duration(0.4) == "0 s"
    assert format_duration(75) == "1 min 15 s"
    assert format_duration(3725) == "1 h 02 min"
    assert format_rate(1234.0, "texts") == "1,234/s"
    assert format_rate(4.25, "texts") == "4.2/s"
    assert format_rate(0.08, "models") == "12.5 s/model"  # one model takes 12.5 s
    assert format_rate(0.5, "batches") == "2.0 s/batch"
    assert format_rate(0.5, "steps") == "2.0 s/step"
    assert format_rate(0.5, "MB") == "2.0 s/MB"


def test_line_format_has_count_percent_rate_and_time_left() -> None:
    line = format_line("[sbert] encode items", 8_000, 20_000, "texts", 50.0)
    assert line == "[sbert] encode items 8,000/20,000 texts 40 % · 160/s · ~1 min 15 s left"
    end = format_line("[sbert] encode items", 20_000, 20_000, "texts", 125.0, final=True)
    assert end == "[sbert] encode items 20,000/20,000 texts · 160/s · done in 2 min 05 s"


def test_fast_loop_prints_only_its_final_line() -> None:
    lines = run(list(range(1000)), 0.001)  # 1 s in all: under the 5 s minimum interval
    assert lines == ["[s] do 1,000/1,000 it · 1,000/s · done in 1 s"]


def test_lines_are_at_least_five_seconds_and_ten_percent_apart() -> None:
    lines = run(list(range(100)), 1.0)  # 100 s: 1 % per second
    progress, final = lines[:-1], lines[-1]
    # Due after 5 s, but only once another 10 % is done: at 10 %, 20 %, ..., 90 %.
    assert [ln.split(" it ")[1].split(" %")[0] for ln in progress] == [
        str(p) for p in range(10, 100, 10)
    ]
    assert progress[0] == "[s] do 10/100 it 10 % · 1.0/s · ~1 min 30 s left"
    assert final == "[s] do 100/100 it · 1.0/s · done in 1 min 40 s"


def test_slow_loop_gets_a_heartbeat_every_thirty_seconds() -> None:
    lines = run(list(range(100)), 10.0, total=1000)  # 1 % every 100 s: never 10 % per 30 s
    progress = lines[:-1]
    assert len(progress) == 33  # 1,000 s of fake time, one line per 30 s
    assert progress[0].startswith("[s] do 3/1,000 it 0 % · 10.0 s/it · ~")
    assert progress[0].endswith("left")


def test_batches_count_their_items_with_a_unit() -> None:
    batches = [list(range(100))] * 10
    lines = run(batches, 2.0, total=1000, unit="texts", size=len)
    assert lines[0] == "[s] do 300/1,000 texts 30 % · 50/s · ~14 s left"
    assert lines[-1] == "[s] do 1,000/1,000 texts · 50/s · done in 20 s"


def test_unknown_total_reports_count_and_rate_only() -> None:
    lines = run(list(range(20)), 1.0, total=0)
    assert lines[0] == "[s] do 5 it · 1.0/s"
    assert lines[-1] == "[s] do 20 it · 1.0/s · done in 20 s"


class Stream(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


def test_reporter_is_lines_off_a_terminal_and_a_bar_on_one() -> None:
    assert isinstance(progress_for(Stream(False)), LineProgress)
    assert not isinstance(progress_for(Stream(True)), LineProgress)
    bar_out = Stream(True)
    assert list(bar_progress(bar_out)(iter([[1, 2], [3]]), 3, "x", unit="t", size=len)) == [
        [1, 2],
        [3],
    ]


def test_prefix_and_silent_default() -> None:
    seen = []

    def spy(it, total, desc, **kw):
        seen.append((total, desc, kw))
        return it

    assert list(with_prefix(spy, "[sbert]")([1, 2], 2, "encode", unit="texts")) == [1, 2]
    assert seen == [(2, "[sbert] encode", {"unit": "texts"})]
    assert list(no_progress([1], 1, "x", unit="y", size=len)) == [1]


def test_step_table_lists_every_step_and_the_total() -> None:
    manifest = {
        "build_seconds": 100.0,
        "steps": {
            "world": {"seconds": 60.0, "skipped": False, "info": {}},
            "lexical": {"seconds": 9.0, "skipped": True, "info": {}},
            "recommend": {"seconds": 0.1, "skipped": False, "info": {"unavailable": "no data"}},
            "sbert": {"seconds": 39.5, "skipped": False, "info": {}},
        },
    }
    assert step_table(manifest) == [
        "step       status        seconds  share",
        "world      built            60.0   60 %",
        "lexical    up-to-date        0.0      –",
        "recommend  unavailable       0.1      –",
        "sbert      built            39.5   40 %",
        "total                      100.0  100 %",
    ]


def test_step_table_of_steps_run_side_by_side_adds_the_wall_time() -> None:
    manifest = {
        "build_seconds": 50.0,
        "machine": {"jobs": 2},
        "steps": {
            "world": {"seconds": 30.0, "skipped": False, "info": {}},
            "sbert": {"seconds": 45.0, "skipped": False, "info": {}},
        },
    }
    assert step_table(manifest) == [
        "step   status        seconds  share",
        "world  built            30.0   40 %",
        "sbert  built            45.0   60 %",
        "total                   75.0  100 %",
        "wall                    50.0         (steps side by side on 2 cores)",
    ]
