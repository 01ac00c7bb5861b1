"""Env steps per second with one gradient step per env step: rdpg against Stable-Baselines3 TD3.

    python bench/throughput.py                 # 3 repeats each, 2000-step windows
    python bench/throughput.py --quick         # 3 repeats each, 500-step windows
    python bench/throughput.py --repeats 5 --window 3000
    python bench/throughput.py --profile 25    # one rdpg run under cProfile: where the loop's time goes

Both sides train Pendulum-v1 with the settings of ``bench/_common.THROUGHPUT_SETS``: networks [256, 256],
batch 256, Adam 1e-3 for actor and critic, gamma 0.99, tau 0.005, a 1M-transition replay memory, 1000
warm-up steps of uniform random actions, one gradient step per env step, Gaussian exploration noise
0.1 x half the action range, twin critics, policy delay 2, target smoothing noise 0.2 clipped at 0.5
(x half the range). rdpg keeps its own bounding (inverting gradients, linear actor output); SB3's actor
ends in tanh. Everything else is SB3's default TD3 (``MlpPolicy``, ``device="cpu"``).

Each repeat is a fresh child process (``--worker rdpg|sb3``), alternating between the two and swapping
which goes first on every other pair, so drifting load from other processes falls on both alike.
A child times a fixed window of env steps that starts ``--skip`` steps after the warm-up ends: imports,
network construction, graph tracing and the first updates are outside it. rdpg's side runs the real
``rdpg_cli.trainer.Trainer.run`` loop (evaluation, logging and checkpoints pushed past the window) and
reads the clock after the update of the window's first and last env step; SB3's side reads it in a
callback after the same env steps (each SB3 iteration is one env step then one gradient step).

Besides wall-clock steps/s (the headline), each child reports its process CPU time per env step (user +
system, all threads, ``time.process_time``). On a loaded machine the wall-clock figure also reflects how
much CPU a process wins from the scheduler, and busy-waiting threads inflate CPU time: read the two
together, and prefer a quiet machine for the headline. TensorFlow's pools can be sized for an experiment
with ``TF_NUM_INTRAOP_THREADS`` / ``TF_NUM_INTEROP_THREADS`` in the environment (the children inherit it);
torch's with ``--torch-threads``.

Measured here (2026-11-25): when other processes keep the load above the core count, torch's default
OpenMP threads spin-wait and SB3 drops from ~80 to ~7 steps/s at ~80 CPU ms per step; with
``OMP_WAIT_POLICY=PASSIVE`` or ``--torch-threads 1`` it keeps ~80. A ratio taken under such load with
torch's defaults measures that pathology, not rdpg: the script warns when the load exceeded the cores.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    QUIET_RUN_SETS,
    THROUGHPUT_SETS,
    header,
    load_text,
    make_config,
    median,
    parse_sets,
    quiet_tensorflow,
    spread,
)

WARMUP = THROUGHPUT_SETS["agent.warmup_steps"]


def run_rdpg(skip: int, window: int, sets: dict, profile: int = 0) -> dict:
    quiet_tensorflow()
    first, last = WARMUP + skip, WARMUP + skip + window
    extra = {**QUIET_RUN_SETS, **sets, "train.steps": last + 1}
    config, spec = make_config(THROUGHPUT_SETS, extra)

    from rdpg_cli.trainer import Reporter, Trainer

    clock: dict[int, float] = {}
    cpu: dict[int, float] = {}
    profiler = None
    if profile:
        import cProfile

        profiler = cProfile.Profile()
    with tempfile.TemporaryDirectory(prefix="rdpg-bench-") as run_dir:
        trainer = Trainer(config, spec, Path(run_dir), Reporter())
        learn = trainer._learn

        def timed_learn() -> None:  # the loop calls self._learn() right after each env step
            learn()
            if trainer.env_steps in (first, last):
                clock[trainer.env_steps] = time.perf_counter()
                cpu[trainer.env_steps] = time.process_time()
            if profiler is not None and trainer.env_steps == first:
                profiler.enable()
            if trainer.env_steps == last:
                trainer.stop_requested = "bench"  # ends the loop: no final evaluation
                if profiler is not None:
                    profiler.disable()

        trainer._learn = timed_learn
        trainer.run(config.train.steps, fresh=True)
        trainer.close()
        traces = tracing_counts(trainer.agent)
    if profiler is not None:
        import pstats

        print(f"# cProfile of the timed window ({window} env steps), by own time then by cumulative time:")
        stats = pstats.Stats(profiler, stream=sys.stdout).strip_dirs()
        stats.sort_stats("tottime").print_stats(profile)
        stats.sort_stats("cumulative").print_stats(profile)
    return {
        "steps_per_s": window / (clock[last] - clock[first]),
        "cpu_ms_per_step": 1e3 * (cpu[last] - cpu[first]) / window,
        "threads": f"TF intra-op {os.environ.get('TF_NUM_INTRAOP_THREADS', 'default')}, "
                   f"inter-op {os.environ.get('TF_NUM_INTEROP_THREADS', 'default')} (rdpg_cli.threads); "
                   f"traces {traces}",
    }


def tracing_counts(agent) -> str:
    """How often each of the agent's compiled sequences of steps was traced (1 each is right: no retracing)."""
    return ", ".join(f"{name}={count}" for name, count in sorted(agent.tracing_counts().items())) or "n/a"


def run_sb3(skip: int, window: int, torch_threads: int | None) -> dict:
    import numpy as np
    import torch

    if torch_threads:
        torch.set_num_threads(torch_threads)
    from stable_baselines3 import TD3
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.noise import NormalActionNoise

    first, last = WARMUP + skip, WARMUP + skip + window
    s = THROUGHPUT_SETS

    class Clock(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.times: dict[int, float] = {}
            self.cpu: dict[int, float] = {}

        def _on_step(self) -> bool:
            # Called right after env step num_timesteps is taken; the update for it follows before the
            # next call, so [first, last] spans (last - first) env steps and as many updates, as for rdpg.
            if self.num_timesteps in (first, last):
                self.times[self.num_timesteps] = time.perf_counter()
                self.cpu[self.num_timesteps] = time.process_time()
            return self.num_timesteps < last

    # SB3 adds the noise to the action scaled to [-1, 1]: sigma 0.1 there is 0.1 x half the range.
    # Its target_policy_noise and target_noise_clip are in the same scaled units.
    model = TD3(
        "MlpPolicy", "Pendulum-v1",
        learning_rate=s["agent.actor_lr"], buffer_size=s["replay.size"], learning_starts=WARMUP,
        batch_size=s["agent.batch_size"], tau=s["agent.target_update"], gamma=s["agent.gamma"],
        train_freq=s["agent.train_interval"], gradient_steps=s["agent.gradient_steps"],
        action_noise=NormalActionNoise(mean=np.zeros(1), sigma=s["agent.noise_sigma"] * np.ones(1)),
        policy_delay=s["agent.policy_delay"], target_policy_noise=s["agent.target_noise"],
        target_noise_clip=s["agent.target_noise_clip"],
        policy_kwargs={"net_arch": s["network.actor_layers"]}, seed=0, device="cpu", verbose=0)
    clock = Clock()
    model.learn(total_timesteps=last + 10, callback=clock)
    return {
        "steps_per_s": window / (clock.times[last] - clock.times[first]),
        "cpu_ms_per_step": 1e3 * (clock.cpu[last] - clock.cpu[first]) / window,
        "threads": f"torch {torch.__version__} intra-op {torch.get_num_threads()}, "
                   f"inter-op {torch.get_num_interop_threads()} ({'set' if torch_threads else 'defaults'}), "
                   f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}",
    }


def child(side: str, args: argparse.Namespace) -> dict:
    command = [sys.executable, __file__, "--worker", side, "--skip", str(args.skip), "--window", str(args.window)]
    if args.torch_threads:
        command += ["--torch-threads", str(args.torch_threads)]
    for text in args.set or []:
        command += ["--set", text]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode or not lines:
        sys.stderr.write(done.stdout[-3000:] + done.stderr[-3000:])
        raise SystemExit(f"{side} worker failed (exit {done.returncode})")
    return json.loads(lines[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="repeats of each side (median reported)")
    parser.add_argument("--window", type=int, default=None, help="timed env steps per repeat (default 2000)")
    parser.add_argument("--skip", type=int, default=200, help="env steps after the warm-up before timing")
    parser.add_argument("--quick", action="store_true", help="500-step windows")
    parser.add_argument("--only", choices=["rdpg", "sb3"], help="run one side only (no ratio)")
    parser.add_argument("--set", action="append", help="extra rdpg override section.key=value (repeat)")
    parser.add_argument("--torch-threads", type=int, help="torch.set_num_threads for SB3 (default: torch's own)")
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="profile one rdpg run's window in this process; print the top N functions")
    parser.add_argument("--worker", choices=["rdpg", "sb3"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.window is None:
        args.window = 500 if args.quick else 2000

    if args.worker == "rdpg" or args.profile:
        out = run_rdpg(args.skip, args.window, parse_sets(args.set), args.profile)
        print(json.dumps(out) if args.worker else f"rdpg (profiled, slower): {out['steps_per_s']:.0f} steps/s")
        return
    if args.worker == "sb3":
        print(json.dumps(run_sb3(args.skip, args.window, args.torch_threads)))
        return

    header("throughput: env steps/s, one gradient step per env step, Pendulum-v1, [256, 256], batch 256, TD3")
    print(f"# window: env steps {WARMUP + args.skip}..{WARMUP + args.skip + args.window} of each run "
          f"(warm-up {WARMUP}, skip {args.skip}); {args.repeats} repeats each, alternating")
    sides = [args.only] if args.only else ["rdpg", "sb3"]
    results: dict[str, list[float]] = {side: [] for side in sides}
    cpu: dict[str, list[float]] = {side: [] for side in sides}
    threads: dict[str, str] = {}
    loads = []
    for repeat in range(args.repeats):
        order = sides if repeat % 2 == 0 else sides[::-1]
        for side in order:
            loads.append(os.getloadavg()[0])
            out = child(side, args)
            loads.append(os.getloadavg()[0])
            results[side].append(out["steps_per_s"])
            cpu[side].append(out["cpu_ms_per_step"])
            threads[side] = out["threads"]
            print(f"repeat {repeat + 1} {side:4s}: {out['steps_per_s']:7.1f} steps/s, "
                  f"{out['cpu_ms_per_step']:6.2f} CPU ms per step   ({load_text()})", flush=True)
    for side in sides:
        print(f"# {side}: threads {threads[side]}")
        print(f"{side}: {spread(results[side])} steps/s, {spread(cpu[side], '{:.2f}')} CPU ms per step (all "
              f"threads), median (min-max) of {args.repeats}")
    print(f"# {load_text()} at end; 1-min load during the run {min(loads):.2f}-{max(loads):.2f}")
    if max(loads) > (os.cpu_count() or 1):
        print("# warning: the load exceeded the core count: other processes competed for the CPU. torch's "
              "OpenMP threads busy-wait and collapse then (SB3 at a few steps/s, tens of CPU ms per step): "
              "compare with --torch-threads 1 or OMP_WAIT_POLICY=PASSIVE, or on a quiet machine")
    if args.only:
        print(f"{args.only}: {median(results[args.only]):.0f} steps/s (median of {args.repeats})")
        return
    rdpg, sb3 = median(results["rdpg"]), median(results["sb3"])
    # Under load the wall-clock ratio also measures how much CPU each side wins from the scheduler (more
    # threads, more share); CPU time per step does not depend on that, so it is shown beside it.
    print(f"# CPU time per env step, SB3 / rdpg: {median(cpu['sb3']) / median(cpu['rdpg']):.2f}x")
    print(f"ratio vs SB3 TD3: {rdpg / sb3:.2f}x (rdpg {rdpg:.0f} steps/s, SB3 {sb3:.0f} steps/s, "
          f"median of {args.repeats})")


if __name__ == "__main__":
    main()
