"""What the critic's input costs in `pendulum-novel`'s update: the preset's critic over the whole observation
against the preset of before's critic reading the history through its own LSTM (bench/recurrent_learning.py's
`recurrent-critic`), side by side in one process.

Each variant gets an agent of its preset and a replay of real Pendulum transitions (random actions); blocks of
``--calls`` calls of the preset's two gradient steps per env step (one ``Agent.train_steps`` call) alternate
between the variants, and the ratio of each pair of blocks is taken (the machine's speed drifts; a pair
shares it).

    python bench/critic_input.py
    python bench/critic_input.py --blocks 20 --calls 50

The last line is the headline: the median paired ratio, history / whole observation (> 1: the whole
observation's update is faster).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RECURRENT_CRITIC_SETS, fill_replay, header, make_config, median, quiet_tensorflow

VARIANTS = {
    "whole observation (preset)": {},
    "history (recurrent-critic)": RECURRENT_CRITIC_SETS,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=10)
    parser.add_argument("--calls", type=int, default=30)
    args = parser.parse_args()
    quiet_tensorflow()
    import numpy as np

    from rdpg_cli.agent import Agent

    header("pendulum-novel's update (two gradient steps, one call) by the critic's input")
    runs = {}
    for name, sets in VARIANTS.items():
        config, spec = make_config(sets, preset="pendulum-novel")
        agent = Agent(config, spec, seed=0)
        replay = fill_replay(config, spec, 5000)
        rng = np.random.default_rng(0)
        window = (config.agent.batch_size, config.replay.sequence_length, config.replay.burn_in)
        batches = [replay.sample(rng, *window) for _ in range(config.agent.gradient_steps)]
        flags = [True] * len(batches)
        agent.train_steps(batches, flags)  # traced here, not timed
        runs[name] = (agent, batches, flags)
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(args.blocks):
        for name, (agent, batches, flags) in runs.items():
            start = time.perf_counter()
            for _ in range(args.calls):
                agent.train_steps(batches, flags)
            times[name].append((time.perf_counter() - start) / args.calls * 1000)
    for name, values in times.items():
        print(f"{name}: median {median(values):.2f} ms per call (min {min(values):.2f}, max {max(values):.2f})")
    whole, history = times["whole observation (preset)"], times["history (recurrent-critic)"]
    ratios = [h / w for h, w in zip(history, whole, strict=True)]
    print(f"history / whole observation: {median(ratios):.2f}x (median of {args.blocks} paired blocks of "
          f"{args.calls} calls)")


if __name__ == "__main__":
    main()
