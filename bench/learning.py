"""Learning benchmark (issue 2): the `pendulum` preset, seeds 0, 1, 2, for each bounding method.

For every run: mean deterministic eval return (10 episodes) every 1k env steps up to 10k, and the wall seconds
from the first env step until the first evaluation >= -200 (evaluation time included). For `invert`, also the
share of deterministic eval actions that fall outside the bounds before clipping, and the largest overshoot.

    python bench/learning.py                      # full: 3 seeds x (invert, tanh, clip), ~10 minutes
    python bench/learning.py --boundings invert   # only the default method
    python bench/learning.py --boundings invert --set agent.reward_scale=0.1   # a variation

The last line is the headline: the worst seed's return at 5k and 10k steps and its time to -200, for `invert`.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import os
import platform
import tempfile
from pathlib import Path

import numpy as np
from _common import add_set_option, parse_sets, quiet_tensorflow, sets_text

quiet_tensorflow()  # TensorFlow's thread pools as `rdpg train` sizes them, and no start-up chatter


def run_one(seed: int, bounding: str, steps: int, eval_every: int, preset: str = "pendulum",
            extra: dict | None = None) -> dict:
    """Train one run in-process; return its eval curve, time to -200 and out-of-bounds figures."""
    from rdpg_cli.config import load_config
    from rdpg_cli.envs import resolve_bounds
    from rdpg_cli.evaluation import evaluate
    from rdpg_cli.policy import AgentPolicy
    from rdpg_cli.trainer import Trainer

    overrides = {"train.seed": seed, "train.steps": steps, "agent.bounding": bounding,
                 "train.eval_every": eval_every, "train.log_every": eval_every, "train.checkpoint_every": steps,
                 **(extra or {})}
    config, spec = resolve_bounds(load_config(preset, overrides))
    with tempfile.TemporaryDirectory() as run_dir:
        trainer = Trainer(config, spec, Path(run_dir))
        trainer.run(steps, fresh=True)
        with open(Path(run_dir) / "metrics.csv") as f:
            metrics = {int(r["env_steps"]): r for r in csv.DictReader(f)}
        with open(Path(run_dir) / "timing.csv") as f:
            timing = {int(r["env_steps"]): float(r["wall_seconds"]) for r in csv.DictReader(f)}
        curve = {k: float(r["eval/mean_return"]) for k, r in metrics.items() if r["eval/mean_return"]}
        to_200 = next((timing[k] for k in sorted(curve) if curve[k] >= -200), None)
        steps_to_200 = next((k for k in sorted(curve) if curve[k] >= -200), None)
        # Out-of-bounds figures, and the return over 100 fresh start states: ten episodes leave the mean
        # uncertain by tens of points on Pendulum, whose returns range from about 0 to -400 by start state.
        result = evaluate(AgentPolicy(trainer.agent), config, 100, 10_000 + seed, record_raw=True)
        trainer.close()
    raw = np.concatenate(result.raw_actions)
    overshoot = np.maximum(raw - spec.high, spec.low - raw)
    return {"seed": seed, "bounding": bounding, "curve": curve, "seconds_to_200": to_200,
            "return_100": result.mean_return,
            "steps_to_200": steps_to_200, "outside_share": float(np.mean(overshoot > 0)),
            "max_overshoot": float(max(overshoot.max(), 0.0)), "wall": timing[max(timing)]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--boundings", nargs="+", default=["invert", "tanh", "clip"])
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--eval-every", type=int, default=1000)
    add_set_option(parser)
    args = parser.parse_args()
    sets = parse_sets(args.set)

    print(f"# {datetime.date.today()}  {platform.processor() or platform.machine()}  {os.cpu_count()} cores  "
          f"load {os.getloadavg()[0]:.2f}" + sets_text(sets))
    runs = [run_one(seed, b, args.steps, args.eval_every, extra=sets) for b in args.boundings
            for seed in args.seeds]
    checkpoints = sorted(runs[0]["curve"])
    print("bounding seed " + " ".join(f"{k // 1000:>6}k" for k in checkpoints)
          + "  steps->-200  s->-200  wall s  outside  max overshoot  100-episode return")
    for r in runs:
        to200 = "-" if r["seconds_to_200"] is None else f"{r['seconds_to_200']:.1f}"
        print(f"{r['bounding']:>8} {r['seed']:>4} " + " ".join(f"{r['curve'][k]:>7.0f}" for k in checkpoints)
              + f"  {r['steps_to_200'] or '-':>11} {to200:>8} {r['wall']:>7.1f}  {r['outside_share']:>7.1%}"
              f"  {r['max_overshoot']:13.3f}  {r['return_100']:8.0f}")
    headline = "invert" if any(r["bounding"] == "invert" for r in runs) else runs[0]["bounding"]
    invert = [r for r in runs if r["bounding"] == headline]
    at5 = min(r["curve"].get(5000, -np.inf) for r in invert)
    at10 = min(r["curve"].get(max(checkpoints), -np.inf) for r in invert)
    times = [r["seconds_to_200"] for r in invert]
    worst_time = "never" if None in times else f"{max(times):.1f} s"
    print(f"{invert[0]['bounding']}, seeds {[r['seed'] for r in invert]}: worst eval return {at5:.0f} at 5k and "
          f"{at10:.0f} at {max(checkpoints) // 1000}k env steps; slowest to >= -200: {worst_time} "
          f"(targets: >= -200 by 5k within 20 s, >= -150 at 10k)")


if __name__ == "__main__":
    main()
