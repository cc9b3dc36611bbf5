"""How one call is timed, and the progress indicator of a run."""
from __future__ import annotations

import statistics
import sys
import time

# ---------------------------------------------------------------------------
# Timing.
# ---------------------------------------------------------------------------

class Settings:
    """How long to measure: ``quick`` for ``bench --quick``."""

    def __init__(self, quick: bool):
        self.quick = quick
        self.min_time = 0.05 if quick else 0.2
        self.min_reps = 3 if quick else 5
        self.max_reps = 10_000
        self.warmup = 1
        self.subprocess_reps = 3 if quick else 7

    def as_dict(self) -> dict:
        return dict(quick=self.quick, warmup_calls=self.warmup, min_seconds=self.min_time,
                    min_repeats=self.min_reps, statistic="median",
                    timer="time.perf_counter around each call")


def _summary(times) -> dict:
    return dict(seconds=statistics.median(times), seconds_min=min(times), repeats=len(times))


def measure(fn, settings: Settings) -> dict:
    """Median and minimum seconds of ``fn()``: warm-up calls, then calls timed one
    by one until at least ``min_reps`` calls and ``min_time`` seconds (the
    runner's docstring says why the median)."""
    for _ in range(settings.warmup):
        fn()
    times = []
    total = 0.0
    while len(times) < settings.min_reps or (total < settings.min_time and len(times) < settings.max_reps):
        t = time.perf_counter()
        fn()
        dt = time.perf_counter() - t
        times.append(dt)
        total += dt
    return _summary(times)


def measure_pair(fn_a, fn_b, settings: Settings) -> tuple:
    """:func:`measure` of two calls side by side, alternated call by call, so that a change of
    the machine's load or clock falls on both alike: ``(timing of fn_a, timing of fn_b)``."""
    for _ in range(settings.warmup):
        fn_a()
        fn_b()
    times_a, times_b = [], []
    total = 0.0
    while len(times_a) < settings.min_reps or (total < 2 * settings.min_time and len(times_a) < settings.max_reps):
        for fn, times in ((fn_a, times_a), (fn_b, times_b)):
            t = time.perf_counter()
            fn()
            dt = time.perf_counter() - t
            times.append(dt)
            total += dt
    return _summary(times_a), _summary(times_b)


# ---------------------------------------------------------------------------
# Progress on stderr.
# ---------------------------------------------------------------------------

class Progress:
    """A one-line indicator on a terminal; one line per case otherwise (logs)."""

    def __init__(self, stream=None):
        self.stream = sys.stderr if stream is None else stream
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.start = time.perf_counter()
        self.where = ""

    def case(self, op, i, n, name):
        self.where = f"bench {op} {i}/{n} {name}"
        if not self.tty:
            print(f"[{time.perf_counter() - self.start:5.1f}s] {self.where}", file=self.stream, flush=True)

    def item(self, what):
        if self.tty:
            line = f"[{time.perf_counter() - self.start:5.1f}s] {self.where}: {what}"
            self.stream.write("\r\033[K" + line[:150])
            self.stream.flush()

    def done(self):
        if self.tty:
            self.stream.write("\r\033[K")
        print(f"bench: done in {time.perf_counter() - self.start:.1f}s", file=self.stream, flush=True)
