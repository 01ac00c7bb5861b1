"""Where one feed-forward update's time goes, op by op: TensorFlow's profiler on the bench/throughput.py update.

    python bench/update_profile.py                  # each flavour of call, 50 calls each
    python bench/update_profile.py --steps 100 --top 30
    python bench/update_profile.py --set network.critic_layers=[64,64]

For each flavour of ``Agent.train_steps`` call (a critic-only step; a full step, critic and actor; both in
one call, as the trainer runs policy delay 2) it makes ``--steps`` calls on one fixed batch under
``tf.profiler`` and reads the trace back (the XSpace protobuf TensorFlow ships), then prints:
- the ops that take the most time per call, summed over the call's graph (matmuls show as ``_Mkl*MatMul``
  after TensorFlow's oneDNN rewrite: the op's name, then its kernel);
- per compute thread, the share of the call's wall time it was busy with ops, and how long the call took
  before its first op ran (the call's own set-up);
- the call's wall time from the profile (the profiler adds a little to it; bench/roofline.py gives the
  figure to quote).
A diagnostic for speed work on the update: what is idle, what is small ops, what is matmul.
"""

from __future__ import annotations

import argparse
import collections
import glob
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    THROUGHPUT_SETS,
    add_set_option,
    fill_replay,
    header,
    make_config,
    median,
    parse_sets,
    quiet_tensorflow,
)

# Events the profiler records around the ops (executor bookkeeping, thread-pool regions), not ops themselves.
NOT_OPS = ("ExecutorState::", "ThreadpoolListener::", "FunctionRun", "ExecutorDoneCallback")


def profile_steps(agent, batch, flags: list[bool], steps: int) -> tuple[list, dict]:
    """Run ``steps`` calls of ``Agent.train_steps`` (one step per entry of ``flags``: with the actor and
    the target networks' update where true, as TD3 runs them) under the profiler; the host plane of the
    trace and its event names."""
    import tensorflow as tf
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    batches = [batch] * len(flags)
    for _ in range(10):  # trace and warm up outside the profile
        agent.train_steps(batches, flags, flags)
    with tempfile.TemporaryDirectory() as logdir:
        tf.profiler.experimental.start(logdir)
        for _ in range(steps):
            agent.train_steps(batches, flags, flags)
        tf.profiler.experimental.stop()
        (path,) = glob.glob(os.path.join(logdir, "**", "*.xplane.pb"), recursive=True)
        space = xplane_pb2.XSpace()
        space.ParseFromString(Path(path).read_bytes())
    (host,) = [p for p in space.planes if p.name == "/host:CPU"]
    names = {key: meta.name for key, meta in host.event_metadata.items()}
    return host, names


def step_windows(host, names) -> list[tuple[int, int]]:
    """(start, end) in picoseconds of each compiled step call, from the Python thread's events."""
    windows = []
    for line in host.lines:
        if line.name != "python":
            continue
        for event in line.events:
            if names.get(event.metadata_id, "").startswith("EagerLocalExecute: __inference"):
                start = line.timestamp_ns * 1000 + event.offset_ps
                windows.append((start, start + event.duration_ps))
    return sorted(windows)


def report(flavour: str, host, names, top: int) -> float:
    windows = step_windows(host, names)
    per_op: collections.Counter = collections.Counter()
    busy: dict[str, list[float]] = collections.defaultdict(list)
    first_op: list[float] = []
    for start, end in windows:
        earliest = end
        for line in host.lines:
            if not line.name.startswith("tf_Compute"):
                continue
            total = 0
            for event in line.events:
                at = line.timestamp_ns * 1000 + event.offset_ps
                name = names.get(event.metadata_id, "?")
                if not start <= at <= end or name.startswith(NOT_OPS):
                    continue
                per_op[name] += event.duration_ps
                total += event.duration_ps
                earliest = min(earliest, at)
            busy[line.name].append(total / (end - start))
        first_op.append((earliest - start) / 1e6)
    walls = [(end - start) / 1e9 for start, end in windows]
    steps = len(windows)
    print(f"\n{flavour}: {steps} calls profiled; the ops taking the most time per call:")
    for name, picoseconds in per_op.most_common(top):
        print(f"  {picoseconds / 1e9 / steps:7.3f} ms  {name[:100]}")
    small = sum(p for n, p in per_op.items() if "MatMul" not in n) / 1e9 / steps
    matmul = sum(p for n, p in per_op.items() if "MatMul" in n) / 1e9 / steps
    threads = ", ".join(f"{100 * median(shares):.0f} %" for shares in busy.values())
    print(f"{flavour}: matmul ops {matmul:.2f} ms, other ops {small:.2f} ms of thread time per call; compute threads "
          f"busy {threads} of the call; first op {median(first_op):.0f} µs after the call starts")
    return median(walls)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=50, help="profiled steps per flavour")
    parser.add_argument("--top", type=int, default=20, help="ops listed per flavour")
    add_set_option(parser)
    args = parser.parse_args()
    quiet_tensorflow()
    import numpy as np

    from rdpg_cli.agent import Agent

    header("update profile: the feed-forward TD3 update of bench/throughput.py, op by op (tf.profiler)")
    config, spec = make_config({**THROUGHPUT_SETS, **parse_sets(args.set)})
    agent = Agent(config, spec, seed=0)
    replay = fill_replay(config, spec, 2000)
    batch = replay.sample(np.random.default_rng(0), config.agent.batch_size, config.replay.sequence_length,
                          config.replay.burn_in)
    walls = {}
    flavours = {"critic-only": [False], "full": [True], "critic-only+full": [False, True]}
    for flavour, flags in flavours.items():
        walls[flavour] = report(flavour, *profile_steps(agent, batch, flags, args.steps), args.top)
    print(f"update profile: critic-only step {walls['critic-only']:.2f} ms, full step {walls['full']:.2f} ms, "
          f"both in one call (as the trainer runs policy delay 2) {walls['critic-only+full']:.2f} ms "
          f"(median under the profiler)")


if __name__ == "__main__":
    main()
