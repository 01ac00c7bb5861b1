"""The best return any policy can get on rdpg's Pendulum-v1 evaluation episodes, by dynamic programming.

    python bench/pendulum_optimum.py                          # the 10 episodes `rdpg train` evaluates on
    python bench/pendulum_optimum.py --eval-seed 10000 --episodes 100   # bench/learning.py's 100-episode set
    python bench/pendulum_optimum.py --grid 200x161           # coarser and faster (~12 s)

Why: bench/learning.py reports the mean return over a fixed set of start states (``train.eval_seed``), and
a figure like "-150 at 10k steps" only means something next to what the best policy scores on those same
states: the angle and velocity each episode starts from decide most of its cost.

How: Pendulum-v1's dynamics are known and deterministic (gymnasium's ``PendulumEnv.step``: g = 10, m = l = 1,
dt = 0.05, speed clipped to 8, torque to 2), the episode has 200 steps and no discount, so the optimal
value V_t(theta, velocity) follows from backward induction over t = 199..0 on a grid (angle periodic,
bilinear interpolation, 41 torques). The DP's greedy policy (161 torques, the real continuous state) then
drives the real environment from each evaluation start state: its return is achieved, so the true optimum
is at least that; the DP value at the start state estimates the optimum itself. Refining the grid
(200x161 -> 400x321) moves the figures by about 1, which bounds the discretisation error.

The last line is the mean return of the DP policy over the chosen episodes.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import header

GRAVITY, DT, MAX_SPEED, MAX_TORQUE, HORIZON = 10.0, 0.05, 8.0, 2.0, 200


def angle_normalize(x: np.ndarray) -> np.ndarray:
    return ((x + np.pi) % (2 * np.pi)) - np.pi


def dynamics(theta, velocity, torque):
    """One step of gymnasium's PendulumEnv (m = l = 1), vectorised."""
    velocity = np.clip(velocity + (3 * GRAVITY / 2 * np.sin(theta) + 3.0 * torque) * DT, -MAX_SPEED, MAX_SPEED)
    return theta + velocity * DT, velocity


def cost(theta, velocity, torque):
    return angle_normalize(theta) ** 2 + 0.1 * velocity**2 + 0.001 * torque**2


class Grid:
    """Bilinear interpolation of a value table over (angle, periodic) x (velocity, clamped)."""

    def __init__(self, n_angles: int, n_velocities: int):
        self.n_angles, self.n_velocities = n_angles, n_velocities
        self.angles = np.linspace(-np.pi, np.pi, n_angles, endpoint=False)
        self.velocities = np.linspace(-MAX_SPEED, MAX_SPEED, n_velocities)

    def weights(self, theta, velocity):
        x = (angle_normalize(theta) + np.pi) / (2 * np.pi) * self.n_angles
        i0 = np.floor(x).astype(int)
        wx = x - i0
        i0 %= self.n_angles
        i1 = (i0 + 1) % self.n_angles
        y = (velocity + MAX_SPEED) / (2 * MAX_SPEED) * (self.n_velocities - 1)
        j0 = np.clip(np.floor(y).astype(int), 0, self.n_velocities - 2)
        wy = np.clip(y - j0, 0.0, 1.0)
        return i0, i1, j0, wx, wy

    @staticmethod
    def interpolate(table, weights):
        i0, i1, j0, wx, wy = weights
        return ((1 - wx) * ((1 - wy) * table[i0, j0] + wy * table[i0, j0 + 1])
                + wx * ((1 - wy) * table[i1, j0] + wy * table[i1, j0 + 1]))


def optimal_values(grid: Grid, torques: np.ndarray) -> list[np.ndarray]:
    """V_t on the grid for t = 0..HORIZON (V_HORIZON = 0), by backward induction."""
    theta, velocity = np.meshgrid(grid.angles, grid.velocities, indexing="ij")
    successors = [grid.weights(*dynamics(theta, velocity, u)) for u in torques]  # time-invariant: once
    rewards = [-cost(theta, velocity, u) for u in torques]
    values = [np.zeros_like(theta)] * (HORIZON + 1)
    for t in range(HORIZON - 1, -1, -1):
        values[t] = np.max([r + grid.interpolate(values[t + 1], s) for r, s in zip(rewards, successors, strict=True)],
                           axis=0)
    return values


def run_episode(env, reset_seed: int, grid: Grid, values: list[np.ndarray], torques: np.ndarray
                ) -> tuple[float, float, tuple[float, float]]:
    """The DP policy's return on the real environment from one start state, the DP's value there, and the
    start state (angle, velocity)."""
    env.reset(seed=reset_seed)
    theta, velocity = env.unwrapped.state
    start = (float(theta), float(velocity))
    predicted = float(grid.interpolate(values[0], grid.weights(np.array([theta]), np.array([velocity])))[0])
    total = 0.0
    for t in range(HORIZON):
        theta, velocity = env.unwrapped.state
        q = -cost(theta, velocity, torques) + grid.interpolate(values[t + 1],
                                                              grid.weights(*dynamics(theta, velocity, torques)))
        _, reward, terminated, truncated, _ = env.step(np.array([torques[q.argmax()]], np.float32))
        total += float(reward)
        if terminated or truncated:
            break
    return total, predicted, start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--eval-seed", type=int, default=0, help="train.eval_seed of the runs (default 0)")
    parser.add_argument("--episodes", type=int, default=10, help="evaluation episodes (default 10)")
    parser.add_argument("--grid", default="400x321", help="angles x velocities (default 400x321)")
    args = parser.parse_args()
    n_angles, n_velocities = (int(n) for n in args.grid.lower().split("x"))

    import gymnasium as gym

    from rdpg_cli.seeding import EVAL_EPISODES, episode_seed

    header("Pendulum-v1: the optimal return on rdpg's evaluation start states (dynamic programming)")
    grid = Grid(n_angles, n_velocities)
    start = time.perf_counter()
    values = optimal_values(grid, np.linspace(-MAX_TORQUE, MAX_TORQUE, 41))
    print(f"value tables: {n_angles} x {n_velocities} grid, 41 torques, {HORIZON} steps, "
          f"{time.perf_counter() - start:.0f} s")
    env = gym.make("Pendulum-v1")
    fine = np.linspace(-MAX_TORQUE, MAX_TORQUE, 161)
    achieved, predicted = [], []
    for episode in range(args.episodes):
        reset_seed = episode_seed(args.eval_seed, EVAL_EPISODES, episode)
        total, value, (theta, velocity) = run_episode(env, reset_seed, grid, values, fine)
        achieved.append(total)
        predicted.append(value)
        if args.episodes <= 20:
            print(f"episode {episode}: start angle {theta:+.2f} rad, velocity {velocity:+.2f} rad/s: "
                  f"DP policy {total:7.1f}, DP value {value:7.1f}")
    env.close()
    print(f"DP value estimate, mean over the {args.episodes} start states: {np.mean(predicted):.1f}")
    print(f"optimum on {args.episodes} evaluation episodes (eval seed {args.eval_seed}): "
          f"{np.mean(achieved):.1f} (the DP policy's mean return on the real environment)")


if __name__ == "__main__":
    main()
