"""Timing helpers shared by the benchmarks: interleaved rounds, medians, tables.

The machine these run on is shared and noisy, so a benchmark never compares
numbers taken minutes apart. Every case runs one short batch per round, the
rounds cycle through all cases (in a different order each round), and what
is reported is the median over rounds. Ratios between two cases are taken
within each round and then the median is taken, so a slow spell that hits a
whole round cancels out of the ratio.

A case is anything that can run ``n`` operations and say how long they took
in nanoseconds: a Python callable (``python_batch``) or a batch sent to
another process (the node rows).
"""

from __future__ import annotations

import gc
import itertools
import os
import platform
import random
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

# Runs n operations and returns the elapsed nanoseconds.
BatchTimer = Callable[[int], int]


def python_batch(op: Callable[[], object]) -> BatchTimer:
    """A batch timer for a zero-argument callable; the GC is paused, as timeit does."""

    def batch(n: int) -> int:
        loop = itertools.repeat(None, n)
        gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            start = time.perf_counter_ns()
            for _ in loop:
                op()
            return time.perf_counter_ns() - start
        finally:
            if gc_was_enabled:
                gc.enable()

    return batch


@dataclass
class Case:
    """One row: a name, how to time it, or why it was skipped."""

    name: str
    batch: BatchTimer | None = None
    skip: str | None = None
    n: int = 0  # operations per batch, set by calibrate()
    samples: list[float] = field(default_factory=list)  # µs/op, one per round

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def best(self) -> float:
        """The fastest round: roughly what a quiet machine would show."""
        return min(self.samples)

    @property
    def spread(self) -> float:
        """Interquartile range relative to the median: how noisy the rounds were."""
        if len(self.samples) < 4:
            return 0.0
        q1, _, q3 = statistics.quantiles(self.samples, n=4)
        return (q3 - q1) / self.median


def calibrate(case: Case, batch_seconds: float) -> None:
    """Pick a batch size that takes about ``batch_seconds``; this also warms the case up."""
    assert case.batch is not None
    n = 1
    while True:
        elapsed = case.batch(n)
        if elapsed >= batch_seconds * 1e9 / 4 or n >= 1 << 24:
            break
        n *= 4 if elapsed < batch_seconds * 1e9 / 64 else 2
    # The fastest of a few more tries: a burst of load from elsewhere during
    # calibration would otherwise shrink every batch of this case.
    per_op = min([elapsed] + [case.batch(n) for _ in range(3)]) / n
    case.n = max(1, round(batch_seconds * 1e9 / per_op))


def run_interleaved(
    cases: Sequence[Case],
    *,
    rounds: int,
    batch_seconds: float,
    seed: int = 0,
    max_seconds: float | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Fill each live case's ``samples`` with one µs/op per round; returns the rounds run.

    ``max_seconds`` stops early (after at least 5 rounds) when a loaded
    machine makes the calibrated batches run long, so a run keeps its budget.
    """
    started = time.monotonic()
    live = [case for case in cases if case.skip is None and case.batch is not None]
    for case in live:
        calibrate(case, batch_seconds)
    order = list(live)
    shuffle = random.Random(seed).shuffle
    done = 0
    while done < rounds:
        shuffle(order)  # no case always runs right after the same neighbour
        gc.collect()
        for case in order:
            assert case.batch is not None
            case.samples.append(case.batch(case.n) / case.n / 1000)
        done += 1
        if progress is not None:
            progress(done, rounds)
        if max_seconds is not None and done >= 5 and time.monotonic() - started > max_seconds:
            break
    return done


def paired_ratio(numerator: Case, denominator: Case) -> float:
    """Median over rounds of numerator/denominator measured in the same round."""
    return statistics.median(
        a / b for a, b in zip(numerator.samples, denominator.samples, strict=True)
    )


def rounds_for(budget_seconds: float, live_cases: int, batch_seconds: float) -> int:
    """How many rounds fit the time budget (at least 5, so a median means something)."""
    per_round = max(1, live_cases) * batch_seconds
    return max(5, int(budget_seconds / per_round))


def format_us(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def markdown_table(
    headers: Sequence[str], rows: Sequence[Sequence[str]], align: str | None = None
) -> str:
    """A GitHub markdown table, padded so it also reads well in a terminal.

    ``align`` has one letter per column: ``l`` or ``r``.
    """
    align = align or "l" * len(headers)
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]

    def line(cells: Sequence[str]) -> str:
        padded = [
            str(cell).rjust(width) if how == "r" else str(cell).ljust(width)
            for cell, width, how in zip(cells, widths, align, strict=True)
        ]
        return "| " + " | ".join(padded) + " |"

    rule = (
        "|"
        + "|".join(
            "-" * (width + 1) + ":" if how == "r" else "-" * (width + 2)
            for width, how in zip(widths, align, strict=True)
        )
        + "|"
    )
    return "\n".join([line(headers), rule, *(line(row) for row in rows)])


def machine_summary() -> str:
    """CPU count, platform and load: enough to judge how noisy a run may have been."""
    try:
        load = "load average {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())
    except OSError:
        load = "load average unavailable"
    return f"{os.cpu_count()} CPUs, {platform.platform()}, {load}"


# In a results file, everything from this line on is written by hand
# (analysis, conclusions) and survives the next run.
NOTES_MARKER = "<!-- hand-written notes below: kept when the benchmark rewrites this file -->"


def write_markdown(path: Path, title: str, sections: Sequence[str]) -> None:
    """Write ``# title`` and the sections, separated by blank lines.

    Hand-written notes after ``NOTES_MARKER`` in an existing file are kept.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    body = "\n\n".join(section.strip("\n") for section in sections)
    notes = ""
    if path.exists():
        old = path.read_text(encoding="utf-8")
        at = old.find(NOTES_MARKER)
        if at != -1:
            notes = "\n" + old[at:].rstrip("\n") + "\n"
    path.write_text(f"# {title}\n\n{body}\n{notes}", encoding="utf-8")
