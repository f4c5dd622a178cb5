"""A background thread that runs one function every so often until stopped."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


class Periodic:
    """``step`` every ``interval_s`` on a daemon thread named ``name``; an exception is
    logged and the next step runs as planned (a background task must outlive a bad
    moment of what it depends on)."""

    def __init__(self, name: str, step: Callable[[], None]) -> None:
        self._name = name
        self._step = step
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, interval_s: float) -> None:
        if self._thread is not None:
            raise RuntimeError(f"{self._name} is already running")
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._run, args=(interval_s,), name=self._name, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None

    def _run(self, interval_s: float) -> None:
        while not self._stop.wait(interval_s):
            try:
                self._step()
            except Exception:
                log.exception("%s failed; retrying in %.1f s", self._name, interval_s)
