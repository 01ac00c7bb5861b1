"""Run folders: where a run's files go, what records how to repeat it, and the lock that keeps two
processes out of one folder. No TensorFlow here: these checks run before it loads."""

from __future__ import annotations

import os
import shlex
import time
from pathlib import Path

from rdpg_cli import __version__
from rdpg_cli.config import Config
from rdpg_cli.errors import ConfigError


class RunLock:
    """An exclusive lock file in the run folder: a second process training into it is refused."""

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / ".lock"
        self.fd: int | None = None

    def __enter__(self) -> RunLock:
        import fcntl

        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self.fd)
            self.fd = None
            raise ConfigError(f"{self.path.parent}: another rdpg train is using this run folder") from None
        os.ftruncate(self.fd, 0)
        os.write(self.fd, str(os.getpid()).encode())
        return self

    @staticmethod
    def check_free(run_dir: Path) -> None:
        """Refuse at once when another process holds the folder, before looking at what is in it."""
        try:
            held = (Path(run_dir) / ".lock").exists()
        except OSError:  # a name too long for the file system: reported by the caller's own checks
            return
        if held:
            with RunLock(run_dir):
                pass

    def __exit__(self, *exc: object) -> None:
        # The file stays: unlinking it would let a waiter lock the old inode while a newcomer locks a new one.
        if self.fd is not None:
            os.close(self.fd)


def new_run_dir(config: Config, run_dir: Path | None, force: bool) -> Path:
    if run_dir is None:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        run_dir = Path("runs") / config.name / stamp
        suffix = 1
        while run_dir.exists():
            run_dir = Path("runs") / config.name / f"{stamp}-{suffix}"
            suffix += 1
    run_dir = Path(run_dir)
    try:
        exists = run_dir.exists()
    except (OSError, ValueError) as exc:  # a name too long for the file system, a NUL byte
        raise ConfigError(f"--run-dir {run_dir}: cannot use it ({getattr(exc, 'strerror', None) or exc})") from None
    if exists and not run_dir.is_dir():
        raise ConfigError(f"--run-dir {run_dir}: exists and is not a folder")
    if run_dir.is_dir() and (run_dir / "checkpoint.h5").exists() and not force:
        raise ConfigError(
            f"--run-dir {run_dir}: already holds a run (checkpoint.h5); use --resume {run_dir} to continue "
            "it or --force to start over")
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"--run-dir {run_dir}: cannot create it ({exc.strerror})") from None
    if force:
        for name in ("metrics.csv", "timing.csv", "best.h5", "checkpoint.h5"):
            (run_dir / name).unlink(missing_ok=True)
    return run_dir


def write_run_files(run_dir: Path, config: Config, argv: list[str]) -> None:
    (run_dir / "config.yaml").write_text(config.to_yaml())
    with open(run_dir / "command.txt", "a") as f:
        f.write(f"# {time.strftime('%Y-%m-%d %H:%M:%S')} rdpg {__version__}\n{shlex.join(argv)}\n")
