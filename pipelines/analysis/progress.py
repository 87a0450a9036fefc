"""Progress lines for long analyses: done/total, rate and ETA, at most one line a second."""
from __future__ import annotations

import sys
import time


class Progress:
    """``Progress("saliency", total, unit="frames")``; call ``update(done)``; ``close()`` prints the last line."""

    def __init__(self, label: str, total: int, unit: str = "frames", stream=None, interval: float = 1.0,
                 enabled: bool = True):
        self.label, self.total, self.unit = label, int(total), unit
        self.stream = stream if stream is not None else sys.stderr
        self.interval, self.enabled = interval, enabled
        self.start = time.perf_counter()
        self._last = -float("inf")
        self.done = 0

    def line(self) -> str:
        elapsed = time.perf_counter() - self.start
        rate = self.done / elapsed if elapsed > 0 else 0.0
        eta = (self.total - self.done) / rate if rate > 0 else float("nan")
        return (f"{self.label}: {self.done}/{self.total} {self.unit}, {rate:.1f} {self.unit}/s, "
                f"elapsed {elapsed:.0f}s, ETA {eta:.0f}s")

    def update(self, done: int) -> None:
        self.done = int(done)
        now = time.perf_counter()
        if self.enabled and (now - self._last >= self.interval or self.done >= self.total):
            self._last = now
            print(self.line(), file=self.stream, flush=True)

    def close(self) -> float:
        """Prints the final line (if not already printed) and returns the elapsed seconds."""
        if self.enabled and self._last < 0:
            print(self.line(), file=self.stream, flush=True)
        return time.perf_counter() - self.start
