"""Write rendered episodes to a video file (needs the 'video' extra: imageio; MP4 also imageio-ffmpeg)."""

from __future__ import annotations

import contextlib
import gc
import os
import sys
from pathlib import Path

import numpy as np

from rdpg_cli.errors import ConfigError, reason
from rdpg_cli.input_files import blocked_folder_problem, cannot_write_in, name_problem, nearest_folder, temporary_name
from rdpg_cli.extras import install_hint

VIDEO_EXTRA = install_hint("video")


def prepare_video(path: Path, force: bool = False) -> None:
    """Call before the episodes are run and rendered: everything that would stop the video from being written
    (a read-only folder, a file where a folder should be, an existing file without ``force``, a folder at the
    path, a missing imageio or ffmpeg) is reported now, not after the episodes; and rendering is set up for a
    machine without a display. A missing folder is made when the recording starts (``VideoRecorder``).

    gymnasium's classic-control and Box2D renderers draw with pygame, whose SDL opens a video driver it never
    uses for ``rgb_array`` frames; without a desktop session it prints "error: XDG_RUNTIME_DIR is invalid" to
    stderr, which reads like a failure of rdpg. SDL's dummy driver draws the same frames and opens nothing.
    A driver the user chose is left alone."""
    path = Path(path)
    folder = path.parent
    problem = name_problem(path)
    if problem:
        raise ConfigError(f"--video {path}: {problem}")
    problem = blocked_folder_problem(folder)  # a missing folder is made when the recording starts
    if problem:
        raise ConfigError(f"--video {path}: {problem}")
    if path.is_dir():
        raise ConfigError(f"--video {path}: is a folder; give a .mp4 or .gif file name")
    if os.path.lexists(path) and not force:  # a symbolic link to nothing too: the user's link
        raise ConfigError(f"--video {path}: already exists; use --force to replace it")
    _check_writable(path)
    _import_writer(path)
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    os.environ.setdefault("SDL_AUDIODRIVER", "dummy")


def _check_writable(path: Path) -> None:
    folder = nearest_folder(path.parent)  # where the video's folder would be made, if it is missing
    problem = cannot_write_in(folder, ".rdpg-video-")  # as the video's own temporary file will be made
    if problem is not None:
        raise ConfigError(f"--video {path}: cannot write in {folder} ({problem})")


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


def temporary_path(path: Path) -> Path:
    """Where the video for ``path`` is written before it is moved into place: beside it, hidden, named after
    this process, which moves it (``input_files.temporary_name``)."""
    path = Path(path)
    return path.with_name(temporary_name(".rdpg-video-", path.suffix.lower()))


class VideoWriter:
    """Frames (H x W x 3 uint8) in, an MP4 (H.264) or a looping GIF out, by ``path``'s suffix.

    An MP4 is encoded as the frames come (ffmpeg through imageio), so a long evaluation holds none of them; a
    GIF is written by Pillow in one go at ``finish``, so its frames are kept until then, as the 256-colour
    palette images the GIF holds (0.25 MB for a 500 x 500 frame). Either goes to ``temporary`` (beside
    ``path``), and ``finish`` completes it there: the process that owns the run moves it to ``path``
    (``VideoRecorder.finish``), so a failed or stopped write leaves no half video and whatever was at ``path``
    before.
    A failed imageio writer is closed again, noisily, when it is garbage-collected ("Exception ignored in
    PluginV3.__del__"): that happens here, quietly, before the error is raised."""

    def __init__(self, path: Path, fps: int = 30, temporary: Path | None = None) -> None:
        self.path = Path(path)
        self.fps = fps
        self.frames = 0
        _import_writer(self.path)  # the 'video' extra: named before any frame
        self._gif = self.path.suffix.lower() == ".gif"
        self._tmp = Path(temporary) if temporary is not None else temporary_path(self.path)
        self._kept: list = []  # a GIF's frames, as PIL palette images
        self._stream = None

    def append(self, frame: np.ndarray) -> None:
        frame = np.asarray(frame, np.uint8)
        self.frames += 1
        if self._gif:
            # Kept as the palette image the GIF encoder makes of it anyway: a byte a pixel, not three.
            from PIL import Image

            self._kept.append(Image.fromarray(frame).convert("P", palette=Image.Palette.ADAPTIVE))
            return
        self._guarded(self._encode, frame)

    def _encode(self, frame: np.ndarray) -> None:
        if self._stream is None:
            import imageio.v2 as imageio_v2

            self._stream = imageio_v2.get_writer(self._tmp, format="FFMPEG", fps=self.fps, codec="libx264")
        self._stream.append_data(frame)

    def finish(self) -> int:
        """Complete the temporary file (``VideoRecorder.finish`` moves it to ``path``); returns the number of
        frames."""
        if self.frames == 0:
            raise ConfigError("--video: the environment rendered no frames")
        self._guarded(self._complete)
        return self.frames

    def _complete(self) -> None:
        if self._gif:
            first, *rest = self._kept
            first.save(self._tmp, format="GIF", save_all=True, append_images=rest, duration=1000 / self.fps,
                       loop=0)  # loop=0: play forever
            self._kept = []
        else:
            stream, self._stream = self._stream, None
            stream.close()

    def discard(self) -> None:
        """Drop what was written: the temporary file, complete or not (nothing once it has been moved)."""
        self._kept = []
        stream, self._stream = self._stream, None
        with _failed_writer_dropped(), contextlib.suppress(Exception):
            if stream is not None:
                stream.close()
        with contextlib.suppress(OSError):
            self._tmp.unlink(missing_ok=True)

    def _guarded(self, write, *args) -> None:
        """``write(*args)``; a failure is one line, the partial file removed. (Caught here, not in a context
        manager: the exception, and through it the failed writer, must be gone before the collection.)"""
        problem, hint = None, ""
        with _failed_writer_dropped():
            try:
                write(*args)
            except OSError as exc:
                problem = exc.strerror or str(exc)
            except Exception as exc:  # for MP4: ffmpeg refusing the frames
                problem, hint = reason(exc), "" if self._gif else "; try a .gif path"
            if problem is not None:
                self.discard()
        if problem is not None:
            raise ConfigError(f"--video {self.path}: cannot write it ({problem}){hint}")


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
