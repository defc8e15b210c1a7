"""Live progress for the command line: a rich progress bar on a terminal, a line every ~10 s otherwise."""

from __future__ import annotations

import sys
import time
from typing import Any

from evo.setting import setting_of_metric


class ConsoleProgress:
    """Callable progress sink for the recorder's ``on_progress``; rate-limited, cheap when idle."""

    def __init__(self, quiet: bool = False, stream=None) -> None:
        self.stream = sys.stdout if stream is None else stream
        self.quiet = quiet
        self.interactive = (not quiet) and hasattr(self.stream, "isatty") and self.stream.isatty()
        self._last = 0.0
        self._period = 0.25 if self.interactive else 10.0
        self._progress = None
        self._task = None
        self._mark = (time.monotonic(), 0)
        self._rate = 0.0

    def __enter__(self) -> ConsoleProgress:
        if self.interactive:
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            self._progress = Progress(
                TextColumn("[bold]evolving"),
                BarColumn(),
                TextColumn("{task.completed:,.0f} evals"),
                TextColumn("{task.fields[rate]:,.0f}/s"),
                TextColumn("best {task.fields[best]}"),
                TextColumn("front {task.fields[front]}"),
                TimeElapsedColumn(),
                console=Console(file=self.stream),
                transient=True,
            )
            self._progress.start()
            self._task = self._progress.add_task("search", total=None, rate=0.0, best="-", front=0)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._progress is not None:
            self._progress.stop()

    def __call__(self, snap: dict[str, Any]) -> None:
        if self.quiet:
            return
        now = time.monotonic()
        if now - self._last < self._period:
            return
        mark_time, mark_n = self._mark
        if now > mark_time:
            self._rate = (snap["n_evals"] - mark_n) / (now - mark_time)
        self._mark = (now, snap["n_evals"])
        self._last = now
        best = setting_of_metric(snap["metric"]).format(snap["best_err"])
        if self._progress is not None:
            total = snap["max_evals"]
            if total is None and snap["max_seconds"]:
                total = None
            self._progress.update(
                self._task,
                completed=snap["n_evals"],
                total=total,
                rate=self._rate,
                best=best,
                front=snap["front_size"],
            )
        else:
            print(
                f"  {snap['n_evals']:>9,d} evals  {self._rate:8,.0f}/s  best {best}"
                f"  front {snap['front_size']}  {snap['elapsed']:7.0f} s",
                file=self.stream,
                flush=True,
            )
