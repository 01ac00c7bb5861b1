"""``rdpg evaluate --video``: the evaluated episodes drawn and written by a child process.

The child replays each episode in its own copy of the environment (the same seed, then the actions the policy
chose) and renders it there. Why not render in rdpg's own process:
- MuJoCo draws with OpenGL, and Mesa's OpenGL (llvmpipe: EGL, GLX or OSMesa on a machine without a GPU) cannot
  share a process with TensorFlow: both carry LLVM, and the first MuJoCo frame crashes the process (SIGSEGV)
  whichever was loaded first. The child imports gymnasium and imageio, never TensorFlow.
- A renderer that crashes takes only the child: rdpg reports it in one line.
- Frames go straight to the video writer in the child: rdpg keeps none in memory (1,000 HalfCheetah frames
  are 0.7 GB), and drawing runs beside acting on the other core.

The child reads the actions from a pipe and does not answer them; it answers an episode's start (so that a
renderer that cannot start is reported before the episode is played) and the end. It checks each of its
observations against the one the evaluation saw: an environment that does not repeat itself under the same
seed and actions gives a video of another episode, which the end reports.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rdpg_cli.config import Config
from rdpg_cli.envs import make_env, required_extra
from rdpg_cli.errors import EnvironmentSetupError, RdpgError

FPS = 30


@dataclass(frozen=True)
class Divergence:
    """Where the child's replay first differed from the evaluated episode."""

    episode: int
    step: int


class VideoRecorder:
    """Parent side: ``reset(seed)`` at each episode start, ``step(action, observation)`` after each step,
    then ``finish()`` (writes the video) or ``abort()`` (leaves nothing)."""

    def __init__(self, config: Config, path: Path, fps: int = FPS, show_stderr: bool = False) -> None:
        context = multiprocessing.get_context("spawn")  # a fresh interpreter: nothing of TensorFlow's inherited
        self._connection, child_end = context.Pipe()
        self._process = context.Process(target=_serve, args=(child_end, config, str(path), fps, show_stderr),
                                        name="rdpg-video", daemon=True)
        self._process.start()
        child_end.close()
        self._episode = -1
        self._env_id = config.env.id

    def reset(self, seed: int) -> None:
        self._episode += 1
        self._send(("reset", seed))
        self._reply("frame")  # the first frame of every episode is waited for: a renderer that fails says so now

    def step(self, action: np.ndarray, observation: np.ndarray) -> None:
        self._send(("step", np.asarray(action), np.asarray(observation)))
        if self._connection.poll():  # the child only speaks out of turn to report a failure
            self._reply("frame")

    def finish(self) -> tuple[int, Divergence | None]:
        """Write the video; returns the number of frames and where the replay differed, if it did."""
        self._send(("finish",))
        frames, divergence = self._reply("written")
        self._process.join()
        return frames, divergence

    def abort(self) -> None:
        """Stop the child; its temporary file goes with it."""
        try:
            self._connection.send(("abort",))
        except (OSError, ValueError):
            pass
        self._process.join(timeout=10)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()
        self._connection.close()

    def _send(self, message: tuple) -> None:
        try:
            self._connection.send(message)
        except (BrokenPipeError, ConnectionResetError, EOFError):
            self._crashed()

    def _reply(self, expected: str):
        try:
            kind, *payload = self._connection.recv()
        except (EOFError, ConnectionResetError):
            self._crashed()
        if kind == "error":
            self.abort()
            raise EnvironmentSetupError(payload[0])
        if kind != expected:
            self.abort()
            raise RuntimeError(f"video child answered {kind!r}, not {expected!r}")
        return payload[0] if len(payload) == 1 else tuple(payload)

    def _crashed(self):
        self._process.join(timeout=10)
        code = self._process.exitcode
        cause = (f"signal {signal.Signals(-code).name}" if code is not None and code < 0
                 else f"exit code {code}")
        self.abort()
        raise EnvironmentSetupError(
            f"--video: the renderer of {self._env_id} crashed ({cause}); for MuJoCo, try another MUJOCO_GL "
            "(egl, osmesa or glfw)")


# ------------------------------------------------------------------------------------------------- child


def _serve(connection, config: Config, path: str, fps: int, show_stderr: bool) -> None:
    """The child's loop. Every failure is sent to the parent as one line; after one it only drains the pipe
    until the parent aborts, so that the parent never blocks on a full pipe."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole process group: the parent decides
    if not show_stderr:
        _silence_stderr()  # GLFW and MuJoCo warnings; failures travel through the pipe
    from rdpg_cli.video import VideoWriter

    writer = None
    env = None
    try:
        env = make_env(config, render_mode="rgb_array")
        writer = VideoWriter(Path(path), fps)
        _replay(connection, env, config, writer)
    except RdpgError as exc:
        _fail(connection, str(exc))
    except Exception as exc:  # the environment's own code, replayed: any failure is reported, not raised
        _fail(connection, f"--video: {config.env.id} failed while replaying the episode for the video "
                          f"({type(exc).__name__}: {_first_line(exc)})")
    finally:
        if writer is not None:
            writer.discard()  # no-op once the video is written
        if env is not None:
            env.close()
        connection.close()


def _replay(connection, env, config: Config, writer) -> None:
    episode, step, divergence, done = -1, 0, None, True
    while True:
        try:
            message = connection.recv()
        except EOFError:  # the parent is gone
            return
        kind = message[0]
        if kind == "abort":
            return
        if kind == "finish":
            frames = writer.finish()
            connection.send(("written", frames, divergence))
            return
        if kind == "reset":
            episode, step = episode + 1, 0
            observation, _ = env.reset(seed=message[1])
            done = False
            writer.append(_render(env, config))
            connection.send(("frame", writer.frames))
            continue
        # "step": an action the evaluation took, and the observation it got back
        _, action, seen = message
        step += 1
        if done:  # the evaluation went on where the replay had ended
            divergence = divergence or Divergence(episode, step)
            continue
        observation, _, terminated, truncated, _ = env.step(action)
        done = terminated or truncated
        if divergence is None and not np.array_equal(np.asarray(observation, np.float32), seen):
            divergence = Divergence(episode, step)
        writer.append(_render(env, config))


def _render(env, config: Config) -> np.ndarray:
    """One rgb_array frame; a renderer that cannot start (no OpenGL on a machine without a display) is a
    one-line error."""
    try:
        frame = env.render()
    except Exception as exc:
        hint = ("; MuJoCo needs OpenGL, e.g. MUJOCO_GL=egl with the system's EGL libraries"
                if required_extra(config.env.id) == "mujoco" else "")
        raise EnvironmentSetupError(
            f"--video: {config.env.id} cannot render here ({_first_line(exc)}){hint}") from None
    if frame is None:
        raise EnvironmentSetupError(f"--video: {config.env.id} rendered no frame (render_mode rgb_array)")
    frame = np.asarray(frame)
    if frame.ndim != 3 or frame.shape[2] not in (3, 4) or frame.shape[0] < 2 or frame.shape[1] < 2:
        raise EnvironmentSetupError(f"--video: {config.env.id} rendered an array of shape {list(frame.shape)}, "
                                    "not an image (height x width x 3)")
    return frame[:, :, :3]


def _fail(connection, message: str) -> None:
    try:
        connection.send(("error", message))
        while connection.recv()[0] not in ("abort", "finish"):
            pass
    except (EOFError, OSError):
        pass


def _first_line(exc: BaseException) -> str:
    text = str(exc)
    return text.splitlines()[0] if text else type(exc).__name__


def _silence_stderr() -> None:
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)
