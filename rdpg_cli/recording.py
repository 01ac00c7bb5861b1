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

The child only ever writes a temporary file; rdpg moves it into place once the child says it is complete, and
on any stop (an error, Ctrl-C) kills the child and removes the file. A child whose parent is gone finds its
pipe closed and removes the file itself.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import select
import signal
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rdpg_cli.config import Config
from rdpg_cli.envs import make_env, required_extra
from rdpg_cli.evaluation import checked_step
from rdpg_cli.errors import ConfigError, EnvironmentSetupError, RdpgError, reason
from rdpg_cli.input_files import make_folder, place_new, remove_made_folders
from rdpg_cli.signals import stop_if_a_signal_was_swallowed

FPS = 30
# What a GIF may hold in memory until it is written (its frames at a byte a pixel): beyond, MP4 is the format.
GIF_BUDGET_BYTES = 2 << 30
# How long a stopping child may take to close its writer before it is killed.
ABORT_GRACE_SECONDS = 5.0


@dataclass(frozen=True)
class Divergence:
    """Where the child's replay first differed from the evaluated episode."""

    episode: int
    step: int


class VideoRecorder:
    """Parent side: ``reset(seed)`` at each episode start, ``step(action, observation)`` after each step,
    then ``finish()`` (the video in place) or ``abort()`` (nothing left)."""

    def __init__(self, config: Config, path: Path, episodes: int, fps: int = FPS, show_stderr: bool = False,
                 force: bool = False) -> None:
        """``force``: the video replaces a file at ``path`` (``--force``); without it, one that appeared there
        while the episodes ran is left as it is and the video is refused."""
        from rdpg_cli.video import temporary_path

        self._force = force
        self._path = Path(path)
        self._temporary = temporary_path(self._path)
        self._env_id = config.env.id
        self._episode = -1
        self._moved = False
        try:  # the video's folder, with its missing parents (as `rdpg export --output` makes them); taken back
            self._made = make_folder(self._path.parent)  # by abort() with the temporary file
        except OSError as exc:
            raise ConfigError(f"--video {self._path}: cannot create its folder ({exc.strerror or exc})") from None
        try:
            self._start_child(config, episodes, fps, show_stderr)
        except BaseException:  # no recorder to abort() yet
            remove_made_folders(self._made)
            raise

    def _start_child(self, config: Config, episodes: int, fps: int, show_stderr: bool) -> None:
        context = multiprocessing.get_context("spawn")  # a fresh interpreter: nothing of TensorFlow's inherited
        self._connection, child_end = context.Pipe()
        self._process = context.Process(
            target=_serve, args=(child_end, config, str(self._path), str(self._temporary), episodes, fps, show_stderr),
            name="rdpg-video", daemon=True)
        # Ctrl-C reaches the whole process group; the child must not die of it while it starts up (a traceback
        # from its imports), nor after: rdpg stops it. An ignored signal stays ignored across exec.
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            self._process.start()
        finally:
            signal.signal(signal.SIGINT, previous)
        child_end.close()

    def reset(self, seed: int) -> None:
        self._episode += 1
        self._send(("reset", seed))
        self._reply("frame")  # the first frame of every episode is waited for: a renderer that fails says so now

    def step(self, action: np.ndarray, observation: np.ndarray) -> None:
        self._send(("step", np.asarray(action), np.asarray(observation)))
        if self._connection.poll():  # the child only speaks out of turn to report a failure
            self._reply("frame")

    def finish(self) -> tuple[int, Divergence | None]:
        """Complete the video and move it into place; returns the number of frames and where the replay
        differed, if it did."""
        self._send(("finish",))
        frames, divergence = self._reply("written")
        stop_if_a_signal_was_swallowed()
        try:
            if self._force:
                os.replace(self._temporary, self._path)
            else:
                place_new(self._temporary, self._path)
        except FileExistsError:
            self.abort()
            raise ConfigError(f"--video {self._path}: appeared while the episodes ran (another rdpg writing the "
                              "same video?); it was left as it is; use --force to replace it") from None
        except OSError as exc:
            self.abort()
            raise ConfigError(f"--video {self._path}: cannot write it ({exc.strerror or exc})") from None
        self._moved = True  # the video is complete and in place: a stop from here on leaves it
        with contextlib.suppress(OSError, ValueError):
            self._connection.send(("moved",))  # the child exits without removing what is now the video
        self._process.join(timeout=10)
        self._stop_child()
        return frames, divergence

    def abort(self) -> None:
        """Stop the child and remove its temporary file. It is asked first, when the pipe has room, so that it
        closes its writer (ffmpeg runs in a process group of its own and would finish, and maybe create, the
        file after the child's death); one that does not stop within a few seconds (blocked in a renderer, or
        failed and only draining the pipe) is killed."""
        if not self._moved and self._process.is_alive() and _writable(self._connection):
            with contextlib.suppress(OSError, ValueError):
                self._connection.send(("abort",))
            self._process.join(timeout=ABORT_GRACE_SECONDS)
        self._stop_child()
        if not self._moved:
            with contextlib.suppress(OSError):
                self._temporary.unlink(missing_ok=True)
            remove_made_folders(self._made)

    def _stop_child(self) -> None:
        if self._process.is_alive():
            self._process.kill()  # not terminate: pygame's SDL catches SIGTERM
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
        self.abort()
        if code is not None and code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            cause = f"killed by {name}{' (out of memory?)' if -code == signal.SIGKILL else ''}"
        else:
            cause = f"exit code {code}"
        hint = ("; for MuJoCo, try another MUJOCO_GL (egl, osmesa or glfw)"
                if required_extra(self._env_id) == "mujoco" else "")
        raise EnvironmentSetupError(f"--video: the renderer of {self._env_id} stopped ({cause}){hint}")


# ------------------------------------------------------------------------------------------------- child


def _serve(connection, config: Config, path: str, temporary: str, episodes: int, fps: int,
           show_stderr: bool) -> None:
    """The child's loop. Every failure is sent to the parent as one line; after one it only drains the pipe
    until the parent stops it, so that the parent never blocks on a full pipe."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # already ignored from the start; kept so whatever happens
    if not show_stderr:
        _silence_stderr()  # GLFW and MuJoCo warnings; failures travel through the pipe
    from rdpg_cli.video import VideoWriter

    writer = None
    env = None
    moved = False
    try:
        env = make_env(config, render_mode="rgb_array")
        writer = VideoWriter(Path(path), fps, temporary=Path(temporary))
        moved = _replay(connection, env, config, writer, episodes)
    except RdpgError as exc:
        _fail(connection, str(exc))
    except Exception as exc:  # the environment's own code, replayed: any failure is reported, not raised
        _fail(connection, f"--video: {config.env.id} failed while replaying the episode for the video "
                          f"({type(exc).__name__}: {reason(exc)})")
    finally:
        if writer is not None and not moved:
            writer.discard()
        if env is not None:
            env.close()
        connection.close()


def _replay(connection, env, config: Config, writer, episodes: int) -> bool:
    """Follow the parent's episodes; True once the parent has moved the finished video into place."""
    episode, step, divergence, done = -1, 0, None, True
    while True:
        try:
            message = connection.recv()
        except EOFError:  # the parent is gone
            return False
        kind = message[0]
        if kind == "abort":  # the parent stopped: the file is discarded (after the writer, ffmpeg, is closed)
            return False
        if kind == "finish":
            frames = writer.finish()
            connection.send(("written", frames, divergence))
            try:
                return connection.recv()[0] == "moved"
            except EOFError:  # the parent stopped before it moved the file: it is removed
                return False
        if kind == "reset":
            episode, step = episode + 1, 0
            env.reset(seed=message[1])
            done = False
            frame = _render(env, config)
            if episode == 0 and writer.path.suffix.lower() == ".gif":
                _check_gif_budget(env.spec.max_episode_steps, writer.path, frame, episodes)
            writer.append(frame)
            connection.send(("frame", writer.frames))
            continue
        # "step": an action the evaluation took, and the observation it got back
        _, action, seen = message
        step += 1
        if done:  # the evaluation went on where the replay had ended
            divergence = divergence or Divergence(episode, step)
            continue
        # As the evaluation stepped it (float16 spaces get float16 actions, flags checked), so that the replay
        # takes the same path.
        observation, _, terminated, truncated = checked_step(env, action)
        done = terminated or truncated
        if divergence is None and not np.array_equal(np.asarray(observation, np.float32), seen):
            divergence = Divergence(episode, step)
        writer.append(_render(env, config))


def _check_gif_budget(limit: int, path: Path, frame: np.ndarray, episodes: int) -> None:
    """A GIF holds its frames until it is written: refuse one that could not fit, before it is played."""
    most = episodes * (limit + 1) * frame.shape[0] * frame.shape[1]
    if most > GIF_BUDGET_BYTES:
        raise ConfigError(
            f"--video {path}: up to {episodes} x {limit + 1} frames of {frame.shape[1]} x {frame.shape[0]} are "
            f"{most / 2**30:.1f} GB held in memory until a GIF is written; give a .mp4 path (written as it "
            "goes) or fewer --episodes")


def _render(env, config: Config) -> np.ndarray:
    """One rgb_array frame; a renderer that cannot start (no OpenGL on a machine without a display) is a
    one-line error."""
    try:
        frame = env.render()
    except Exception as exc:
        hint = ("; MuJoCo needs OpenGL, e.g. MUJOCO_GL=egl with the system's EGL libraries"
                if required_extra(config.env.id) == "mujoco" else "")
        raise EnvironmentSetupError(
            f"--video: {config.env.id} cannot render here ({reason(exc)}){hint}") from None
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
        while connection.recv()[0] != "abort":  # drained until the parent stops this process
            pass
    except (EOFError, OSError):
        pass


def _writable(connection) -> bool:
    """Whether a short message can be sent without blocking (the pipe is not full of unread steps)."""
    try:
        return bool(select.select([], [connection.fileno()], [], 0)[1])
    except (OSError, ValueError):
        return False


def _silence_stderr() -> None:
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)
