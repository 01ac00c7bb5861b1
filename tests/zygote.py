"""Run ``rdpg`` commands in processes forked from one interpreter that has already imported TensorFlow.

A tiny ``rdpg train`` takes about 7 s on a 2-core CI machine, 4-5 s of them importing TensorFlow and rdpg's
modules; the suite runs a few hundred such commands. Each command still gets a process of its own (own pid,
file descriptors, signal handlers, exit status, working folder, environment) and runs the console script's
code (``rdpg_cli.cli.main``); only the interpreter's start-up and those imports are shared. What a fresh
interpreter would do differently is kept out: ``conftest.rdpg`` sends here only the commands that import
TensorFlow anyway (train, evaluate, export) without ``--verbose`` (whose TensorFlow start-up log this process
has already swallowed) and without environment settings that act at start-up; everything else, and every test
that needs a process of its own from the first instruction (signals, closed pipes), starts a fresh
interpreter. ``RDPG_TESTS_FRESH=1`` sends every command to a fresh interpreter.

Protocol, one JSON object a line: the client writes {"args", "cwd", "env", "stdout", "stderr"}; this process
forks, answers {"pid"}, waits for the child and answers {"returncode"} (negative: killed by that signal).
"""

from __future__ import annotations

import json
import os
import sys

# Commands whose first act is to import TensorFlow: run here, the import done.
FORKED_COMMANDS = frozenset({"train", "evaluate", "export"})
# Read by the interpreter or TensorFlow at start-up, so a forked child cannot take them from a request.
START_UP_ENV = ("PYTHON", "TF_", "OMP_", "MKL", "OPENBLAS", "LC_", "LANG", "COLUMNS", "LINES", "TERM",
                "NO_COLOR", "FORCE_COLOR", "MUJOCO_GL", "PYOPENGL")
MAIN = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "rdpg_cli", "__main__.py")


def runs_forked(args: list[str], env: dict[str, str] | None) -> bool:
    """Whether a command can run in a forked child with the result a fresh interpreter would give."""
    if os.environ.get("RDPG_TESTS_FRESH") == "1" or not args or args[0] not in FORKED_COMMANDS:
        return False
    if "--verbose" in args or "-v" in args:
        return False
    return not any(key.startswith(START_UP_ENV) and key != "PYTHONPATH" for key in env or {})


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
        sys.argv = [MAIN, *request["args"]]
        from rdpg_cli.cli import main

        try:
            main()
            code = 0
        except SystemExit as done:
            if done.code is None or isinstance(done.code, int):
                code = done.code or 0
            else:
                print(done.code, file=sys.stderr)
        except BaseException:  # as the interpreter would: the traceback, exit status 1
            import traceback

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


def serve() -> None:
    from rdpg_cli.cli import load_tensorflow

    load_tensorflow(verbose=False)
    # The modules those commands import on their way, imported once here.
    import rdpg_cli.evaluation
    import rdpg_cli.export
    import rdpg_cli.loading
    import rdpg_cli.policy
    import rdpg_cli.trainer  # noqa: F401

    replies = os.fdopen(os.dup(1), "w", buffering=1)
    for line in sys.stdin:
        request = json.loads(line)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            replies.close()
            _child(request)
        replies.write(json.dumps({"pid": pid}) + "\n")
        _, status = os.waitpid(pid, 0)
        replies.write(json.dumps({"returncode": os.waitstatus_to_exitcode(status)}) + "\n")


if __name__ == "__main__":
    serve()
