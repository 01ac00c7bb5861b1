"""Shared helpers: tiny training settings and running the real ``rdpg`` entry point."""

from __future__ import annotations

import atexit
import json
import logging
import os
import signal
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from rdpg_cli.threads import default_thread_pools
from zygote import runs_forked, start_up_settings

# In-process tests run TensorFlow with the thread pools the CLI uses (before anything imports it).
default_thread_pools()

# The tests of Ctrl-C test what a terminal delivers. A suite started in the background by a non-interactive shell
# (`.ci/run &`) inherits SIGINT ignored (POSIX ignores it in asynchronous commands), through every exec: Python
# then installs no KeyboardInterrupt handler, rdpg keeps the signal ignored as it should (signals.py), and those
# tests would fail for the harness's reason, not rdpg's. Each worker takes Python's usual handler back; the
# commands it starts then begin with the default disposition.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

# A few hundred env steps with 16-unit networks: seconds, not minutes, yet every code path runs. One gradient
# step per env step and the online policy, as the tests written for them expect (the `pendulum` preset takes
# two and the averaged policy; tests of those set them).
TINY = [
    "--set", "agent.gradient_steps=1", "--set", "agent.policy_weights=online",
    "--set", "network.actor_layers=[16]", "--set", "network.critic_layers=[16]",
    "--set", "agent.batch_size=32", "--set", "agent.warmup_steps=100", "--set", "agent.warmup_critic=100",
    "--set", "agent.warmup_actor=100", "--set", "train.eval_every=200", "--set", "train.eval_episodes=1",
    "--set", "train.log_every=100", "--set", "train.checkpoint_every=300",
]
TINY_RECURRENT = [
    "--set", "network.recurrent=lstm", "--set", "network.units=8", "--set", "network.history=obs+prev_action",
    "--set", "replay.sequence_length=4", "--set", "replay.burn_in=2",
]


class Zygote:
    """This test process's client of ``zygote.py``: started on first use, one command at a time. Anything
    that goes wrong mid-command ends it (the next command starts another), so no reply is ever read late."""

    def __init__(self, env: dict[str, str], bare: bool = False) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="rdpg-zygote-"))
        self.log = open(self.folder / "zygote.log", "w")  # its own errors, if it breaks
        self.env = env
        self.commands = 0
        self.process = subprocess.Popen([sys.executable, str(Path(__file__).with_name("zygote.py")),
                                         *(["--bare"] if bare else [])],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, text=True,
                                        env=self.env, bufsize=1)

    def run(self, args: list[str], cwd: Path, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess:
        self.commands += 1
        out, err = self.folder / f"{self.commands}.stdout", self.folder / f"{self.commands}.stderr"
        request = {"args": args, "cwd": str(cwd), "env": env, "stdout": str(out), "stderr": str(err),
                   "timeout": timeout}
        try:
            self.process.stdin.write(json.dumps(request) + "\n")
            self.process.stdin.flush()
            line = self.process.stdout.readline()  # the zygote kills the command at its timeout, then answers
            if not line:
                self.log.flush()
                raise RuntimeError(f"the zygote died: {(self.folder / 'zygote.log').read_text()[-2000:]}")
            reply = json.loads(line)
            texts = [path.read_text() for path in (out, err)]
        except BaseException:
            self.close(kill=True)
            raise
        finally:
            for path in (out, err):
                path.unlink(missing_ok=True)
        if reply["timed_out"]:
            raise subprocess.TimeoutExpired(args, timeout, *texts)
        return subprocess.CompletedProcess(args, reply["returncode"], *texts)

    def close(self, kill: bool = False) -> None:
        for key, zygote in list(_zygotes.items()):
            if zygote is self:
                del _zygotes[key]
        if kill:
            self.process.kill()
        else:
            self.process.stdin.close()
        self.process.wait(timeout=60)
        self.log.close()
        shutil.rmtree(self.folder, ignore_errors=True)


# One zygote per set of start-up settings (zygote.py's START_UP_ENV): the test process's own, and those a test
# asks for with ``own_zygote`` (a narrow console for many commands alike).
_zygotes: dict[tuple[tuple[str, str], ...], Zygote] = {}
atexit.register(lambda: [zygote.close() for zygote in list(_zygotes.values())])


def zygote_for(env: dict[str, str] | None = None) -> Zygote | None:
    """The zygote that runs commands with ``env`` (added to the test process's), if one has started."""
    return _zygotes.get(_start_up_key(_command_env(env)))


def _start_up_key(env: dict[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(start_up_settings(env).items()))


def _command_env(env: dict[str, str] | None = None) -> dict[str, str]:
    return {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}


def rdpg(*args: str | Path, cwd: Path, check: bool = True, timeout: float = 600,
         env: dict[str, str] | None = None, fresh: bool = False, own_zygote: bool = False
         ) -> subprocess.CompletedProcess:
    """Run ``python -m rdpg_cli ARGS`` (the console script's code path) and capture its output: in a fresh
    interpreter (always with ``fresh``), or for the commands zygote.py says run the same there, in a process
    forked from it. That is the zygote of the test process's start-up settings; ``own_zygote`` starts one for
    those of ``env`` where they differ, rather than a fresh interpreter for each command."""
    full_env = _command_env(env)
    texts = [str(a) for a in args]
    zygote_env = full_env if own_zygote else _command_env()
    if not fresh and runs_forked(texts, full_env, zygote_env):
        key = _start_up_key(zygote_env)
        if key not in _zygotes:
            _zygotes[key] = Zygote(zygote_env)
        result = _zygotes[key].run(texts, Path(cwd).resolve(), full_env, timeout)
    else:
        result = subprocess.run([sys.executable, "-m", "rdpg_cli", *texts], cwd=cwd, capture_output=True,
                                text=True, timeout=timeout, env=full_env)
    if check and result.returncode != 0:
        raise AssertionError(f"rdpg {' '.join(map(str, args))} exited {result.returncode}\n"
                             f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}")
    return result


def rdpg_command(*args: str | Path, prelude: str = "") -> list[str]:
    """``python -m rdpg_cli ARGS`` as a command line; with ``prelude``, Python code that runs first in that
    process (a signal's action, a resource limit, a patch of rdpg's code), then the console script's code.
    Instead of subprocess's ``preexec_fn``, which runs Python between fork and exec: unsafe in a test process
    whose TensorFlow runs threads (a lock one of them held at the fork would hang the child)."""
    if not prelude:
        return [sys.executable, "-m", "rdpg_cli", *map(str, args)]
    code = f"import sys\n{prelude}\nsys.argv = ['rdpg', *sys.argv[1:]]\nfrom rdpg_cli.launch import main\nmain()\n"
    return [sys.executable, "-c", code, *map(str, args)]


class _StopSignalInAFinalizer:
    def __del__(self):
        signal.raise_signal(signal.SIGTERM)


def drop_a_stop_signal() -> None:
    """SIGTERM raised where Python can only drop the handler's exception ("Exception ignored"): in a
    finalizer, as those TensorFlow runs in numbers."""
    _StopSignalInAFinalizer()  # made and freed at once


def signal_lost_in_c_code(signum: int, error: type[Exception]) -> None:
    """What C code did with a stop signal's exception in CI: TensorFlow's tracing, interrupted by SIGTERM
    while it called back into Python, dropped the Interrupted and raised an unrelated error instead."""
    try:
        signal.raise_signal(signum)
    except KeyboardInterrupt:
        pass
    raise error("'dict' object has no attribute '_type_spec'")


@pytest.fixture(autouse=True)
def _process_state_restored():
    """What an in-process command leaves behind is put back after each test: environment variables (a changed
    start-up setting sends every later command of the test process to a fresh interpreter instead of the
    zygote), the rdpg logger's level (DEBUG after a --verbose command, which caplog then saw) and a stop
    signal recorded by rdpg_cli.signals."""
    from rdpg_cli import signals

    environ = dict(os.environ)
    logger = logging.getLogger("rdpg_cli")
    level, handlers, propagate = logger.level, list(logger.handlers), logger.propagate
    yield
    if dict(os.environ) != environ:
        os.environ.clear()
        os.environ.update(environ)
    logger.setLevel(level)
    logger.handlers[:] = handlers
    logger.propagate = propagate
    signals.forget_raised_interrupt()


@pytest.fixture
def command_line_signals(monkeypatch: pytest.MonkeyPatch):
    """The stop-signal handlers ``rdpg`` runs its commands with (a signal raises Interrupted where the
    command is; one raised where it cannot propagate is not printed), for in-process tests; the test
    process's own put back afterwards (by monkeypatch, which undoes in reverse order: a test that patches
    the hook again gets pytest's back last)."""
    from rdpg_cli.signals import interrupt_on_stop_signals, stop_signals

    handlers = {sig: signal.getsignal(sig) for sig in stop_signals()}
    monkeypatch.setattr(sys, "unraisablehook", sys.__unraisablehook__)  # Python's, which rdpg's wraps
    interrupt_on_stop_signals()
    yield
    for sig, handler in handlers.items():
        signal.signal(sig, handler)


@pytest.fixture
def run_rdpg():
    return rdpg


@pytest.fixture
def immutable_folder(tmp_path: Path):
    """A folder nobody can create files in, root included (``chattr +i``; os.access says yes to root)."""
    if not (hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("chattr") is not None):
        pytest.skip("needs root and chattr to make a folder root cannot write in")
    folder = tmp_path / "locked"
    folder.mkdir()
    subprocess.run(["chattr", "+i", str(folder)], check=True)
    yield folder
    subprocess.run(["chattr", "-i", str(folder)], check=True)


def pytest_collection_modifyitems(config, items):
    """The long tests first (learning, kill at random moments: a minute each), the rest in file order: with
    two test processes, a minute-long test collected near the end kept one process busy while the other had
    nothing left to run."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)  # stable: file order otherwise
