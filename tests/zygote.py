"""Run ``rdpg`` commands in processes forked from one interpreter that has already imported TensorFlow.

A tiny ``rdpg train`` takes about 7 s on a 2-core CI machine, 4-5 s of them importing TensorFlow and rdpg's
modules; the suite runs a few hundred such commands. Each command still gets a process of its own (own pid,
file descriptors, signal handlers, exit status, working folder, environment) and runs the console script's
code (``rdpg_cli.launch.main``); only the interpreter's start-up and those imports are shared. What a fresh
interpreter would do differently is kept out: ``conftest.rdpg`` sends here only the commands that import
TensorFlow anyway (train, evaluate, export) without ``--verbose`` (whose TensorFlow start-up log this process
has already swallowed) and without environment settings that act at start-up other than this zygote's own
(conftest starts one per set of them a test asks for); everything else, and every test
that needs a process of its own from the first instruction (signals, closed pipes), starts a fresh
interpreter. ``RDPG_TESTS_FRESH=1`` sends every command to a fresh interpreter.

Protocol, one JSON object a line: the client writes {"args", "cwd", "env", "stdout", "stderr", "timeout"}; this
process forks, waits for the child (killing it after ``timeout`` seconds) and answers one line, {"returncode"}
(negative: killed by that signal) and {"timed_out"}. It never runs a command itself, nor any TensorFlow op: a
fork is safe only while TensorFlow has started no threads, which importing it does not.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time

# Commands whose first act is to import TensorFlow: run here, the import done.
FORKED_COMMANDS = frozenset({"train", "evaluate", "export"})
# Read by the interpreter or TensorFlow at start-up, so a forked child cannot take them from a request.
# (Python, TensorFlow, Keras, the BLAS libraries, Rich's and Typer's consoles, MuJoCo's renderer.)
START_UP_ENV = ("PYTHON", "TF_", "KERAS", "OMP_", "MKL", "OPENBLAS", "LC_", "LANG", "COLUMNS", "LINES", "TERM",
                "NO_COLOR", "FORCE_COLOR", "COLORTERM", "TTY_", "JUPYTER", "TYPER", "_TYPER", "GITHUB_ACTIONS",
                "PY_COLORS", "MUJOCO_GL", "PYOPENGL")


def start_up_settings(env: dict[str, str]) -> dict[str, str]:
    settings = {k: v for k, v in env.items() if k.startswith(START_UP_ENV) and k != "PYTHONPATH"}
    # Where it is unset rdpg sets it to 3 before TensorFlow loads (only --verbose, never forked, leaves it
    # unset): the two start TensorFlow alike. An in-process command in the test process sets it there, which
    # sent every later command of that process to a fresh interpreter.
    settings.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    return settings


def runs_forked(args: list[str], env: dict[str, str], zygote_env: dict[str, str]) -> bool:
    """Whether a command, with this full environment, can run in a child forked from a zygote started with
    ``zygote_env`` and give the result a fresh interpreter would."""
    if env.get("RDPG_TESTS_FRESH") == "1" or not args or args[0] not in FORKED_COMMANDS:
        return False
    if any(a == "--verbose" or (a.startswith("-") and not a.startswith("--") and "v" in a) for a in args):
        return False
    return start_up_settings(env) == start_up_settings(zygote_env)


def _child(request: dict) -> None:
    """Become the command: its folder, descriptors, environment, sys.path and argv, then the console script."""
    code = 1
    try:
        os.chdir(request["cwd"])
        for fd, path, flags in ((0, os.devnull, os.O_RDONLY),
                                (1, request["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC),
                                (2, request["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)):
            opened = os.open(path, flags, 0o600)
            os.dup2(opened, fd)
            os.close(opened)
        os.environ.clear()
        os.environ.update(request["env"])
        # As `python -m rdpg_cli` in that folder: the folder first, then PYTHONPATH, then the rest.
        extra = [p for p in request["env"].get("PYTHONPATH", "").split(os.pathsep) if p]
        sys.path[:] = [os.getcwd(), *extra, *(p for p in sys.path[1:] if p not in extra)]
        sys.argv = ["-m", *request["args"]]  # runpy puts the module's path first, as `-m` does
        import runpy
        import traceback

        try:
            runpy.run_module("rdpg_cli", run_name="__main__", alter_sys=True)
            code = 0
        except SystemExit as done:
            if done.code is None or isinstance(done.code, int):
                code = done.code or 0
            else:
                print(done.code, file=sys.stderr)
        except KeyboardInterrupt:  # as the interpreter does: the traceback, then death by SIGINT
            traceback.print_exc()
            sys.stderr.flush()
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGINT)
        except BaseException:  # as the interpreter does: the traceback, exit status 1
            traceback.print_exc()
        import atexit

        atexit._run_exitfuncs()
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
    finally:
        os._exit(code)


def serve(preload: bool = True) -> None:
    """Answer requests from stdin; ``preload`` False (a test of the forking itself) imports nothing first."""
    if preload:
        from rdpg_cli.cli import load_tensorflow

        load_tensorflow(verbose=False)
        # The modules those commands import on their way, imported once here.
        import rdpg_cli.evaluation
        import rdpg_cli.export
        import rdpg_cli.loading
        import rdpg_cli.policy
        import rdpg_cli.trainer  # noqa: F401

    replies = os.fdopen(os.dup(1), "w", buffering=1)
    zygote = os.getpid()
    for line in sys.stdin:
        request = json.loads(line)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            replies.close()
            _die_with(zygote)
            _child(request)
        returncode, timed_out = _wait(pid, request["timeout"])
        replies.write(json.dumps({"returncode": returncode, "timed_out": timed_out}) + "\n")


def _die_with(zygote: int) -> None:
    """Have the kernel kill this child when the zygote dies (Linux): a zygote killed mid-command by its client
    (a test stopped, a reply that never came) would otherwise leave the command running to its end."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != zygote:  # it died before the request was made
        os._exit(1)


def _wait(pid: int, timeout: float) -> tuple[int, bool]:
    """The child's exit status, waiting at most ``timeout`` seconds before killing it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status), False
        time.sleep(0.005)
    os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), True


if __name__ == "__main__":
    serve(preload="--bare" not in sys.argv[1:])
