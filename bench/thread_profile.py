"""cProfile inside chosen threads of this process, for diagnostics of benchmarks.

cProfile only sees the thread that enables it. :class:`ThreadProfiles` hooks
``threading.setprofile`` so that every thread started while it is active, whose name
starts with a prefix, enables its own profiler first thing; the others run unprofiled.
Threads keep profiling until they end, so take the report once their work is done.
Profiling slows Python code (not the native parts), so figures from a profiled run are
for where the time goes, not for how long it takes.
"""

from __future__ import annotations

import cProfile
import io
import pstats
import sys
import threading
from types import FrameType, TracebackType
from typing import Any


class ThreadProfiles:
    """``with ThreadProfiles("facegate-bulk") as profiles: ...; profiles.report()``."""

    def __init__(self, prefix: str) -> None:
        self._prefix = prefix
        self._lock = threading.Lock()
        self._profiles: list[cProfile.Profile] = []

    def __enter__(self) -> ThreadProfiles:
        threading.setprofile(self._start)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        threading.setprofile(None)

    @property
    def threads(self) -> int:
        with self._lock:
            return len(self._profiles)

    def _start(self, frame: FrameType, event: str, arg: Any) -> None:
        sys.setprofile(None)
        if threading.current_thread().name.startswith(self._prefix):
            profile = cProfile.Profile()
            with self._lock:
                self._profiles.append(profile)
            profile.enable()  # replaces this hook for the rest of the thread's life

    def report(self, *, sort: str = "cumulative", limit: int = 60) -> str:
        """The profiled threads' statistics merged, ``limit`` lines by ``sort``."""
        with self._lock:
            profiles = list(self._profiles)
        if not profiles:
            return f"no thread named {self._prefix}* was started while profiling\n"
        out = io.StringIO()
        stats = pstats.Stats(profiles[0], stream=out)
        for profile in profiles[1:]:
            stats.add(profile)
        stats.sort_stats(sort).print_stats(limit)
        return f"{len(profiles)} threads named {self._prefix}*\n{out.getvalue()}"
