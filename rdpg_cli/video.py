"""Write rendered episodes to a video file (needs the 'video' extra: imageio; MP4 also imageio-ffmpeg)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from rdpg_cli.errors import ConfigError


def prepare_video(path: Path) -> None:
    """Call before the episodes are run and rendered: a folder that does not exist is reported now, not after
    the episodes; and rendering is set up for a machine without a display.

    gymnasium's classic-control and Box2D renderers draw with pygame, whose SDL opens a video driver it never
    uses for ``rgb_array`` frames; without a desktop session it prints "error: XDG_RUNTIME_DIR is invalid" to
    stderr, which reads like a failure of rdpg. SDL's dummy driver draws the same frames and opens nothing.
    A driver the user chose is left alone."""
    folder = Path(path).parent
    if not folder.is_dir():
        raise ConfigError(f"--video {path}: folder {folder} does not exist")
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    os.environ.setdefault("SDL_AUDIODRIVER", "dummy")


def write_video(path: Path, frames: list[np.ndarray], fps: int = 30) -> None:
    """Write ``frames`` (H x W x 3 uint8) as an MP4 (H.264) or a looping GIF, by ``path``'s suffix."""
    try:
        import imageio.v3 as iio
    except ImportError:
        raise ConfigError("--video needs the 'video' extra: pip install 'rdpg[video]'") from None
    frames = [f for f in frames if f is not None]
    if not frames:
        raise ConfigError("--video: the environment rendered no frames")
    path = Path(path)
    gif = path.suffix.lower() == ".gif"
    if not gif:
        try:
            import imageio_ffmpeg  # noqa: F401  (imageio writes MP4 through it; without it its error is pages long)
        except ImportError:
            raise ConfigError(f"--video {path}: MP4 needs ffmpeg, part of the 'video' extra: "
                              "pip install 'rdpg[video]' (or give a .gif path)") from None
    try:
        if gif:
            iio.imwrite(path, np.stack(frames), duration=1000 / fps, loop=0)  # loop=0: play forever
        else:
            iio.imwrite(path, np.stack(frames), fps=fps, codec="libx264")
    except OSError as exc:
        raise ConfigError(f"--video {path}: cannot write it ({exc.strerror or exc})") from None
    except Exception as exc:  # for MP4: imageio-ffmpeg missing, or ffmpeg refusing the frames
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        hint = "" if gif else "; try a .gif path"
        raise ConfigError(f"--video {path}: cannot write it ({reason}){hint}") from None
