"""Soak test: RSS and env steps/s over a long training run stay flat (issue 7, "Load").

    python bench/soak.py                    # pendulum 300k env steps, then pendulum-novel 100k
    python bench/soak.py --quick            # smoke test: 30k + 10k steps, sampled every 2500
    python bench/soak.py --steps 500000 --recurrent-steps 50000 --output /tmp/soak.png

The PNG holds both curves of each run; the raw samples go beside it (``soak.json``).

Each run is the real training loop (``rdpg_cli.trainer.Trainer.run``, as ``rdpg train`` builds it) in a
fresh child process, in a temporary run folder, with the preset's 1M-transition replay memory and these
overrides: ``train.eval_every`` = the sampling interval (10k), ``train.eval_episodes`` 2,
``train.checkpoint_every`` 50k (with the replay memory: ``train.save_replay`` stays on), the preset's
``log_every`` (metrics.csv, timing.csv and TensorBoard rows are written as usual). Runs:
``pendulum`` (feed-forward DDPG with the preset's networks, batch 256) and ``pendulum-novel`` (recurrent RDPG, LSTM 64,
batch 32 windows of burn-in 8 + 16 steps). A child records, right after the update of every env step that
is a multiple of ``--every``: the env step, wall time, the process's CPU time (user + system, all threads),
VmRSS from /proc/self/status, ``os.getloadavg()``, and the wall time spent so far in each part of the
loop: ``update`` (``Agent.train_steps``), ``sample`` (``ReplayBuffer.sample``), ``act`` (the acting policy),
``env`` (``env.step``), ``evaluate``, ``log`` (metrics/timing rows, TensorBoard), ``checkpoint``; the rest
of the loop is ``other``. A slowdown can then be pinned on one part (the report prints each part's ms per
env step, first quarter -> last quarter). The evaluation returns (2 episodes each) are printed too.

Replay memory. ``ReplayBuffer`` allocates its arrays with ``np.zeros``; the OS commits those pages lazily, so
RSS would creep up by 33 bytes per transition (Pendulum, and pendulum-novel, which keeps whole observations)
as the ring is first written, up to 33 MB at 1M, and hide or fake a trend. The child therefore pre-touches the
whole replay memory (``fill(0)`` on every array: contents unchanged) right after building the Trainer: from then on
"the replay's memory is allocated", and any RSS growth during training is something else.

Criteria (PASS needs both, for each run):

* RSS flat: baseline = the second sample (the first one after a whole interval containing an evaluation and
  a best.h5 write, i.e. after graph tracing, h5py's import and the first evaluation); every later sample is
  within 5 % of it (max |RSS - baseline| / baseline <= 5 %).
* No steps/s decay: interval steps/s = env steps / (wall time - checkpoint writing time) of each interval,
  i.e. checkpoint writes are excluded (they land in one interval of five and grow with the stored replay;
  their durations are printed separately); evaluations stay in. The first interval (warm-up actions without
  updates, graph tracing) is dropped; of the rest, the median of the last quarter must be >= 90 % of the
  median of the first quarter (a quarter = max(1, n // 4) intervals).

Other developers' jobs share the 2-core machine, so wall-clock steps/s is noisy: the 1-minute load average
is printed with every sample, and so is env steps per CPU-second of this process, which other processes'
load barely moves. If steps/s "decays" while steps per CPU-second does not and the load rose, the cause is
contention, not rdpg, and the headline says so; it still reports FAIL, since it measured no proof of
no decay. The last printed line is the headline.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RSS_TOLERANCE = 0.05  # flat: within 5 % of the baseline
DECAY_FLOOR = 0.90  # no decay: last-quarter median >= 90 % of the first-quarter median
BASELINE_SAMPLE = 1  # RSS baseline: the second sample (see the docstring)


# ------------------------------------------------------------------------------------------------ child


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    raise RuntimeError("no VmRSS in /proc/self/status")


def cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system


def code_version() -> str:
    """The commit the child imported rdpg_cli from, and whether rdpg_cli/ or presets/ had local edits then."""
    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True,
                                  timeout=30).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""
    head = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = git("status", "--porcelain", "--", "rdpg_cli", "presets")
    return head + (" + uncommitted edits to " + ", ".join(line[3:] for line in dirty.splitlines()) if dirty else "")


def run_child(preset: str, steps: int, every: int, checkpoint_every: int, out: Path) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import logging
    import warnings

    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    logging.getLogger("absl").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=UserWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    sys.path.insert(0, str(REPO))

    from rdpg_cli.config import load_config
    from rdpg_cli.envs import resolve_bounds
    from rdpg_cli.trainer import Trainer

    overrides = {
        "train.steps": steps,
        "train.eval_every": every,
        "train.eval_episodes": 2,
        "train.checkpoint_every": checkpoint_every,
    }
    config, spec = resolve_bounds(load_config(preset, overrides))
    version = code_version()  # rdpg_cli is imported above: this is the code that runs
    rss_before = rss_mb()
    with tempfile.TemporaryDirectory(prefix="rdpg-soak-") as folder:
        run_dir = Path(folder)
        trainer = Trainer(config, spec, run_dir)
        rss_built = rss_mb()
        replay = trainer.replay
        for array in (replay.observations, replay.next_observations, replay.actions, replay.rewards,
                      replay.flags, *replay.states):
            array.fill(0)  # commit every page now (np.zeros is lazily backed)
        rss_touched = rss_mb()
        print(f"[{preset}] rdpg_cli at {version}; started {time.strftime('%H:%M:%S')}", flush=True)
        print(f"[{preset}] replay {config.replay.size:,} transitions, {replay.nbytes / 2**20:.1f} MB; RSS "
              f"{rss_before:.0f} MB before the Trainer, {rss_built:.0f} MB built, {rss_touched:.0f} MB with the "
              f"replay pre-touched", flush=True)

        # Where the time goes: wall and process-CPU seconds (all threads) spent in each part of a step, so a
        # slowdown can be pinned on one of them. The rest of the loop (replay.add, noise, checks) is "other".
        parts = ["update", "sample", "act", "env", "evaluate", "log", "checkpoint"]
        spent = {name: 0.0 for name in parts}
        spent_cpu = {name: 0.0 for name in parts}
        checkpoints: list[tuple[int, float]] = []
        evals: list[tuple[int, float]] = []
        samples: list[dict] = []

        def timed(name: str, method):
            def wrapper(*args, **kwargs):
                t0, c0 = time.perf_counter(), time.process_time()
                try:
                    return method(*args, **kwargs)
                finally:
                    dt = time.perf_counter() - t0
                    spent[name] += dt
                    spent_cpu[name] += time.process_time() - c0
                    if name == "checkpoint":
                        checkpoints.append((trainer.env_steps, dt))
                    elif name == "evaluate" and trainer.last_eval is not None:
                        evals.append((trainer.env_steps, trainer.last_eval[0]))
            return wrapper

        trainer.save = timed("checkpoint", trainer.save)
        trainer._evaluate = timed("evaluate", trainer._evaluate)
        trainer._write_row = timed("log", trainer._write_row)
        trainer.agent.train_steps = timed("update", trainer.agent.train_steps)
        trainer.replay.sample = timed("sample", trainer.replay.sample)
        trainer.policy.act = timed("act", trainer.policy.act)  # evaluation acts through its own policy
        trainer.env.step = timed("env", trainer.env.step)
        learn = trainer._learn

        def sample(step: int) -> dict:
            return {"env_steps": step, "wall": time.perf_counter(), "cpu": cpu_seconds(), "rss_mb": rss_mb(),
                    "checkpoint_s": spent["checkpoint"], "evaluate_s": spent["evaluate"],
                    "parts_s": dict(spent), "parts_cpu_s": dict(spent_cpu), "load": list(os.getloadavg())}

        def sampled_learn() -> None:  # the loop calls self._learn() right after each env step
            learn()
            if trainer.env_steps % every == 0:
                s = sample(trainer.env_steps)
                prev = samples[-1]
                samples.append(s)
                wall = s["wall"] - prev["wall"]
                ckpt = s["checkpoint_s"] - prev["checkpoint_s"]
                n = s["env_steps"] - prev["env_steps"]
                ms = {k: 1000 * (s["parts_s"][k] - prev["parts_s"][k]) / n for k in parts}
                other = 1000 * wall / n - sum(ms.values())
                print(f"[{preset}] {s['env_steps']:>7,} steps  RSS {s['rss_mb']:7.1f} MB  "
                      f"steps/s {n / wall:6.1f} (w/o checkpoints {n / max(wall - ckpt, 1e-9):6.1f})  "
                      f"steps/CPU-s {n / max(s['cpu'] - prev['cpu'], 1e-9):6.1f}  "
                      f"ckpt {ckpt:4.1f} s  load {s['load'][0]:.2f}", flush=True)
                print(f"[{preset}]          ms/step: " + " ".join(f"{k} {v:.2f}" for k, v in ms.items())
                      + f" other {other:.2f}", flush=True)

        trainer._learn = sampled_learn
        samples.append(sample(0))
        started = time.perf_counter()
        summary = trainer.run(config.train.steps, fresh=True)
        total_wall = time.perf_counter() - started
        trainer.close()
        checkpoint_mb = (run_dir / "checkpoint.h5").stat().st_size / 2**20
    result = {
        "preset": preset, "version": version, "steps": steps, "every": every, "checkpoint_every": checkpoint_every,
        "replay_size": config.replay.size, "replay_mb": replay.nbytes / 2**20,
        "rss_before_mb": rss_before, "rss_built_mb": rss_built, "rss_touched_mb": rss_touched,
        "samples": samples, "checkpoints": checkpoints, "evals": evals, "parts": parts, "checkpoint_mb": checkpoint_mb,
        "total_wall_s": total_wall, "env_steps": summary.env_steps, "best_eval": summary.best_eval,
        "final_eval": summary.final_eval,
    }
    out.write_text(json.dumps(result))


# ----------------------------------------------------------------------------------------------- parent


def analyse(r: dict) -> dict:
    """Per-interval curves and the two verdicts of one run."""
    s = r["samples"]
    points = s[1:]  # s[0] is the step-0 sample
    steps = [p["env_steps"] for p in points]
    rss = [p["rss_mb"] for p in points]
    raw, net, per_cpu, load = [], [], [], []
    for a, b in itertools.pairwise(s):
        n = b["env_steps"] - a["env_steps"]
        wall = b["wall"] - a["wall"]
        raw.append(n / wall)
        net.append(n / max(wall - (b["checkpoint_s"] - a["checkpoint_s"]), 1e-9))
        per_cpu.append(n / max(b["cpu"] - a["cpu"], 1e-9))
        load.append(b["load"][0])
    out = {"steps": steps, "rss": rss, "raw": raw, "net": net, "per_cpu": per_cpu, "load": load}

    base_i = min(BASELINE_SAMPLE, len(rss) - 1)
    base = rss[base_i]
    after = rss[base_i:]
    worst = max(after, key=lambda v: abs(v - base))
    out.update(rss_base=base, rss_base_step=steps[base_i], rss_last=rss[-1],
               rss_change=(rss[-1] - base) / base, rss_worst=(worst - base) / base,
               rss_ok=abs(worst - base) / base <= RSS_TOLERANCE)

    kept = list(range(1, len(net)))  # drop the warm-up interval
    if not kept:
        out.update(speed_ok=None, speed_first=float("nan"), speed_last=float("nan"), speed_ratio=float("nan"),
                   cpu_ratio=float("nan"), quarter=0)
        return out
    q = max(1, len(kept) // 4)
    first, last = kept[:q], kept[-q:]

    def med(values, idx):
        return statistics.median(values[i] for i in idx)

    out.update(quarter=q, speed_first=med(net, first), speed_last=med(net, last),
               cpu_first=med(per_cpu, first), cpu_last=med(per_cpu, last),
               load_first=med(load, first), load_last=med(load, last))
    out["speed_ratio"] = out["speed_last"] / out["speed_first"]
    out["cpu_ratio"] = out["cpu_last"] / out["cpu_first"]
    out["speed_ok"] = out["speed_ratio"] >= DECAY_FLOOR
    parts = r.get("parts", [])
    per_part = {}
    for name in [*parts, "other"]:
        series = []
        for x, y in itertools.pairwise(s):
            n = y["env_steps"] - x["env_steps"]
            if name == "other":
                inside = sum(y["parts_s"][k] - x["parts_s"][k] for k in parts)
                series.append(1000 * (y["wall"] - x["wall"] - inside) / n)
            else:
                series.append(1000 * (y["parts_s"][name] - x["parts_s"][name]) / n)
        per_part[name] = (med(series, first), med(series, last))
    out["per_part"] = per_part
    return out


def kilo(n: int) -> str:
    return f"{n // 1000}k" if n % 1000 == 0 else f"{n:,}"


def verdict_text(r: dict, a: dict) -> str:
    ok = a["rss_ok"] and a["speed_ok"]
    word = "PASS" if ok else ("n/a" if a["speed_ok"] is None else "FAIL")
    text = (f"{r['preset']} {kilo(r['env_steps'])} steps: RSS {a['rss_base']:.0f} -> {a['rss_last']:.0f} MB "
            f"({a['rss_change']:+.1%} from {kilo(a['rss_base_step'])}, max {a['rss_worst']:+.1%}), steps/s "
            f"{a['speed_first']:.0f} -> {a['speed_last']:.0f} ({a['speed_ratio'] - 1:+.0%}; per CPU-s "
            f"{a.get('cpu_ratio', float('nan')) - 1:+.0%}; load {a.get('load_first', float('nan')):.1f} -> "
            f"{a.get('load_last', float('nan')):.1f}) {word}")
    if a["speed_ok"] is False and a["cpu_ratio"] >= DECAY_FLOOR and a["load_last"] > a["load_first"]:
        text += " (steps per CPU-second flat, load rose: contention)"
    return text


def report(r: dict, a: dict) -> None:
    print(f"\n== {r['preset']}: {r['env_steps']:,} env steps in {r['total_wall_s'] / 60:.1f} min, replay "
          f"{r['replay_size']:,} ({r['replay_mb']:.1f} MB, pre-touched), sampled every {r['every']:,}; "
          f"rdpg_cli at {r.get('version', '?')}")
    print(f"RSS: {r['rss_before_mb']:.0f} MB before the Trainer, {r['rss_built_mb']:.0f} MB built, "
          f"{r['rss_touched_mb']:.0f} MB replay touched; first sample {a['rss'][0]:.0f} MB at "
          f"{kilo(a['steps'][0])}, baseline {a['rss_base']:.0f} MB at {kilo(a['rss_base_step'])}, last "
          f"{a['rss_last']:.0f} MB at {kilo(a['steps'][-1])}; max deviation {a['rss_worst']:+.1%} "
          f"(limit {RSS_TOLERANCE:.0%}): {'flat' if a['rss_ok'] else 'NOT flat'}")
    print(f"steps/s (checkpoint writes excluded): first interval {a['net'][0]:.0f} (warm-up, dropped), "
          f"then {a['net'][1] if len(a['net']) > 1 else float('nan'):.0f} -> last {a['net'][-1]:.0f}; "
          f"median of the first {a['quarter']} vs last {a['quarter']} intervals {a['speed_first']:.0f} -> "
          f"{a['speed_last']:.0f} = {a['speed_ratio']:.0%} (floor {DECAY_FLOOR:.0%})")
    print(f"steps/s with checkpoint writes: {a['raw'][0]:.0f} -> {a['raw'][-1]:.0f}; env steps per CPU-second: "
          f"{a['per_cpu'][0]:.0f} -> {a['per_cpu'][-1]:.0f}")
    ck = ", ".join(f"{kilo(step)} {dt:.2f} s" for step, dt in r["checkpoints"])
    print(f"checkpoint writes (with replay): {ck or 'none'}; last checkpoint.h5 {r['checkpoint_mb']:.1f} MB")
    loads = a["load"]
    print(f"1-min load at the samples: {min(loads):.2f}-{max(loads):.2f} (median {statistics.median(loads):.2f}) "
          f"on {os.cpu_count()} cores")
    if a.get("per_part"):
        print(f"wall ms per env step, median of the first -> last {a['quarter']} intervals: "
              + ", ".join(f"{k} {v0:.2f} -> {v1:.2f}" for k, (v0, v1) in a["per_part"].items()))
    if r.get("evals"):
        print("eval return (2 episodes): " + " ".join(f"{kilo(k)} {v:.0f}" for k, v in r["evals"]))
    best = "-" if r["best_eval"] is None else f"{r['best_eval']:.0f}"
    final = "-" if r["final_eval"] is None else f"{r['final_eval']:.0f}"
    print(f"eval return: best {best}, final {final}")


def plot(runs: list[tuple[dict, dict]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, len(runs), figsize=(6.5 * len(runs), 7.5), squeeze=False)
    for col, (r, a) in enumerate(runs):
        ks = [x / 1000 for x in a["steps"]]
        ax = axes[0][col]
        ax.plot(ks, a["rss"], "o-", color="tab:blue", label="VmRSS")
        base = a["rss_base"]
        ax.axhspan(base * (1 - RSS_TOLERANCE), base * (1 + RSS_TOLERANCE), color="tab:green", alpha=0.12,
                   label=f"baseline ±{RSS_TOLERANCE:.0%}")
        ax.axhline(base, color="tab:green", lw=0.8, ls="--")
        ax.set_ylim(min(a["rss"] + [base * (1 - RSS_TOLERANCE)]) * 0.97,
                    max(a["rss"] + [base * (1 + RSS_TOLERANCE)]) * 1.03)
        ax.set_title(f"{r['preset']}: RSS {a['rss_base']:.0f} -> {a['rss_last']:.0f} MB "
                     f"({a['rss_change']:+.1%}) {'PASS' if a['rss_ok'] else 'FAIL'}")
        ax.set_ylabel("RSS (MB)")
        ax.set_xlabel("env steps (thousands)")
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right", fontsize=8)

        ax = axes[1][col]
        ax.plot(ks, a["net"], "o-", color="tab:orange", label="steps/s (w/o checkpoint writes)")
        ax.plot(ks, a["raw"], ".:", color="tab:red", alpha=0.6, label="steps/s (all)")
        ax.plot(ks, a["per_cpu"], "s--", color="tab:gray", ms=3, alpha=0.7, label="steps per CPU-second")
        ax.set_ylim(0, max(a["net"] + a["per_cpu"]) * 1.6)  # headroom for the legend
        ax.set_ylabel("env steps per second")
        ax.set_xlabel("env steps (thousands); sample = rate over the preceding interval")
        ax.grid(alpha=0.3)
        twin = ax.twinx()
        twin.plot(ks, a["load"], color="tab:purple", lw=0.8, alpha=0.5, label="1-min load (right)")
        twin.set_ylim(0, max(max(a["load"]) * 1.5, os.cpu_count() or 2))
        twin.set_ylabel("1-min load average")
        ok = a["speed_ok"]
        ax.set_title(f"steps/s {a['speed_first']:.0f} -> {a['speed_last']:.0f} ({a['speed_ratio']:.0%} of first "
                     f"quarter) {'n/a' if ok is None else 'PASS' if ok else 'FAIL'}")
        lines = ax.get_legend_handles_labels()
        more = twin.get_legend_handles_labels()
        ax.legend(lines[0] + more[0], lines[1] + more[1], loc="upper left", ncol=2, fontsize=8)
    fig.suptitle("rdpg soak test: RSS and throughput over a long run (replay 1M, pre-touched)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def child(preset: str, steps: int, every: int, checkpoint_every: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="rdpg-soak-out-") as tmp:
        out = Path(tmp) / "result.json"
        command = [sys.executable, __file__, "--worker", preset, "--steps", str(steps), "--every", str(every),
                   "--checkpoint-every", str(checkpoint_every), "--worker-out", str(out)]
        done = subprocess.run(command, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
        if done.returncode or not out.exists():
            raise SystemExit(f"{preset} worker failed (exit {done.returncode})")
        return json.loads(out.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=None, help="env steps of the pendulum run (300000)")
    parser.add_argument("--recurrent-steps", type=int, default=None,
                        help="env steps of the pendulum-novel run (100000; 0 skips it)")
    parser.add_argument("--every", type=int, default=None, help="sampling interval in env steps (10000)")
    parser.add_argument("--checkpoint-every", type=int, default=None, help="train.checkpoint_every (50000)")
    parser.add_argument("--output", type=Path, default=Path("soak.png"), help="the PNG of both curves")
    parser.add_argument("--quick", action="store_true",
                        help="smoke test: 30k + 10k steps, sampled every 2500, checkpoints every 10k")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--worker-out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    steps = args.steps or (30_000 if args.quick else 300_000)
    recurrent = args.recurrent_steps if args.recurrent_steps is not None else (10_000 if args.quick else 100_000)
    every = args.every or (2_500 if args.quick else 10_000)
    checkpoint_every = args.checkpoint_every or (10_000 if args.quick else 50_000)
    if args.worker:
        run_child(args.worker, steps, every, checkpoint_every, args.worker_out)
        return
    if min(steps, every, checkpoint_every) <= 0 or recurrent < 0:
        parser.error("--steps, --every and --checkpoint-every must be > 0, --recurrent-steps >= 0")

    import platform

    one, five, fifteen = os.getloadavg()
    print(f"# soak: pendulum {steps:,} steps + pendulum-novel {recurrent:,} steps, sampled every {every:,}, "
          f"checkpoints every {checkpoint_every:,}")
    print(f"# python {platform.python_version()}, {os.cpu_count()} cores, load {one:.2f} {five:.2f} {fifteen:.2f} "
          f"(1/5/15 min) at start; {time.strftime('%Y-%m-%d %H:%M:%S')}", flush=True)
    jobs = [("pendulum", steps)] + ([("pendulum-novel", recurrent)] if recurrent else [])
    runs = []
    for preset, n in jobs:
        r = child(preset, n, every, checkpoint_every)
        a = analyse(r)
        report(r, a)
        runs.append((r, a))
    plot(runs, args.output)
    raw = args.output.with_suffix(".json")
    raw.write_text(json.dumps([r for r, _ in runs]))
    print(f"\nwrote {args.output} (raw samples: {raw})")
    verdicts = [(a["rss_ok"] and bool(a["speed_ok"])) for _, a in runs]
    print(f"soak: {'; '.join(verdict_text(r, a) for r, a in runs)} => {'PASS' if all(verdicts) else 'FAIL'}")


if __name__ == "__main__":
    main()
