"""The table at the end of ``make bench``: each benchmark records its headline rows here as it prints them.

A row is one path of issue #17's table (or another headline figure): what was measured, its figure, the baseline
measured in the same run, the ratio between them and the goal as words. ``python -m bench`` prints every row
recorded by every benchmark at the end, so one screen holds the run's figures next to their goals; a benchmark run
alone (``python -m bench.school``) prints its own rows at its end as well.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

__all__ = ["Load", "Row", "row", "rows", "table"]


@dataclass(frozen=True)
class Row:
    bench: str
    path: str
    figure: str
    baseline: str
    ratio: float | None
    goal: str


_rows: list[Row] = []


class Load:
    """The machine's load average (1 minute, the bench's own processes included) from when it was made to when it
    is said: a row says the load it was measured under instead of calling the machine shared or quiet."""

    def __init__(self) -> None:
        self.start = os.getloadavg()[0]

    def words(self) -> str:
        return f"load {self.start:.1f} at the start, {os.getloadavg()[0]:.1f} at the end on {os.cpu_count()} cores"


def row(bench: str, path: str, figure: str, baseline: str, ratio: float | None, goal: str) -> Row:
    """Record one headline figure; ``ratio`` is figure / baseline as the goal reads it (None: no baseline)."""
    recorded = Row(bench, path, figure, baseline, ratio, goal)
    _rows.append(recorded)
    return recorded


def rows(bench: str | None = None) -> list[Row]:
    return [r for r in _rows if bench is None or r.bench == bench]


def table(selected: list[Row] | None = None) -> str:
    selected = rows() if selected is None else selected
    lines = ["| bench | path | figure | baseline (same run) | ratio | goal |", "|---|---|---|---|---|---|"]
    for r in selected:
        ratio = "—" if r.ratio is None else f"{r.ratio:.2f}x"
        lines.append(f"| {r.bench} | {r.path} | {r.figure} | {r.baseline} | {ratio} | {r.goal} |")
    return "\n".join(lines)
