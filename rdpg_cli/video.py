"""Write rendered episodes to a video file (needs the 'video' extra: imageio)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rdpg_cli.errors import ConfigError


def write_video(path: Path, frames: list[np.ndarray], fps: int = 30) -> None:
    try:
        import imageio.v3 as iio
    except ImportError:
        raise ConfigError("--video needs the 'video' extra: pip install 'rdpg[video]'") from None
    frames = [f for f in frames if f is not None]
    if not frames:
        raise ConfigError("--video: the environment rendered no frames")
    path = Path(path)
    if path.suffix.lower() == ".gif":
        iio.imwrite(path, np.stack(frames), duration=1000 / fps, loop=0)
    else:
        try:
            iio.imwrite(path, np.stack(frames), fps=fps, codec="libx264")
        except Exception as exc:  # imageio-ffmpeg missing or failing
            raise ConfigError(f"--video {path}: cannot write MP4 ({exc}); try a .gif path") from None
