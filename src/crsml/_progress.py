"""Progress of long stages, for a person at a terminal and for a log alike.

At a terminal, rich draws a transient bar. Off one (a log file, a pipe, a batch job), a bar would
print nothing readable, so one line goes to stderr every ``every_s`` seconds while the stage runs:
the stage, done of total, and the time elapsed (a 15-minute benefit training is never silent in a
log). A stage shorter than ``every_s`` prints nothing. rich has no such mode, hence this wrapper.
"""

from __future__ import annotations

import sys
import time
from typing import Any

#: seconds between progress lines off a terminal
EVERY_S = 30.0


class StageProgress:
    """``with StageProgress(label, total, show) as p: ... p.advance()``."""

    def __init__(self, label: str, total: int, show: bool = True, every_s: float = EVERY_S, stream: Any = None):
        self.label, self.total, self.show, self.every_s = label, int(total), show, every_s
        self.stream = stream if stream is not None else sys.stderr
        self.done = 0
        self._bar: Any = None
        self._task: Any = None

    def __enter__(self) -> StageProgress:
        self._t0 = self._last = time.monotonic()
        if self.show and getattr(self.stream, "isatty", lambda: False)():
            from rich.progress import Progress

            self._bar = Progress(transient=True)
            self._bar.start()
            self._task = self._bar.add_task(self.label, total=self.total)
        return self

    def advance(self, n: int = 1) -> None:
        self.done += n
        if self._bar is not None:
            self._bar.advance(self._task, n)
        elif self.show and time.monotonic() - self._last >= self.every_s:
            self._last = time.monotonic()
            self.stream.write(
                f"{self.label}: {self.done:,} of {self.total:,} done ({self._last - self._t0:.0f} s elapsed)\n"
            )
            self.stream.flush()

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()
