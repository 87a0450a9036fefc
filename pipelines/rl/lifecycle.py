"""Process lifecycle helpers for the services: clean stop on SIGINT/SIGTERM, back-off."""
from __future__ import annotations

import signal
import sys
import threading
import time


class StopFlag:
    """Set by SIGINT/SIGTERM (after :meth:`install`); service loops poll :meth:`is_set` and
    finish their current unit of work (e.g. the learner saves a checkpoint) before exiting."""

    def __init__(self):
        self._event = threading.Event()
        self.signal_name = None

    def install(self) -> "StopFlag":
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        if self._event.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C: stop now
        self.signal_name = signal.Signals(signum).name
        self._event.set()

    def set(self) -> None:
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    def wait(self, seconds: float) -> bool:
        return self._event.wait(seconds)


class Backoff:
    """Exponential back-off between reconnection attempts: 0.5 s doubling up to ``maximum``."""

    def __init__(self, initial: float = 0.5, maximum: float = 10.0):
        self.initial, self.maximum = initial, maximum
        self.delay = initial
        self.failures = 0

    def reset(self) -> None:
        self.delay, self.failures = self.initial, 0

    def wait(self, stop: StopFlag, what: str, error: BaseException) -> None:
        self.failures += 1
        log(f"{what} failed ({type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}); "
            f"retrying in {self.delay:.1f}s (attempt {self.failures})")
        stop.wait(self.delay)
        self.delay = min(self.maximum, self.delay * 2)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stdout, flush=True)
