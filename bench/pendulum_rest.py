"""Where a trained Pendulum policy comes to rest: the torque it holds at the end of each evaluation episode.

    python bench/pendulum_rest.py runs/pendulum/<stamp>/checkpoint.h5
    python bench/pendulum_rest.py CHECKPOINT --episodes 10 --seed 0     # the episodes `rdpg train` evaluates on

Why: at rest (no velocity) Pendulum-v1's dynamics read 0 = 15 sin(theta) + 3 u, so a policy that ends an
episode holding a constant torque u is holding the pendulum still at theta = asin(-u / 5) off upright, which
costs theta^2 + 0.001 u^2 every step instead of 0. A policy that balances exactly upright ends near u = 0.
For each episode: the return, the last raw action (before clipping), whether the last 20 actions are constant
(at rest), and the implied angle and cost per step. The last line is the mean implied cost per step.
With ``--critic`` (feed-forward agents seeing the full observation) it first reads the first critic at rest
states near upright: the actor's action, dQ/da there, and Q over actions -2..2 (every true Q is <= 0).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from _common import quiet_tensorflow

quiet_tensorflow()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0, help="evaluation seed (default 0: train.eval_seed)")
    parser.add_argument("--critic", action="store_true", help="also read the critic at rest states near upright")
    args = parser.parse_args()

    from rdpg_cli.evaluation import evaluate
    from rdpg_cli.policy import AgentPolicy, load_agent

    config, agent, _ = load_agent(args.checkpoint)
    if config.env.id != "Pendulum-v1":
        raise SystemExit(f"error: {args.checkpoint}: env {config.env.id}, not Pendulum-v1")
    if args.critic:
        read_critic(agent, config)
    result = evaluate(AgentPolicy(agent), config, args.episodes, args.seed, record_raw=True)
    steps = np.asarray(result.raw_actions, np.float64).ravel()  # one action per env step, episodes in turn
    ends = np.cumsum(result.lengths)
    costs = []
    for i, (episode_return, end, length) in enumerate(zip(result.returns, ends, result.lengths, strict=True)):
        actions = steps[end - length:end]
        last = float(np.clip(actions[-1], -2.0, 2.0))
        at_rest = bool(np.ptp(actions[-20:]) < 1e-3)
        theta = float(np.arcsin(np.clip(-last / 5.0, -1.0, 1.0)))
        cost = theta**2 + 0.001 * last**2
        costs.append(cost)
        print(f"episode {i}: return {episode_return:8.1f}  last action {actions[-1]:+.3f}  "
              f"{'at rest' if at_rest else 'moving '}  implied angle {theta:+.3f} rad, cost {cost:.4f} per step")
    print(f"mean implied cost per step at the end of an episode: {np.mean(costs):.4f} "
          f"({args.episodes} episodes, eval seed {args.seed})")


def read_critic(agent, config) -> None:
    import tensorflow as tf

    if config.recurrent or config.env.observation_indices is not None:
        raise SystemExit("error: --critic reads feed-forward agents that see (cos, sin, velocity)")
    actions = np.linspace(-2.0, 2.0, 9, dtype=np.float32)
    for theta in (-0.2, -0.1, 0.0, 0.1, 0.2):
        observation = tf.constant([[[np.cos(theta), np.sin(theta), 0.0]]], tf.float32)
        action = agent.policy_actor()(observation)[0]
        with tf.GradientTape() as tape:
            tape.watch(action)
            q = agent.critics[0](observation, action)[0]
        slope = float(tape.gradient(q, action).numpy().ravel()[0])
        grid = [float(agent.critics[0](observation, tf.constant([[[a]]]))[0].numpy().ravel()[0]) for a in actions]
        print(f"at rest, theta {theta:+.2f} rad: actor {float(action.numpy().ravel()[0]):+.3f}, dQ/da there "
              f"{slope:+.3f}; Q at actions -2..2: " + " ".join(f"{v:.2f}" for v in grid))


if __name__ == "__main__":
    main()
