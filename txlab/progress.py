"""The progress line of `txlab run`: renders the runner's `Snapshot`s to standard error.

On a terminal, one live line rewritten in place a few times a second, as many
of its parts as fit in that terminal's width (standard error's, also when
standard output is redirected); with
--progress-interval-s SECONDS, a plain line every SECONDS (as pgbench -P), which is
what a log file or CI output wants. Never anything on standard output.
"""

from __future__ import annotations

import math
from collections import deque

from txlab import term
from txlab.runner import Snapshot
from txlab.settings import RunSettings


def _count(n: int) -> str:
    return f"{n:,}"


def _clock(seconds: float) -> str:
    s = math.ceil(seconds)
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02}:{s:02}" if h else f"{m}:{s:02}"


def format_line(snap: Snapshot, tps: float, width: int | None = None) -> str:
    """One line, most important first: elapsed, committed and rate, aborted, unknown,
    reconnecting, ETA, declined, then the aborts by cause. With `width`, only the
    leading parts that fit in it, each whole (a count cut short reads as another)."""
    parts = _parts(snap, tps)
    if width is None:
        return "  ".join(parts)
    line = parts[0][:width]
    for part in parts[1:]:
        if len(line) + 2 + len(part) > width:
            break
        line += "  " + part
    return line


def _parts(snap: Snapshot, tps: float) -> list[str]:
    parts = [f"{snap.elapsed_s:6.1f} s", f"committed {_count(snap.committed)} ({tps:,.0f} tps)",
             f"aborted {_count(snap.aborted_total)}"]
    if snap.unknown:
        parts.append(f"unknown {_count(snap.unknown)}")
    if snap.reconnecting:
        parts.append(f"RECONNECTING ({snap.reconnecting} workers)")
    if snap.eta_s is not None:
        parts.append(f"ETA {_clock(snap.eta_s)}")
    if snap.declined:
        parts.append(f"declined {_count(snap.declined)}")
    if snap.aborted:
        causes = sorted(snap.aborted.items(), key=lambda kv: (-kv[1], kv[0]))
        shown = ", ".join(f"{cause} {_count(n)}" for cause, n in causes[:4])
        more = f", +{len(causes) - 4} more" if len(causes) > 4 else ""
        parts.append(f"aborts by cause: {shown}{more}")
    return parts


class Printer:
    """Called with each Snapshot; decides what to print and when."""

    WINDOW_S = 1.0  # the live line's rate is over about the last second

    def __init__(self, stream, interval_s: float | None, live: bool):
        self.stream = stream
        self.interval_s = interval_s
        self.live = live and interval_s is None
        self.next_due = interval_s or 0.0
        self.samples: deque[tuple[float, int]] = deque([(0.0, 0)])
        self.shown = False

    @classmethod
    def for_stream(cls, stream, interval_s: float | None, settings: RunSettings) -> Printer | None:
        """A printer for `stream`, or None when nothing is to be printed (not a terminal
        and no interval)."""
        live = stream.isatty()
        if not live and interval_s is None:
            return None
        return cls(stream, interval_s, live)

    def _rate(self, snap: Snapshot, window: float) -> float:
        samples = self.samples
        while len(samples) > 1 and snap.elapsed_s - samples[1][0] >= window:
            samples.popleft()
        t0, c0 = samples[0]
        samples.append((snap.elapsed_s, snap.committed))
        dt = snap.elapsed_s - t0
        return (snap.committed - c0) / dt if dt > 0 else 0.0

    def __call__(self, snap: Snapshot) -> None:
        try:
            self._print(snap)
        except OSError:  # standard error's reader has gone (`2>&1 | head -1`), or its disk
            self.live, self.interval_s = False, None  # is full: the run goes on unshown

    def _print(self, snap: Snapshot) -> None:
        if self.live:
            # measured on every line (the window may be resized), on the stream the line
            # goes to: standard error, whatever standard output is (`txlab run > file`);
            # one column short of the width, so the line never wraps and never piles up
            width = term.columns(self.stream) - 1
            self.stream.write("\r\033[K" + format_line(snap, self._rate(snap, self.WINDOW_S), width))
            self.stream.flush()
            self.shown = True
        elif self.interval_s is not None and snap.elapsed_s >= self.next_due:
            # the rate over the last interval, as pgbench -P
            tps = self._rate(snap, self.interval_s)
            self.stream.write(f"progress: {format_line(snap, tps).lstrip()}\n")
            self.stream.flush()
            while self.next_due <= snap.elapsed_s:
                self.next_due += self.interval_s

    def close(self) -> None:
        if self.shown and self.live:
            try:
                self.stream.write("\r\033[K")
                self.stream.flush()
            except OSError:
                pass  # the stream has gone: nothing to wipe
