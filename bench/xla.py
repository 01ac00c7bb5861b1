"""Would XLA pay for the feed-forward update? rdpg's plain graph against ``jit_compile`` with XLA's CPU matmul paths.

    python bench/xla.py                       # 3 rounds, every variant once per round, alternating
    python bench/xla.py --rounds 5 --variants plain xla-xnnpack

The update of bench/throughput.py (Pendulum-v1, [256, 256], batch 256, twin critics, policy delay 2, target
smoothing), called as the trainer calls it: a critic-only step and a full step in one ``Agent.train_steps``
call, on one fixed batch. Each variant runs in a process of its own (XLA reads ``XLA_FLAGS`` and the thread
pools their sizes once per process), rounds alternating so that the machine's load falls on all alike:

- ``plain``: rdpg as shipped (a TensorFlow graph, oneDNN kernels, one thread per op, ops side by side);
- ``xla``: the same step functions compiled by XLA (``jit_compile=True``), ``--intra`` threads per op;
- ``xla-xnnpack`` / ``xla-onednn``: XLA with its XNNPACK or oneDNN matmuls (``--xla_cpu_use_xnnpack``,
  ``--xla_cpu_use_onednn``).

Prints each variant's milliseconds per update (median over rounds of each round's median block) and, last,
the best XLA variant's speed relative to ``plain``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import THROUGHPUT_SETS, fill_replay, header, load_text, make_config, median, quiet_tensorflow

VARIANTS = {
    "plain": (False, ""),
    "xla": (True, ""),
    "xla-xnnpack": (True, "--xla_cpu_use_xnnpack=true"),
    "xla-onednn": (True, "--xla_cpu_use_onednn=true"),
}


def worker(variant: str, blocks: int, calls: int) -> None:
    """Time the update in this process; print one JSON line: milliseconds per update of each block."""
    quiet_tensorflow()
    import numpy as np
    import tensorflow as tf

    from rdpg_cli.agent import Agent

    jit, _ = VARIANTS[variant]
    config, spec = make_config(THROUGHPUT_SETS)
    agent = Agent(config, spec, seed=0)
    if jit:  # the step functions are wrapped when first called: this reaches all of them
        agent._wrap = lambda f: tf.function(f, autograph=False, jit_compile=True)
    replay = fill_replay(config, spec, 2000)
    batch = replay.sample(np.random.default_rng(0), config.agent.batch_size, 1, 0)
    flags = [False, True]
    for _ in range(20):  # trace, compile and warm up
        agent.train_steps([batch, batch], flags, flags)
    times = []
    for _ in range(blocks):
        start = time.perf_counter()
        for _ in range(calls):
            agent.train_steps([batch, batch], flags, flags)
        times.append((time.perf_counter() - start) / (2 * calls) * 1e3)
    print(json.dumps(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--blocks", type=int, default=15, help="timing blocks per process")
    parser.add_argument("--calls", type=int, default=10, help="calls (two updates each) per block")
    parser.add_argument("--intra", type=int, default=2, help="threads per op under XLA (1 was slower: README)")
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--worker", choices=list(VARIANTS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.blocks, args.calls)
        return
    if "plain" not in args.variants:
        args.variants.insert(0, "plain")
    header("XLA against rdpg's plain graph: the feed-forward TD3 update, two steps per call")
    results: dict[str, list[float]] = {v: [] for v in args.variants}
    for round_ in range(args.rounds):
        for variant in args.variants:
            jit, flags = VARIANTS[variant]
            env = dict(os.environ, XLA_FLAGS=flags)
            if jit:
                env["TF_NUM_INTRAOP_THREADS"] = str(args.intra)
            command = [sys.executable, __file__, "--worker", variant, "--blocks", str(args.blocks),
                       "--calls", str(args.calls)]
            out = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout
            blocks = json.loads(out.strip().splitlines()[-1])
            results[variant].append(median(blocks))
            print(f"round {round_ + 1} {variant}: {median(blocks):.2f} ms per update (median block; best "
                  f"{min(blocks):.2f}; {load_text()})", flush=True)
    typical = {v: median(ms) for v, ms in results.items()}
    for variant, ms in typical.items():
        print(f"{variant}: {ms:.2f} ms per update, median of {args.rounds} rounds")
    best = min((v for v in typical if v != "plain"), key=typical.get, default=None)
    if best is None:
        print("xla: no XLA variant chosen")
        return
    print(f"xla: the fastest XLA variant ({best}) runs the update at {typical['plain'] / typical[best]:.2f}x the "
          f"speed of the plain graph ({typical[best]:.2f} against {typical['plain']:.2f} ms per update)")


if __name__ == "__main__":
    main()
