"""What the user sees while training: a Rich progress bar on a terminal, plain periodic lines otherwise.

The trainer hands each reporter a stats dict (``Trainer._stats``): env steps, env steps/s and gradient
steps/s over the session, the gradient steps taken, the recent mean episode return, the last and best
evaluation return and the latest critic loss. Keys it does not send show as "-", so the display never breaks a run.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any, TextIO

from rich.console import Console, RenderableType
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, \
    TimeRemainingColumn
from rich.text import Text

from rdpg_cli.output import STDOUT
from rdpg_cli.trainer import Reporter


def _num(value: float | None, fmt: str = "{:.1f}") -> str:
    return "-" if value is None else fmt.format(value)


class StatsLine:
    """Turns successive stats into one line of text.

    The critic loss is kept here: the trainer resets its mean at every metrics row, so the last known value
    is shown instead of a "-" after each row."""

    def __init__(self) -> None:
        self.critic_loss: float | None = None

    def __call__(self, stats: dict[str, Any]) -> str:
        if stats.get("critic_loss") is not None:
            self.critic_loss = stats["critic_loss"]
        # Learning first, speed last: a narrow terminal cuts the end of the line.
        return (f"return {_num(stats.get('episode_return'))}  "
                f"eval {_num(stats.get('last_eval'))} (best {_num(stats.get('best_eval'))})  "
                f"critic loss {_num(self.critic_loss, '{:.3g}')}  "
                f"{_num(stats.get('steps_per_second'), '{:.0f}')} steps/s  "
                f"{_num(stats.get('updates_per_second'), '{:.0f}')} updates/s")


class _TwoLineProgress(Progress):
    """The bar on one line and the figures under it: in one row, the figures squeeze the bar, the step count
    and the ETA to "…" on an ordinary terminal."""

    info = Text("warming up")

    def get_renderables(self) -> Iterable[RenderableType]:
        yield self.make_tasks_table(self.tasks)
        yield self.info


class RichReporter(Reporter):
    """A live progress bar with elapsed time and ETA, for a terminal; messages print above it."""

    def __init__(self, console: Console):
        self.console = console
        self.line = StatsLine()
        self.progress = _TwoLineProgress(
            TextColumn("[bold]train[/]"), BarColumn(bar_width=None), MofNCompleteColumn(), TextColumn("env steps"),
            TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(), console=console, transient=False,
            expand=True)
        self.task = None

    def start(self, total: int, done: int) -> None:
        self.progress.start()
        self.task = self.progress.add_task("train", total=total, completed=done)

    def update(self, stats: dict[str, Any]) -> None:
        # One line whatever the width: wrapped, the figures pushed the bar up a line at every refresh of an
        # 80-column terminal; cut, the end ("…") is what goes.
        self.progress.info = Text(self.line(stats), style="dim", no_wrap=True, overflow="ellipsis")
        self.progress.update(self.task, completed=stats["env_steps"])

    def message(self, text: str) -> None:
        self.console.print(text, highlight=False)

    def finish(self) -> None:
        self.progress.refresh()  # the final figures, not those of the last redraw
        self.progress.stop()


class PlainReporter(Reporter):
    """For logs and pipes: a line every ``every`` seconds and one at the end, no control characters, so a
    log file grows by a few lines a minute instead of by a redrawn bar."""

    def __init__(self, stream: TextIO | None = None, every: float = 10.0):
        self.stream = stream or STDOUT
        self.every = every
        self.last: float | None = None
        self.total = 0
        self.line = StatsLine()

    def start(self, total: int, done: int) -> None:
        self.total = total
        print(f"training: {done}/{total} env steps", file=self.stream, flush=True)

    def update(self, stats: dict[str, Any]) -> None:
        text = self.line(stats)  # every update, so the rates and the last loss stay current
        now = time.monotonic()
        if self.last is None:  # the first update only starts the clock: rates of one step mean nothing
            self.last = now
        if now - self.last >= self.every or stats["env_steps"] == self.total:
            self.last = now
            print(f"step {stats['env_steps']}/{self.total}  {text}", file=self.stream, flush=True)

    def message(self, text: str) -> None:
        print(text, file=self.stream, flush=True)


class QuietReporter(Reporter):
    """--quiet: nothing while training but warnings (on stderr, as always); the command prints the checkpoint
    path at the end."""
