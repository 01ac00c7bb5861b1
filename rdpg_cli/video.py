"""Write rendered episodes to a video file (needs the 'video' extra: imageio; MP4 also imageio-ffmpeg)."""

from __future__ import annotations

import contextlib
import gc
import os
import sys
from pathlib import Path

import numpy as np

from rdpg_cli.errors import ConfigError
from rdpg_cli.input_files import cannot_write_in

VIDEO_EXTRA = "pip install 'rdpg[video]'"


def prepare_video(path: Path, force: bool = False) -> None:
    """Call before the episodes are run and rendered: everything that would stop the video from being written
    (a missing or read-only folder, an existing file without ``force``, a folder at the path, a missing
    imageio or ffmpeg) is reported now, not after the episodes; and rendering is set up for a machine without
    a display.

    gymnasium's classic-control and Box2D renderers draw with pygame, whose SDL opens a video driver it never
    uses for ``rgb_array`` frames; without a desktop session it prints "error: XDG_RUNTIME_DIR is invalid" to
    stderr, which reads like a failure of rdpg. SDL's dummy driver draws the same frames and opens nothing.
    A driver the user chose is left alone."""
    path = Path(path)
    folder = path.parent
    if not folder.is_dir():
        raise ConfigError(f"--video {path}: folder {folder} does not exist")
    if path.is_dir():
        raise ConfigError(f"--video {path}: is a folder; give a .mp4 or .gif file name")
    if path.exists() and not force:
        raise ConfigError(f"--video {path}: already exists; use --force to replace it")
    _check_writable(path)
    _import_writer(path)
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    os.environ.setdefault("SDL_AUDIODRIVER", "dummy")


def _check_writable(path: Path) -> None:
    problem = cannot_write_in(path.parent, f".{path.name}.")  # as the video's own temporary file will be made
    if problem is not None:
        raise ConfigError(f"--video {path}: cannot write in {path.parent} ({problem})")


def _import_writer(path: Path):
    try:
        import imageio.v3 as iio
    except ImportError:
        raise ConfigError(f"--video needs the 'video' extra: {VIDEO_EXTRA}") from None
    if path.suffix.lower() != ".gif":
        try:
            import imageio_ffmpeg  # noqa: F401  (imageio writes MP4 through it; without it its error is pages long)
        except ImportError:
            raise ConfigError(f"--video {path}: MP4 needs ffmpeg, part of the 'video' extra: {VIDEO_EXTRA} "
                              "(or give a .gif path)") from None
    return iio


def write_video(path: Path, frames: list[np.ndarray], fps: int = 30) -> None:
    """Write ``frames`` (H x W x 3 uint8) as an MP4 (H.264) or a looping GIF, by ``path``'s suffix.

    Written to a temporary file beside ``path``, then renamed over it: a failed write leaves no half video and
    whatever was at ``path`` before. imageio writes a GIF only when its writer closes, and a writer that failed
    is closed again, noisily, when it is garbage-collected ("Exception ignored in PluginV3.__del__"): that
    happens here, quietly, before the error is raised."""
    path = Path(path)
    iio = _import_writer(path)
    frames = [f for f in frames if f is not None]
    if not frames:
        raise ConfigError("--video: the environment rendered no frames")
    gif = path.suffix.lower() == ".gif"
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}{path.suffix.lower()}")
    problem, hint = None, ""
    with _failed_writer_dropped():
        try:
            if gif:
                iio.imwrite(tmp, np.stack(frames), duration=1000 / fps, loop=0)  # loop=0: play forever
            else:
                iio.imwrite(tmp, np.stack(frames), fps=fps, codec="libx264")
            os.replace(tmp, path)
        except OSError as exc:
            problem = exc.strerror or str(exc)
        except Exception as exc:  # for MP4: ffmpeg refusing the frames
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            problem, hint = reason, "" if gif else "; try a .gif path"
        finally:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
    if problem is not None:
        raise ConfigError(f"--video {path}: cannot write it ({problem}){hint}")


@contextlib.contextmanager
def _failed_writer_dropped():
    """Around a write: a writer that failed is collected on the way out, its second failure (in
    ``PluginV3.__del__``) dropped, so that nothing is printed after the one-line error."""
    hook = sys.unraisablehook
    sys.unraisablehook = lambda unraisable: None
    try:
        yield
    finally:
        gc.collect()
        sys.unraisablehook = hook
