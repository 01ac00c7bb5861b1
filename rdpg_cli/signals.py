"""SIGINT/SIGTERM during ``rdpg train``: a stop that checkpoints, a second signal that aborts. No TensorFlow
here: the handler is installed before TensorFlow loads (which takes seconds)."""

from __future__ import annotations

import signal
from collections.abc import Callable
from typing import Any


class SignalStop:
    """SIGINT/SIGTERM for the whole of ``rdpg train``, from before TensorFlow loads to the summary.

    The first signal is recorded: before training starts the command stops without writing anything; once a
    trainer is attached, its loop stops after the current step and checkpoints. A second SIGINT/SIGTERM
    aborts at once (KeyboardInterrupt); the previous checkpoint is intact since every write is atomic. Once
    the run has finished (``finished``), signals are ignored: the command is only printing its summary."""

    def __init__(self, on_first: Callable[[str], None]):
        self.on_first = on_first
        self.requested: str | None = None
        self.trainer: Any = None  # the Trainer, once there is one
        self.finished = False
        self.aborted_by: int | None = None  # the second signal's number: the exit code is 128 + it
        self.previous: dict[int, Any] = {}

    def attach(self, trainer: Any) -> None:
        self.trainer = trainer
        trainer.stop_requested = self.requested

    def _handle(self, signum: int, frame: Any) -> None:
        if self.finished:
            return
        name = signal.Signals(signum).name
        if self.requested is not None:
            self.aborted_by = signum
            raise KeyboardInterrupt
        self.requested = name
        if self.trainer is not None:
            self.trainer.stop_requested = name
        self.on_first(name)

    def __enter__(self) -> SignalStop:
        for sig in (signal.SIGINT, signal.SIGTERM):
            self.previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)
