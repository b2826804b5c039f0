"""Progress of a bench (scenarios x policies) on stderr, with an estimate of the time left.

On a terminal it is a progress bar that disappears when done; otherwise (a log, a pipe) one
line per run. It never writes to stdout, so tables and files are left as they are.

The estimate counts simulated steps: a run of a policy takes about as long per step as that
policy took per step in the runs already done (all runs' mean until it has run once), and the
run under way as long as its share of steps done so far says; before any run has ended, every
policy is taken to go at the pace of the run under way.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import IO

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn


def _duration(seconds: float) -> str:
    """``42 s``, ``3 min 05 s``, ``1 h 02 min``."""
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


class Estimate:
    """Seconds left in a plan of runs, from the seconds per step each policy took so far.

    Parameters
    ----------
    runs
        Every run planned, in order: (scenario, policy, steps).
    clock
        Seconds, monotonic (for tests).
    """

    def __init__(
        self,
        runs: Sequence[tuple[str, str, int]],
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.runs = list(runs)
        self.clock = clock
        self.started = clock()
        self.finished = 0  # runs done
        self.run_started = self.started
        self.run_done = 0  # steps of the current run done
        self._seconds: dict[str, float] = {}  # per policy: seconds, steps
        self._steps: dict[str, int] = {}

    @property
    def total_steps(self) -> int:
        return sum(steps for _, _, steps in self.runs)

    @property
    def elapsed_s(self) -> float:
        return self.clock() - self.started

    def _per_step(self, policy: str) -> float | None:
        """Seconds per step: the policy's so far, else every run's so far (the one under way
        included), else ``None``."""
        if self._steps.get(policy):
            return self._seconds[policy] / self._steps[policy]
        seconds, steps = sum(self._seconds.values()), sum(self._steps.values())
        if self.run_done > 0:
            seconds += self.clock() - self.run_started
            steps += self.run_done
        return seconds / steps if steps else None

    def start(self) -> None:
        self.run_started = self.clock()
        self.run_done = 0

    def advance(self, done: int) -> None:
        self.run_done = done

    def finish(self, wall_s: float) -> None:
        _, policy, steps = self.runs[self.finished]
        self._seconds[policy] = self._seconds.get(policy, 0.0) + wall_s
        self._steps[policy] = self._steps.get(policy, 0) + max(steps, 1)
        self.finished += 1
        self.run_done = 0

    def left_s(self) -> float | None:
        """Seconds left, or ``None`` before anything can be said (no run finished yet and the
        current one has not advanced)."""
        left = 0.0
        if self.finished < len(self.runs):
            _, policy, steps = self.runs[self.finished]
            spent = self.clock() - self.run_started
            if self.run_done > 0:
                left += spent / self.run_done * max(steps - self.run_done, 0)
            else:
                rate = self._per_step(policy)
                if rate is None:
                    return None
                left += max(rate * steps - spent, 0.0)
        for _, policy, steps in self.runs[self.finished + 1 :]:
            rate = self._per_step(policy)
            if rate is None:
                return None
            left += rate * steps
        return left

    def left_text(self) -> str:
        left = self.left_s()
        return "estimating time left" if left is None else f"about {_duration(left)} left"


class LineProgress:
    """One line per run on ``stream``: which run starts, time so far and time left."""

    def __init__(self, runs: Sequence[tuple[str, str, int]], stream: IO[str]) -> None:
        self.estimate = Estimate(runs)
        self.stream = stream

    def start(self, scenario: str, policy: str, steps: int) -> None:
        self.estimate.start()
        e = self.estimate
        print(
            f"bench {e.finished + 1}/{len(e.runs)}: {scenario} / {policy} "
            f"({_duration(e.elapsed_s)} elapsed, {e.left_text()})",
            file=self.stream,
            flush=True,
        )

    def advance(self, done: int, total: int) -> None:
        self.estimate.advance(done)

    def finish(self, scenario: str, policy: str, wall_s: float) -> None:
        self.estimate.finish(wall_s)

    def close(self) -> None:
        e = self.estimate
        print(f"bench: {e.finished} runs in {_duration(e.elapsed_s)}", file=self.stream, flush=True)


class BarProgress:
    """A progress bar on a terminal: runs done, the run under way, and the time left."""

    def __init__(self, runs: Sequence[tuple[str, str, int]], console: Console) -> None:
        self.estimate = Estimate(runs)
        self._base = 0  # steps of the runs done
        self.bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.percentage:>3.0f}%"),
            TextColumn("{task.fields[left]}"),
            console=console,
            transient=True,
        )
        self.task = self.bar.add_task("bench", total=max(self.estimate.total_steps, 1), left="")
        self.bar.start()

    def _update(self, description: str | None = None) -> None:
        self.bar.update(
            self.task,
            completed=self._base + self.estimate.run_done,
            description=description,
            left=self.estimate.left_text(),
        )

    def start(self, scenario: str, policy: str, steps: int) -> None:
        self.estimate.start()
        e = self.estimate
        self._update(f"{e.finished + 1}/{len(e.runs)} {scenario} / {policy}")

    def advance(self, done: int, total: int) -> None:
        self.estimate.advance(done)
        self._update()

    def finish(self, scenario: str, policy: str, wall_s: float) -> None:
        self._base += self.estimate.runs[self.estimate.finished][2]
        self.estimate.finish(wall_s)
        self._update()

    def close(self) -> None:
        self.bar.stop()
