"""Stage timings and progress, without tying the library to a terminal.

Long stages call ``with reporter.stage("similarity", total=n) as advance:``
and ``advance(rows_done)`` as they go. :class:`StageTimer` only records how
long each stage took (and logs it); the command line passes a subclass that
draws progress bars.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

_log = logging.getLogger(__name__)

Advance = Callable[[int], None]


class StageTimer:
    """Records wall-clock seconds per stage in :attr:`timings` (in order)."""

    def __init__(self) -> None:
        self.timings: dict[str, float] = {}

    def _start(self, name: str, total: int | None) -> Advance:
        return lambda n: None

    def _finish(self, name: str) -> None:
        pass

    @contextmanager
    def stage(self, name: str, total: int | None = None) -> Iterator[Advance]:
        _log.info("stage %s started", name)
        start = time.perf_counter()
        try:
            yield self._start(name, total)
        finally:
            self._finish(name)
            elapsed = time.perf_counter() - start
            self.timings[name] = self.timings.get(name, 0.0) + elapsed
            _log.info("stage %s took %.3f s", name, elapsed)
