"""Environments that break on purpose, for the fault-injection tests (``env.id: faulty_envs:NAME``)."""

from __future__ import annotations

import os
import signal
import sys
import time

import gymnasium as gym
import numpy as np
from gymnasium.envs.classic_control.pendulum import PendulumEnv


class FaultyPendulum(PendulumEnv):
    """Pendulum that, from its ``fault_step``-th step on (counted over its whole life), returns a NaN
    observation, an infinite reward, or raises, as ``fault`` says; the ``reset_*`` faults count resets
    instead, and the ``render_*`` ones act on every frame."""

    def __init__(self, fault: str = "nan_observation", fault_step: int = 10**9, marker: str | None = None,
                 **kwargs):
        super().__init__(**kwargs)
        self.fault = fault
        self.fault_step = fault_step
        self.marker = marker
        self.steps = 0
        self.resets = 0

    def reset(self, *, seed=None, options=None):
        observation, info = super().reset(seed=seed, options=options)
        self.resets += 1
        if self.resets >= self.fault_step:
            if self.fault == "reset_raises":
                raise RuntimeError("simulated crash in reset")
            if self.fault == "reset_without_info":  # the old gym API
                return observation
        return observation, info

    def render(self):
        if self.fault == "render_crash":  # a renderer that takes its process down (Mesa's OpenGL beside TF did)
            os.kill(os.getpid(), signal.SIGSEGV)
        if self.fault == "render_flat":  # not an image
            return np.zeros(10, np.uint8)
        if self.fault == "render_watch":  # says which process draws, refuses to draw beside TensorFlow, draws slowly
            if "tensorflow" in sys.modules:
                raise RuntimeError("TensorFlow is loaded in the process that draws")
            if self.marker and not os.path.exists(self.marker):
                with open(self.marker, "w") as f:
                    f.write(str(os.getpid()))
            time.sleep(0.02)
        return super().render()

    def step(self, action):
        observation, reward, terminated, truncated, info = super().step(action)
        self.steps += 1
        if self.steps >= self.fault_step:
            if self.fault == "nan_observation":
                observation = np.full_like(observation, np.nan)
            elif self.fault == "inf_reward":
                reward = float("inf")
            elif self.fault == "raise":
                raise RuntimeError("simulated crash inside the environment")
            elif self.fault == "raise_once" and not os.path.exists(self.marker):  # fixed after its first crash
                with open(self.marker, "w"):
                    pass
                raise RuntimeError("simulated crash inside the environment")
            elif self.fault == "wide_observation":
                observation = np.append(observation, 0.0)
            elif self.fault == "array_reward":  # a one-element array: taken as its element
                reward = np.array([reward], np.float32)
            elif self.fault == "text_reward":
                reward = "bad"
            elif self.fault == "huge_observation":  # finite in float64, infinite in float32
                observation = np.asarray(observation, np.float64) * 1e300
            elif self.fault == "none_reward":
                reward = None
            elif self.fault == "huge_reward":
                reward = 1e300
            elif self.fault == "old_step_api":  # gym < 0.26: (observation, reward, done, info)
                return observation, reward, terminated or truncated, info
            elif self.fault == "exit":  # ends the process as if rdpg had finished, with status 0
                sys.exit(0)
            elif self.fault == "prints":  # from Python and from "C" (file descriptor 1)
                print("env says hello")
                os.write(1, b"env writes to fd 1\n")
            elif self.fault == "unrepeatable":  # noise no seed controls: a replay of the episode differs
                observation = observation + np.random.default_rng().normal(0.0, 1e-3, observation.shape)
        return observation, reward, terminated, truncated, info


gym.register("FaultyPendulum-v0", entry_point=FaultyPendulum, max_episode_steps=200)
gym.register("EndlessPendulum-v0", entry_point=FaultyPendulum)  # no time limit: episodes never end


class NoObservation(PendulumEnv):
    """An observation space with no components."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.observation_space = gym.spaces.Box(low=0.0, high=1.0, shape=(0,), dtype=np.float32)


gym.register("NoObservation-v0", entry_point=NoObservation, max_episode_steps=200)


class FlatAction(PendulumEnv):
    """A second action dimension that cannot move (low == high)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.action_space = gym.spaces.Box(low=np.array([-2.0, 1.0], np.float32),
                                           high=np.array([2.0, 1.0], np.float32), dtype=np.float32)

    def step(self, action):
        return super().step(action[:1])


class HugeAction(PendulumEnv):
    """A float64 action space whose finite bounds lie beyond float32's range (which rdpg computes in)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.action_space = gym.spaces.Box(low=-1e39, high=1e39, shape=(1,), dtype=np.float64)


class TenthAction(PendulumEnv):
    """A float64 action space of [-0.1, 0.1], whose bounds float32 rounds outward, and a step that checks its
    actions are in it."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.action_space = gym.spaces.Box(low=-0.1, high=0.1, shape=(1,), dtype=np.float64)

    def step(self, action):
        assert self.action_space.contains(action), f"{action!r} is not in {self.action_space}"
        return super().step(np.asarray(action, np.float32))


class IntegerAction(PendulumEnv):
    """Actions on an integer grid: a Box, but of integers."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.action_space = gym.spaces.Box(low=-2, high=2, shape=(1,), dtype=np.int64)


class HalfPrecisionAction(PendulumEnv):
    """A float16 action space that checks what it is given, as a strict environment may."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.action_space = gym.spaces.Box(low=-2.0, high=2.0, shape=(1,), dtype=np.float16)

    def step(self, action):
        assert self.action_space.contains(action), f"{action!r} is not in {self.action_space}"
        return super().step(action.astype(np.float32))


class NoAction(PendulumEnv):
    """An action space with no dimensions."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.action_space = gym.spaces.Box(low=0.0, high=1.0, shape=(0,), dtype=np.float32)


gym.register("FlatAction-v0", entry_point=FlatAction, max_episode_steps=200)
gym.register("NoAction-v0", entry_point=NoAction, max_episode_steps=200)
gym.register("HugeAction-v0", entry_point=HugeAction, max_episode_steps=200)
gym.register("IntegerAction-v0", entry_point=IntegerAction, max_episode_steps=200)
gym.register("TenthAction-v0", entry_point=TenthAction, max_episode_steps=200)
gym.register("HalfPrecisionAction-v0", entry_point=HalfPrecisionAction, max_episode_steps=200)
