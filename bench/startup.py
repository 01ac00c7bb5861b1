"""Start-up: ``rdpg --help`` wall time, and the time from launching ``rdpg train`` to its first env step.

    python bench/startup.py                 # --help 9 times, train 5 times
    python bench/startup.py --quick         # --help 3 times, train 2 times
    python bench/startup.py --repeats 7     # both 7 times

Every figure is a fresh process of the installed console script (``rdpg`` beside this interpreter),
timed from just before ``subprocess.Popen`` in this process; medians are reported.

How the first env step is seen, without touching rdpg's code: ``rdpg train`` with its output on a pipe
uses the plain reporter, whose ``start()`` prints ``training: 0/N env steps`` (flushed) as the last thing
before the training loop; the loop then opens metrics.csv and timing.csv and takes the first env step. So
the moment that line reaches this process is the first env step, give or take a millisecond. The line
``training <preset> (...) -> <run dir>`` before it marks the end of set-up (imports, TensorFlow, config,
networks built). The run is ``--preset pendulum --steps 1`` in a temporary folder; what it does after that
step (evaluation, checkpoint, summary) is reported as the whole process's time, not as start-up.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, header, load_text, median, rdpg_command, spread

FIRST_STEP = re.compile(r"^training: \d+/\d+ env steps")
SET_UP = re.compile(r"^training \S+ \(")


def time_rdpg(option: str = "--help") -> float:
    start = time.perf_counter()
    subprocess.run([*rdpg_command(), option], check=True, capture_output=True)
    return time.perf_counter() - start


def time_python(code: str = "pass") -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                   env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    return time.perf_counter() - start


def time_train(workdir: Path, index: int) -> dict[str, float]:
    """Seconds from launch to the set-up line, to the first env step, and to the process's end."""
    run_dir = workdir / f"run{index}"
    command = [*rdpg_command(), "train", "--preset", "pendulum", "--steps", "1", "--run-dir", str(run_dir),
               "--set", "train.eval_episodes=1"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200"}
    marks: dict[str, float] = {}
    start = time.perf_counter()
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                          cwd=workdir) as process:
        assert process.stdout is not None
        for line in process.stdout:
            now = time.perf_counter()
            if "set_up" not in marks and SET_UP.match(line):
                marks["set_up"] = now - start
            if "first_step" not in marks and FIRST_STEP.match(line):
                marks["first_step"] = now - start
        stderr = process.stderr.read() if process.stderr else ""
        process.wait()
    marks["total"] = time.perf_counter() - start
    if process.returncode or "first_step" not in marks:
        raise SystemExit(f"rdpg train failed or printed no 'training: 0/1 env steps' line "
                         f"(exit {process.returncode}): {stderr[-2000:]}")
    return marks


def import_profile(top: int) -> list[tuple[float, str]]:
    """The slowest imports of ``rdpg --help`` by cumulative time (``python -X importtime``), in ms."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "rdpg_cli", "--help"], capture_output=True,
                          text=True)
    rows = []
    for line in done.stderr.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[1].strip().isdigit():
            name = parts[2].rstrip()
            depth = (len(name) - len(name.lstrip())) // 2  # 0 for a top-level import, +1 per nesting level
            if depth <= 1:
                rows.append((int(parts[1]) / 1e3, "  " * depth + name.strip()))
    return sorted(rows, reverse=True)[:top]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=None, help="runs of each command (default 9 / 5)")
    parser.add_argument("--quick", action="store_true", help="3 --help runs, 2 train runs")
    args = parser.parse_args()
    help_runs = args.repeats or (3 if args.quick else 9)
    train_runs = args.repeats or (2 if args.quick else 5)
    header("start-up: rdpg --help, and rdpg train to its first env step (fresh processes)")
    print(f"# command: {' '.join(rdpg_command())}")

    # rdpg's modules compiled to bytecode, as pip compiles an installed package's (a checkout's editable
    # install writes it on its first run): where PYTHONDONTWRITEBYTECODE is set, every run would compile them
    # again (~80 ms of `rdpg --help` here), which no installed rdpg does.
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(REPO / "rdpg_cli")], check=True)
    time_rdpg()  # the first run reads files from disk into the page cache; not counted
    python = [time_python() for _ in range(help_runs)]
    versions = [time_rdpg("--version") for _ in range(help_runs)]
    helps = [time_rdpg() for _ in range(help_runs)]
    print(f"python -c pass: {spread([t * 1e3 for t in python])} ms, median (min-max) of {help_runs}")
    print(f"rdpg --version: {spread([t * 1e3 for t in versions])} ms (imports, no help text rendered)")
    print(f"rdpg --help: {spread([t * 1e3 for t in helps])} ms, median (min-max) of {help_runs} ({load_text()})")
    print("# slowest imports of rdpg --help, cumulative ms (one run of python -X importtime -m rdpg_cli --help):")
    for ms, name in import_profile(8):
        print(f"#   {ms:5.0f} {name}")

    with tempfile.TemporaryDirectory(prefix="rdpg-bench-") as workdir:
        runs = [time_train(Path(workdir), i) for i in range(train_runs)]
    imports = [time_python("import tensorflow, keras, gymnasium") for _ in range(train_runs)]
    print(f"python -c 'import tensorflow, keras, gymnasium': {spread(imports, '{:.2f}')} s, median (min-max) of "
          f"{train_runs} (for comparison: rdpg train imports these before its first env step)")
    for key, what in [("set_up", "to the set-up line (networks built)"), ("first_step", "to the first env step"),
                      ("total", "whole process (1 step, 1 eval episode, checkpoint, summary)")]:
        print(f"rdpg train {what}: {spread([r[key] for r in runs], '{:.2f}')} s, median (min-max) of {train_runs}")
    print(f"# {load_text()} at end")
    print(f"start-up: rdpg --help {median(helps) * 1e3:.0f} ms, rdpg train to first env step "
          f"{median([r['first_step'] for r in runs]):.2f} s (median of {help_runs} / {train_runs})")


if __name__ == "__main__":
    main()
