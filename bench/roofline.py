"""How close one rdpg update comes to this CPU's float32 matmul peak, feed-forward and recurrent.

    python bench/roofline.py                  # 15 blocks of 20 updates each; peak over 1024², 2048², 4096²
    python bench/roofline.py --quick          # 7 blocks of 10 updates; peak over 1024², 2048²
    python bench/roofline.py --repeats 30 --updates 20

Three things are measured in one process, so they share the load of the moment:
1. the peak: ``tf.matmul`` of large square float32 matrices in a ``tf.function``, one product per usable
   core running side by side (rdpg runs each op on one thread, ops in parallel: ``rdpg_cli/threads.py``),
   best of several tries per size, at the start and again at the end (the better reading is used);
2. the feed-forward update of bench/throughput.py (Pendulum-v1, [256, 256], batch 256, twin critics,
   policy delay 2, target smoothing): ``Agent.train_steps`` on one fixed batch, after warm-up, a critic-only
   step then a full (critic + actor) step per call, as the trainer runs policy delay 2;
3. the recurrent update (LSTM-128 encoder under the same [256, 256] heads, batch 32, sequence 32, burn-in
   0): the same, reported as transitions/s = batch x sequence / update time.
Achieved = the update's matmul FLOPs (counted below) / its measured time; the share = achieved / peak.
Like the peak, the update's time is the best of several short blocks: on a machine shared with other
work, a best-of peak against a median update would mix a quiet moment with a busy one. The median-based
share is printed too (the two agree on a quiet machine).

Counting (what ``_update`` in rdpg_cli/agent.py computes, per gradient step):
- A dense layer with ``in`` inputs and ``out`` units on ``rows`` rows costs 2·rows·in·out FLOPs forward (one
  multiply and one add per weight per row). Its backward pass costs 2·rows·in·out for the weight gradient
  (Xᵀ·dY) plus 2·rows·in·out for the input gradient (dY·Wᵀ) — the latter only where something upstream
  needs it: never for a first layer fed by data (observations), always for a first layer fed by a
  recurrent encoder, and for the critic's first layer in the actor step (dQ/da comes through it).
- An LSTM encoder with ``d`` inputs and ``u`` units over ``T`` steps (gates 4u): forward 2·B·T·d·4u for the
  input projection (one matmul over all steps) + 2·B·T·u·4u for the recurrent matmuls. Backward: the
  projection's weight gradient 2·B·T·d·4u (no input gradient: the history is data), the recurrent weight
  gradient 2·B·T·u·4u and the gradient into the previous state 2·B·(T-1)·u·4u (none into the zero
  initial state).
- Biases, activations, gate nonlinearities, losses, Adam, target updates and the inverted-gradient
  rescaling are elementwise: O(parameters) or O(rows), not counted. They are real work, so the share is
  an upper bound on what a perfect update could reach at 100 %.
- Critic-only step: target actor forward (on o_{t+1}); each target critic forward; each critic forward and
  backward. Full step: the same plus the actor forward and backward and one critic head forward and its
  input gradients down to the action (no weight gradients: the critic is not updated by the actor step).
  With policy delay d the mean update costs critic-only + (full - critic-only) / d.
- Recurrent: targets unroll burn_in + sequence + 1 steps (the history up to t+1); heads run on
  batch x sequence rows; the actor step reuses the critic's history summary from the critic step.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    RECURRENT_SETS,
    THROUGHPUT_SETS,
    fill_replay,
    header,
    load_text,
    make_config,
    median,
    quiet_tensorflow,
    spread,
)

from rdpg_cli.threads import usable_cores  # after _common: it puts the repository on the path

# -- counting --------------------------------------------------------------------------------------------


def dense(rows: int, sizes: list[tuple[int, int]], forward: bool = True, weight_grads: bool = False,
          input_grads: bool = False, first_input_grad: bool = False) -> int:
    """Matmul FLOPs of a dense stack ``sizes = [(in, out), ...]`` on ``rows`` rows: forward and/or the parts
    of the backward pass named (input gradients of layers 2.. with ``input_grads``; of layer 1 as well with
    ``first_input_grad``)."""
    total = 0
    for i, (n_in, n_out) in enumerate(sizes):
        one = 2 * rows * n_in * n_out
        total += one * forward + one * weight_grads
        total += one * ((input_grads and i > 0) or first_input_grad)
    return total


def lstm(batch: int, steps: int, d: int, units: int, backward: bool = False) -> int:
    gates = 4 * units
    total = 2 * batch * steps * d * gates + 2 * batch * steps * units * gates  # forward
    if backward:
        total += 2 * batch * steps * d * gates  # dW of the projection
        total += 2 * batch * steps * units * gates  # dU
        total += 2 * batch * (steps - 1) * units * gates  # d h_{t-1}
    return total


def stack(n_in: int, layers: list[int], n_out: int) -> list[tuple[int, int]]:
    widths = [n_in, *layers, n_out]
    return list(itertools.pairwise(widths))


@dataclass
class Flops:
    critic_step: int  # one critic-only gradient step
    full_step: int  # one critic + actor gradient step
    policy_delay: int

    @property
    def per_update(self) -> float:
        return self.critic_step + (self.full_step - self.critic_step) / self.policy_delay


def count(config, spec) -> Flops:
    """Matmul FLOPs of one update for ``config`` (see the module docstring for the rules)."""
    agent, net, replay = config.agent, config.network, config.replay
    obs, act = spec.observation_dim, spec.action_dim
    n_critics = 2 if agent.twin_critics else 1
    batch = agent.batch_size
    if net.recurrent == "none":
        rows = batch
        actor_in, critic_in = obs, obs + act
        encoder = {"fwd": 0, "fwd_target": 0, "fwd_bwd": 0}
        data_fed = True  # the first layers read observations: no input gradient there
    else:
        if net.recurrent != "lstm":
            raise SystemExit("roofline counts LSTM encoders only")
        seq, burn = replay.sequence_length, replay.burn_in
        rows = batch * seq
        d = obs + (act if net.history == "obs+prev_action" else 0)
        actor_in, critic_in = net.units, net.units + act
        encoder = {
            "fwd": lstm(batch, burn + seq, d, net.units),
            "fwd_target": lstm(batch, burn + seq + 1, d, net.units),
            # burn-in steps run forward only; the trained steps forward and backward
            "fwd_bwd": lstm(batch, burn, d, net.units) + lstm(batch, seq, d, net.units, backward=True),
        }
        data_fed = False
    actor_sizes = stack(actor_in, net.actor_layers, act)
    critic_sizes = stack(critic_in, net.critic_layers, 1)

    target = (encoder["fwd_target"] + dense(rows, actor_sizes)
              + n_critics * (encoder["fwd_target"] + dense(rows, critic_sizes)))
    critic_train = n_critics * (
        encoder["fwd_bwd"]
        + dense(rows, critic_sizes, weight_grads=True, input_grads=True, first_input_grad=not data_fed))
    critic_step = target + critic_train

    actor_train = encoder["fwd_bwd"] + dense(
        rows, actor_sizes, weight_grads=True, input_grads=True, first_input_grad=not data_fed)
    # The actor step reads dQ/da through the critic's head only: a recurrent agent reuses the history
    # summary of its critic step, and a feed-forward critic has no encoder.
    dqda = dense(rows, critic_sizes, first_input_grad=True, input_grads=True)
    return Flops(critic_step, critic_step + actor_train + dqda, agent.policy_delay)


# -- measuring -------------------------------------------------------------------------------------------


def matmul_peak(sizes: list[int], tries: int) -> tuple[float, str]:
    """Best float32 GFLOP/s of ``tf.matmul`` on square matrices, and which size gave it. One product per
    usable core in one graph: with rdpg's thread pools (one thread per op, ops in parallel) that is how all
    cores get busy; with TensorFlow's default pools each product is split over the cores instead."""
    import tensorflow as tf

    parallel = usable_cores()
    best, where = 0.0, ""
    for n in sizes:
        pairs = [(tf.random.normal([n, n]), tf.random.normal([n, n])) for _ in range(parallel)]
        mm = tf.function(lambda pairs: tf.add_n([tf.reduce_sum(tf.matmul(x, y)[:1, :1]) for x, y in pairs]))
        mm(pairs).numpy()  # trace and warm up
        for _ in range(tries):
            start = time.perf_counter()
            mm(pairs).numpy()
            rate = parallel * 2 * n**3 / (time.perf_counter() - start) / 1e9
            if rate > best:
                best, where = rate, f"{parallel} x {n}x{n}"
    return best, where


def small_matmul_rate(rows: int, width: int, depth: int, tries: int) -> float:
    """GFLOP/s of chains of ``depth`` [rows, width] @ [width, width] matmuls with ReLU, one chain per usable
    core, in one graph: what the update's own shapes allow, with no Python between the matmuls."""
    import tensorflow as tf

    parallel = usable_cores()
    xs = [tf.random.normal([rows, width]) for _ in range(parallel)]
    weights = [tf.random.normal([width, width], stddev=width**-0.5) for _ in range(depth)]

    @tf.function
    def chains(xs):
        out = []
        for x in xs:
            for w in weights:
                x = tf.nn.relu(tf.matmul(x, w))
            out.append(tf.reduce_sum(x[:1, :1]))
        return tf.add_n(out)

    chains(xs).numpy()
    best = float("inf")
    for _ in range(tries):
        start = time.perf_counter()
        chains(xs).numpy()
        best = min(best, time.perf_counter() - start)
    return parallel * 2 * rows * width * width * depth / best / 1e9


def cycle_flags(policy_delay: int) -> list[bool]:
    """One policy-delay cycle of steps as the trainer runs them in one call: the critic-only steps it
    holds back, then the step with the actor (``Trainer.pending_updates``). The same flags say which
    steps move the target networks: TD3 moves them with the actor."""
    return [False] * (policy_delay - 1) + [True]


def time_updates(agent, batch, updates: int, repeats: int, policy_delay: int) -> list[float]:
    """Seconds per update of ``Agent.train_steps`` on one fixed batch, one figure per timing block: one call
    per policy-delay cycle, as the trainer makes them."""
    flags = cycle_flags(policy_delay)
    batches = [batch] * policy_delay
    for _ in range(2):  # trace and warm up
        agent.train_steps(batches, flags, flags)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(updates // policy_delay):
            agent.train_steps(batches, flags, flags)
        times.append((time.perf_counter() - start) / (updates // policy_delay * policy_delay))
    return times


def time_graph_only(agent, batch, updates: int, policy_delay: int) -> float | None:
    """Seconds per update calling the agent's compiled cycle directly on one prepared input (no
    ``train_steps`` wrapper: no packing, no metrics to floats, no numpy actor refresh). A diagnostic only:
    private names, skipped if absent."""
    try:
        import numpy as np
        import tensorflow as tf

        from rdpg_cli.agent import pack_batch

        start_state = batch.start_state or agent.initial_state(batch.observations.shape[0])
        packed = np.stack([pack_batch(batch)] * policy_delay)
        states = tuple(np.stack([s] * policy_delay) for s in start_state)
        args = (tf.constant(packed), tuple(tf.constant(s) for s in states))
        cycle = agent._steps_function(tuple((flag, flag) for flag in cycle_flags(policy_delay)))
        tf.nest.map_structure(lambda t: t.numpy(), cycle(*args))
        start = time.perf_counter()
        for _ in range(updates // policy_delay):
            out = cycle(*args)
        tf.nest.map_structure(lambda t: t.numpy(), out)
        return (time.perf_counter() - start) / (updates // policy_delay * policy_delay)
    except Exception:  # the lead may reshape these private functions at any time
        return None


def measure(name: str, sets: dict, args) -> tuple[list[float], Flops]:
    """Seconds per update of each timing block, and the FLOP count, of one configuration."""
    import numpy as np

    from rdpg_cli.agent import Agent

    config, spec = make_config(sets)
    flops = count(config, spec)
    agent = Agent(config, spec, seed=0)
    replay = fill_replay(config, spec, 2000)
    batch = replay.sample(np.random.default_rng(0), config.agent.batch_size, config.replay.sequence_length,
                          config.replay.burn_in)
    times = time_updates(agent, batch, args.updates, args.repeats, config.agent.policy_delay)
    print(f"{name}: {flops.critic_step / 1e6:.1f} MFLOP critic-only step, {flops.full_step / 1e6:.1f} MFLOP "
          f"full step, {flops.per_update / 1e6:.1f} MFLOP per update (policy delay {flops.policy_delay})")
    print(f"{name}: {spread([t * 1e3 for t in times], '{:.2f}')} ms per update, median (min-max) of "
          f"{len(times)} blocks of {args.updates} ({load_text()})")
    traces = ", ".join(f"{n}={count}" for n, count in sorted(agent.tracing_counts().items()))
    print(f"# {name}: traces {traces or 'n/a'} (1 each: no retracing)")
    graph = time_graph_only(agent, batch, args.updates, config.agent.policy_delay)
    if graph is not None:
        print(f"# {name}: the compiled step functions alone: {graph * 1e3:.2f} ms per update, one block "
              f"(train_steps adds its Python around them)")
    return times, flops


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=None, help="timing blocks per update (default 15)")
    parser.add_argument("--updates", type=int, default=None, help="updates per timing block (default 20)")
    parser.add_argument("--quick", action="store_true", help="7 blocks of 10 updates, fewer peak sizes and tries")
    args = parser.parse_args()
    args.repeats = args.repeats or (7 if args.quick else 15)
    args.updates = args.updates or (10 if args.quick else 20)
    args.updates += args.updates % 2  # whole policy-delay cycles (both configurations use 2)
    quiet_tensorflow()
    import tensorflow as tf

    header("roofline: matmul FLOPs of one update / measured time, against this CPU's float32 matmul peak")
    sizes = [1024, 2048] if args.quick else [1024, 2048, 4096]
    tries = 3 if args.quick else 5
    peak, where = matmul_peak(sizes, tries)
    print(f"peak at start: {peak:.1f} GFLOP/s float32 tf.matmul (best of {tries} per size, at {where}); "
          f"TF {tf.__version__}, threads intra-op {os.environ.get('TF_NUM_INTRAOP_THREADS', 'default')}, "
          f"inter-op {os.environ.get('TF_NUM_INTEROP_THREADS', 'default')}")
    small = small_matmul_rate(256, 256, 32, tries=20)
    print(f"# at the update's shapes: {small:.1f} GFLOP/s for {usable_cores()} parallel chains of 32 [256, 256] @ "
          "[256, 256] matmuls + ReLU")

    ff_times, ff_flops = measure("mlp", THROUGHPUT_SETS, args)
    rec_times, rec_flops = measure("lstm", RECURRENT_SETS, args)

    # The peak again: the best of both readings is the machine's figure under the load of this run.
    peak_end, where_end = matmul_peak(sizes, tries)
    print(f"peak at end: {peak_end:.1f} GFLOP/s (at {where_end}; {load_text()})")
    if peak_end > peak:
        peak, where = peak_end, where_end
    rows = RECURRENT_SETS["agent.batch_size"] * RECURRENT_SETS["replay.sequence_length"]
    shares = {}
    for name, times, flops in [("mlp", ff_times, ff_flops), ("lstm", rec_times, rec_flops)]:
        best, typical = min(times), median(times)
        shares[name] = (100 * flops.per_update / best / 1e9 / peak, 100 * flops.per_update / typical / 1e9 / peak)
        extra = f"; {rows / best:.0f} transitions/s (median block {rows / typical:.0f})" if name == "lstm" else ""
        print(f"{name}: best block {best * 1e3:.2f} ms = {flops.per_update / best / 1e9:.1f} GFLOP/s = "
              f"{shares[name][0]:.1f} % of the {peak:.1f} GFLOP/s peak (median block: {shares[name][1]:.1f} %)"
              f"{extra}")
    print(f"roofline: MLP update {shares['mlp'][0]:.1f} % of peak ({min(ff_times) * 1e3:.2f} ms), LSTM update "
          f"{shares['lstm'][0]:.1f} % ({rows / min(rec_times):.0f} transitions/s); peak {peak:.0f} GFLOP/s; "
          f"best of {args.repeats} blocks (medians: {shares['mlp'][1]:.1f} % / {shares['lstm'][1]:.1f} %)")

if __name__ == "__main__":
    main()
