"""Recurrent learning benchmark (issue 3): `pendulum-novel` (Pendulum-v1 without the angular velocity).

Seeds 0, 1, 2: mean deterministic eval return (10 episodes) every 2.5k env steps up to 30k, and the wall
seconds from the first env step until the first evaluation >= -200 (evaluation time included); side by side,
the preset of before (`recurrent-critic`: the critic reads the history through its own LSTM instead of the whole
observation) and the preset with `network.recurrent=none` (a memoryless actor, which cannot infer the velocity).

    python bench/recurrent_learning.py                       # full: 3 seeds x (lstm, recurrent-critic, none) x 30k
    python bench/recurrent_learning.py --steps 10000 --variants lstm
    python bench/recurrent_learning.py --steps 10000 --variants lstm --set agent.critic_lr=3e-4   # a variation

The last line is the headline: the worst LSTM seed's return at 10k steps and its time to -200.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _common import RECURRENT_CRITIC_SETS, add_set_option, parse_sets, sets_text
from learning import run_one  # importing it sets TensorFlow up quietly (_common.quiet_tensorflow)

VARIANTS = {
    "lstm": {},
    "recurrent-critic": RECURRENT_CRITIC_SETS,
    "none": {"network.recurrent": "none", "replay.burn_in": 0, "replay.sequence_length": 1,
             "agent.batch_size": 256, "network.actor_layers": [256, 256], "network.critic_layers": [256, 256]},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--steps", type=int, default=30_000)
    parser.add_argument("--eval-every", type=int, default=2500)
    parser.add_argument("--preset", default="pendulum-novel")
    add_set_option(parser)
    args = parser.parse_args()
    sets = parse_sets(args.set)

    print(f"# {datetime.date.today()}  {platform.machine()}  {os.cpu_count()} cores  load {os.getloadavg()[0]:.2f}"
          f"  preset {args.preset}" + sets_text(sets))
    runs = []
    for variant in args.variants:
        for seed in args.seeds:
            r = run_one(seed, "invert", args.steps, args.eval_every, preset=args.preset,
                        extra={**VARIANTS[variant], **sets})
            r["variant"] = variant
            runs.append(r)
            print(f"{variant:>5} seed {seed}: " + " ".join(f"{k / 1000:g}k:{v:.0f}" for k, v in
                                                            sorted(r["curve"].items()))
                  + f"  to -200: {r['steps_to_200'] or '-'} steps, "
                  f"{'-' if r['seconds_to_200'] is None else format(r['seconds_to_200'], '.0f')} s; "
                  f"wall {r['wall']:.0f} s", flush=True)
    lstm = [r for r in runs if r["variant"] == "lstm"] or runs
    at10 = min(r["curve"].get(10_000, float("-inf")) for r in lstm)
    times = [r["seconds_to_200"] for r in lstm]
    slowest = "never" if None in times else f"{max(times):.0f} s"
    summary = (f"{lstm[0]['variant']}, seeds {[r['seed'] for r in lstm]}: worst eval return {at10:.0f} at 10k env "
               f"steps; slowest to >= -200: {slowest} (target: >= -200 by 10k within 120 s)")
    other = [r for r in runs if r["variant"] == "none"]
    if other:
        last = max(other[0]["curve"])
        summary += f"; memoryless at {last // 1000}k: {max(r['curve'][last] for r in other):.0f} at best"
    print(summary)


if __name__ == "__main__":
    main()
