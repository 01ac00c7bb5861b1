"""Action latency: one ``Agent.act()`` for a single observation, MLP and LSTM actors.

    python bench/latency.py                  # 10000 calls per figure, 3 repeats
    python bench/latency.py --quick          # 1000 calls, 1 repeat
    python bench/latency.py --calls 20000 --repeats 5

Actors: the MLP [256, 256] of bench/throughput.py and the LSTM-128 (history o_t + a_{t-1}, [256, 256] head)
of the recurrent update in bench/roofline.py, on Pendulum-v1, freshly initialised (weights do not change
the cost). Each call is timed alone with ``perf_counter_ns`` (observation in, action out, the recurrent
state carried from call to call as the trainer does); a repeat's figure is the median over its calls, and
the median over repeats is reported. ``Agent.act_tf`` (the TensorFlow reference the numpy path is tested
against) is timed the same way for comparison.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RECURRENT_SETS, THROUGHPUT_SETS, header, load_text, make_config, median, quiet_tensorflow


def per_call(act, observations, prev_action, state) -> float:
    """Median µs of ``act(observation, prev_action, state)`` over the observations given."""
    clock = time.perf_counter_ns
    times = []
    for observation in observations:
        start = clock()
        action, state = act(observation, prev_action, state)
        times.append(clock() - start)
        prev_action = action
    return median(times) / 1e3


def measure(name: str, sets: dict, calls: int, repeats: int) -> tuple[float, float]:
    import numpy as np

    from rdpg_cli.agent import Agent

    config, spec = make_config(sets)
    agent = Agent(config, spec, seed=0)
    rng = np.random.default_rng(0)
    # Realistic Pendulum observations (cos, sin, angular velocity), one per call.
    theta, velocity = rng.uniform(-np.pi, np.pi, calls), rng.uniform(-8, 8, calls)
    observations = np.stack([np.cos(theta), np.sin(theta), velocity], axis=1).astype(np.float32)
    prev_action = np.zeros(spec.action_dim, np.float32)
    for act in (agent.act, agent.act_tf):  # build the numpy copy, trace the tf.function
        for _ in range(20):
            act(observations[0], prev_action, agent.initial_state(1))
    numpy_us = [per_call(agent.act, observations, prev_action, agent.initial_state(1)) for _ in range(repeats)]
    tf_us = [per_call(agent.act_tf, observations, prev_action, agent.initial_state(1))
             for _ in range(repeats)]
    print(f"{name}: act {median(numpy_us):.1f} µs, act_tf {median(tf_us):.1f} µs "
          f"(median per call; repeats {', '.join(f'{u:.1f}' for u in numpy_us)} / "
          f"{', '.join(f'{u:.1f}' for u in tf_us)}; {load_text()})")
    return median(numpy_us), median(tf_us)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=None, help="calls per repeat (default 10000)")
    parser.add_argument("--repeats", type=int, default=None, help="repeats (median reported; default 3)")
    parser.add_argument("--quick", action="store_true", help="1000 calls, 1 repeat")
    args = parser.parse_args()
    calls = args.calls or (1000 if args.quick else 10_000)
    repeats = args.repeats or (1 if args.quick else 3)
    quiet_tensorflow()
    header(f"latency: one Agent.act() for one observation, median over {calls} calls, {repeats} repeat(s)")
    mlp, mlp_tf = measure("mlp [256, 256]", THROUGHPUT_SETS, calls, repeats)
    lstm, lstm_tf = measure("lstm-128 + [256, 256]", RECURRENT_SETS, calls, repeats)
    print(f"act latency: MLP {mlp:.1f} µs, LSTM-128 {lstm:.1f} µs (TF reference {mlp_tf:.0f} / {lstm_tf:.0f} µs; "
          f"median of {calls} calls)")


if __name__ == "__main__":
    main()
