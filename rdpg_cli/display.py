"""What the user sees while training: a Rich progress bar on a terminal, plain periodic lines otherwise."""

from __future__ import annotations

import sys
import time
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, \
    TimeRemainingColumn

from rdpg_cli.trainer import Reporter


def _num(value: float | None, fmt: str = "{:.1f}") -> str:
    return "-" if value is None else fmt.format(value)


def describe(stats: dict[str, Any]) -> str:
    return (f"{stats['steps_per_second']:.0f} steps/s  return {_num(stats['episode_return'])}  "
            f"eval {_num(stats['last_eval'])} (best {_num(stats['best_eval'])})  "
            f"critic loss {_num(stats['critic_loss'], '{:.3g}')}")


class RichReporter(Reporter):
    def __init__(self, console: Console):
        self.console = console
        self.progress = Progress(
            TextColumn("[bold]train[/]"), BarColumn(), MofNCompleteColumn(), TextColumn("env steps"),
            TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(), TextColumn("{task.fields[info]}"),
            console=console, transient=False)
        self.task = None

    def start(self, total: int, done: int) -> None:
        self.progress.start()
        self.task = self.progress.add_task("train", total=total, completed=done, info="warming up")

    def update(self, stats: dict[str, Any]) -> None:
        self.progress.update(self.task, completed=stats["env_steps"], info=describe(stats))

    def message(self, text: str) -> None:
        self.console.print(text)

    def finish(self) -> None:
        self.progress.stop()


class PlainReporter(Reporter):
    """For logs and pipes: one line every ``every`` seconds, no control characters."""

    def __init__(self, stream=None, every: float = 10.0):
        self.stream = stream or sys.stdout
        self.every = every
        self.last = 0.0
        self.total = 0

    def start(self, total: int, done: int) -> None:
        self.total = total
        print(f"training: {done}/{total} env steps", file=self.stream, flush=True)

    def update(self, stats: dict[str, Any]) -> None:
        now = time.monotonic()
        if now - self.last >= self.every or stats["env_steps"] == self.total:
            self.last = now
            print(f"step {stats['env_steps']}/{self.total}  {describe(stats)}", file=self.stream, flush=True)

    def message(self, text: str) -> None:
        print(text, file=self.stream, flush=True)


class QuietReporter(Reporter):
    pass
