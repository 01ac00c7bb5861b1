"""SIGINT/SIGTERM/SIGHUP during ``rdpg train``: a stop that checkpoints, a second signal that aborts; in every
other command, the same signals end it as Ctrl-C does, through its clean-up. No TensorFlow here: the handlers
are installed before TensorFlow loads (which takes seconds)."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Callable, Iterator
from typing import Any


def stop_signals() -> list[signal.Signals]:
    """The signals that ask rdpg to stop: SIGTERM, Ctrl-C and SIGHUP (the terminal closed), the last two unless
    ignored when rdpg started (``nohup`` ignores SIGHUP, which must keep a run going)."""
    signals = [signal.SIGTERM]
    # Ctrl-C too, unless rdpg was started with it ignored: a shell script's background job (`rdpg ... &`),
    # which a Ctrl-C meant for the script's foreground command must not stop.
    for name in ("SIGINT", "SIGHUP"):
        sig = getattr(signal, name, None)
        if sig is not None and signal.getsignal(sig) is not signal.SIG_IGN:
            signals.append(sig)
    return signals


class Interrupted(KeyboardInterrupt):
    """A stop signal, raised where the command is, so that its ``finally`` clean-up runs (Python's default
    SIGTERM ends the process on the spot, leaving an export's temporary folder behind)."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


# Stop signals held back by ``stop_signals_deferred`` (None: none is being held back).
_deferred: list[int] | None = None
# The last stop signal raised as Interrupted since ``forget_raised_interrupt``: the code it interrupted can
# turn the exception into another one (TensorFlow's tracing gave a SystemError, then an AttributeError), or
# drop it (raised in a finalizer).
_raised: int | None = None


def raise_interrupted(signum: int) -> None:
    """Stop the command where it is: Interrupted, recorded for ``raised_interrupt``."""
    global _raised
    _raised = signum
    raise Interrupted(signum)


def _interrupt(signum: int, frame: Any) -> None:
    if _deferred is not None:
        _deferred.append(signum)
        return
    raise_interrupted(signum)


def raised_interrupt() -> int | None:
    """The stop signal last raised as Interrupted (None: none since ``forget_raised_interrupt``)."""
    return _raised


def stop_if_a_signal_was_swallowed() -> None:
    """At the points where a command commits to its output (and between long steps): a stop signal raised
    earlier whose exception never got here was dropped on the way (raised inside a finalizer or a
    weak-reference callback, which Python only reports as "Exception ignored"; TensorFlow runs many): it
    stops the command now, instead of being lost."""
    if _raised is not None:
        raise Interrupted(_raised)


def forget_raised_interrupt() -> None:
    """At a command's end and the next one's start: a signal one command ended on is not the next one's (in
    the same process: tests, a library caller)."""
    global _raised
    _raised = None


def interrupt_on_stop_signals() -> None:
    """For the whole command: Ctrl-C, SIGTERM and SIGHUP raise Interrupted (a KeyboardInterrupt) where the
    command is (rdpg train installs SignalStop over them)."""
    for sig in stop_signals():
        signal.signal(sig, _interrupt)
    if getattr(sys.unraisablehook, "rdpg_drops_interrupted", False):  # installed already: not wrapped twice
        return
    previous = sys.unraisablehook

    def unraisable(report: Any) -> None:
        # Raised in a finalizer or a callback, Interrupted cannot propagate: Python would print it as
        # "Exception ignored" with a traceback. stop_if_a_signal_was_swallowed stops the command instead.
        if not isinstance(report.exc_value, Interrupted):
            previous(report)

    unraisable.rdpg_drops_interrupted = True  # type: ignore[attr-defined]
    sys.unraisablehook = unraisable


@contextlib.contextmanager
def stop_signals_deferred() -> Iterator[None]:
    """A stop signal that arrives inside waits until its end, then stops the command as it would have: for
    steps that must not be cut in two (an export's file and its sidecar). The handlers stay in place (a
    flag is all that changes, so there is no moment at which one is missing); where they are not rdpg's (a
    library caller's own), the steps run as they are."""
    global _deferred
    if _deferred is not None:  # already inside one
        yield
        return
    pending: list[int] = []
    _deferred = pending
    try:
        yield
    finally:
        _deferred = None
        if pending:
            raise_interrupted(pending[0])


def _flush_standard_streams() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()


def exit_on_stop_signals(code: int) -> None:
    """Once a command's outcome is decided: a stop signal ends the process at once with ``code``. Only the
    interpreter's exit is left, in which TensorFlow frees its resources; a KeyboardInterrupt raised there was
    a traceback from a finalizer (and status 130 for a finished run), while ignoring the signal would leave
    a process that hangs in its exit (a stalled pipe) deaf to everything but SIGKILL."""
    def end(signum: int, frame: Any) -> None:
        _flush_standard_streams()
        os._exit(code)

    for sig in stop_signals():
        signal.signal(sig, end)


def ignore_stop_signals_at_teardown() -> None:
    """For ``atexit``, registered first so that it runs last: flush stdout and stderr while a stop signal still
    ends the process (``exit_on_stop_signals``), then ignore stop signals. After the exit handlers Python puts
    the default actions back (a signal would kill the process with its own status, not the command's) and
    frees its modules, TensorFlow's teardown taking about a second; an ignored signal stays ignored."""
    _flush_standard_streams()
    for sig in stop_signals():
        signal.signal(sig, signal.SIG_IGN)


class FinishedRunStop(Exception):
    """A stop signal after the run finished (its summary being printed): the run is complete; the command
    ends, with exit status 0, without the rest of its summary."""


def exit_code_of(interrupt: BaseException | None) -> int:
    """128 + the signal's number: 130 for Ctrl-C, 143 for SIGTERM, 129 for SIGHUP."""
    return 128 + getattr(interrupt, "signum", signal.SIGINT)


class SignalStop:
    """SIGINT/SIGTERM/SIGHUP for the whole of ``rdpg train``, from before TensorFlow loads to the summary.

    The first signal is recorded: before training starts the command stops without writing anything; once a
    trainer is attached, its loop stops after the current step and checkpoints. A second SIGINT/SIGTERM
    aborts at once (Interrupted, a KeyboardInterrupt); the previous checkpoint is intact since every write is
    atomic. Once the run has finished (``finished``), a signal ends the command (FinishedRunStop): it is only
    printing its summary. A signal raised before (rdpg's handler for every command) whose exception was
    dropped on the way here counts as the first."""

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
        if self.finished:  # raised, not ignored: a summary blocked on a stalled pipe must still end
            raise FinishedRunStop(signal.Signals(signum).name)
        name = signal.Signals(signum).name
        if self.requested is not None:
            self.aborted_by = signum
            raise_interrupted(signum)
        self.requested = name
        if self.trainer is not None:
            self.trainer.stop_requested = name
        self.on_first(name)

    def __enter__(self) -> SignalStop:
        for sig in stop_signals():
            self.previous[sig] = signal.signal(sig, self._handle)
        if _raised is not None:  # raised before, but dropped on the way here (in a finalizer): a stop request
            self.requested = signal.Signals(_raised).name
            forget_raised_interrupt()
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)
