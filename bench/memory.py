"""Memory: replay bytes per transition against the raw payload, and the peak RSS of a Pendulum run.

    python bench/memory.py                   # a 100k-step run of the pendulum preset (several minutes)
    python bench/memory.py --steps 20000     # a shorter run; the steps used are printed
    python bench/memory.py --quick           # 10k steps

Replay: ``ReplayBuffer.nbytes / capacity`` for Pendulum-v1 (3 observation floats, 1 action) against the raw
float32 payload of one transition: observation + next observation + action + reward as float32, plus one
byte of flags (terminated / episode end / episode start) = (3 + 3 + 1 + 1) x 4 + 1 = 33 bytes. Also shown:
the recurrent case with ``replay.store_state`` (the actor's LSTM state per transition, R2D2 style).

Peak RSS: the real CLI, ``rdpg train --preset pendulum --steps N --run-dir <tmp> --quiet`` (the preset's
defaults: 1M-transition replay, evaluation every 1000 steps, checkpoints with the replay memory), in a
child process reaped with ``os.wait4``, whose ``ru_maxrss`` is that child's own peak resident set (KiB on
Linux). A 1-step run of the same command is measured first: what the longer run adds on top of it is what
training itself holds (replay pages written, TensorFlow's working memory), not imports.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import header, load_text, rdpg_command

RAW_PAYLOAD = (3 + 3 + 1 + 1) * 4 + 1  # obs, next obs, action, reward as float32 + 1 flag byte


def replay_bytes() -> tuple[float, float]:
    """Bytes per transition of the feed-forward replay, and of the LSTM-64 one with stored states."""
    from rdpg_cli.replay import ReplayBuffer

    capacity = 100_000
    plain = ReplayBuffer(capacity, 3, 1).nbytes / capacity
    with_state = ReplayBuffer(capacity, 3, 1, state_shapes=(64, 64)).nbytes / capacity
    return plain, with_state


def peak_rss(steps: int, workdir: Path) -> tuple[float, float]:
    """Peak RSS (MiB) and wall seconds of one ``rdpg train --preset pendulum --steps N`` process."""
    command = [*rdpg_command(), "train", "--preset", "pendulum", "--steps", str(steps),
               "--run-dir", str(workdir / f"run-{steps}"), "--quiet"]
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=workdir)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)  # reaped here: keep Popen from waiting again
    stderr = process.stderr.read().decode(errors="replace") if process.stderr else ""
    if process.returncode:
        raise SystemExit(f"rdpg train --steps {steps} failed (exit {process.returncode}): {stderr[-2000:]}")
    return usage.ru_maxrss / 1024, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=None, help="env steps of the measured run (default 100000)")
    parser.add_argument("--quick", action="store_true", help="10000 steps")
    parser.add_argument("--repeats", type=int, default=1, help="runs of the measured command (the largest peak "
                                                               "is reported: RSS barely depends on the load)")
    args = parser.parse_args()
    steps = args.steps or (10_000 if args.quick else 100_000)
    header("memory: replay bytes per transition, peak RSS of rdpg train --preset pendulum")

    plain, with_state = replay_bytes()
    print(f"replay (Pendulum, feed-forward): {plain:.1f} bytes per transition, raw payload {RAW_PAYLOAD} "
          f"-> {plain / RAW_PAYLOAD:.2f}x")
    print(f"# replay with store_state (LSTM-64 actor, h and c per transition): {with_state:.1f} bytes per "
          "transition")
    print(f"# at the preset's replay.size 1,000,000: {plain * 1e6 / 2**20:.1f} MiB reserved; pages are "
          f"touched as transitions arrive, so {steps} steps keep {plain * steps / 2**20:.1f} MiB of it resident")

    with tempfile.TemporaryDirectory(prefix="rdpg-bench-") as workdir:
        base, base_s = peak_rss(1, Path(workdir))
        print(f"peak RSS, 1-step run: {base:.0f} MiB ({base_s:.1f} s)")
        peaks = []
        for _ in range(args.repeats):
            rss, seconds = peak_rss(steps, Path(workdir))
            peaks.append(rss)
            print(f"peak RSS, {steps}-step run: {rss:.0f} MiB ({seconds:.0f} s; {load_text()})", flush=True)
    peak = max(peaks)
    print(f"memory: replay {plain:.0f} bytes/transition = {plain / RAW_PAYLOAD:.2f}x raw; peak RSS {peak:.0f} MiB "
          f"for a {steps}-step pendulum run ({peak - base:+.0f} MiB over a 1-step run)")


if __name__ == "__main__":
    main()
