"""Run folders: where a run's files go, what records how to repeat it, and the lock that keeps two
processes out of one folder. No TensorFlow here: these checks run before it loads."""

from __future__ import annotations

import os
import shlex
import shutil
import time
from pathlib import Path

from rdpg_cli import __version__
from rdpg_cli.config import Config
from rdpg_cli.errors import ConfigError, TrainingFault


class RunLock:
    """An exclusive lock file in the run folder: a second process training into it is refused."""

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / ".lock"
        self.fd: int | None = None

    def __enter__(self) -> RunLock:
        import fcntl

        try:
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:  # a read-only folder or file system
            raise ConfigError(f"{self.path.parent}: cannot write in this run folder ({exc.strerror})") from None
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self.fd)
            self.fd = None
            raise ConfigError(f"{self.path.parent}: another rdpg train is using this run folder") from None
        try:  # the holder's pid, for a person looking; a full disk is reported by the run's first real write
            os.ftruncate(self.fd, 0)
            os.write(self.fd, str(os.getpid()).encode())
        except OSError:
            pass
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


# What a training run writes into its folder; --force replaces exactly these (exports and other files stay).
RUN_FILES = ("checkpoint.h5", "best.h5", "metrics.csv", "timing.csv", "config.yaml", "command.txt", "tensorboard")


def new_run_dir(config: Config, run_dir: Path | None, force: bool) -> Path:
    """The folder a new run will write into, created if need be. A folder that already holds a run's files is
    refused without ``force``; with it, they are removed by ``clear_run_files`` once the folder's lock is held."""
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
    RunLock.check_free(run_dir)  # a folder in use is refused, --force or not
    if run_dir.is_dir() and not force:
        refuse_existing_run(run_dir)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"--run-dir {run_dir}: cannot create it ({exc.strerror})") from None
    require_writable(run_dir, f"--run-dir {run_dir}")
    return run_dir


def require_writable(run_dir: Path, what: str) -> None:
    """Refuse a folder this process cannot write in (permissions, a read-only file system) before
    TensorFlow loads, rather than failing at the first file."""
    if not os.access(run_dir, os.W_OK | os.X_OK):
        raise ConfigError(f"{what}: cannot write in this folder (read-only or no permission)")


def refuse_existing_run(run_dir: Path) -> None:
    """A ConfigError when the folder holds a run's files. Checked when the folder is chosen, and again once
    its lock is held (a run may have started and ended there while TensorFlow loaded)."""
    if (run_dir / "checkpoint.h5").exists():
        raise ConfigError(
            f"--run-dir {run_dir}: already holds a run (checkpoint.h5); use --resume {run_dir} to continue "
            "it or --force to start over")
    found = [name for name in RUN_FILES if (run_dir / name).exists()]
    if found:  # e.g. a run stopped before its first checkpoint: its metrics are still the user's
        raise ConfigError(f"--run-dir {run_dir}: already holds a run's files ({', '.join(found)}); "
                          "use --force to start over")


def clear_run_files(run_dir: Path) -> None:
    """Remove the previous run's files (``--force``); call with the folder's lock held, so that a run still
    training there is refused before anything of it is touched."""
    for name in RUN_FILES:
        path = run_dir / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
    remove_orphaned_temporaries(run_dir)


def write_run_files(run_dir: Path, config: Config, argv: list[str]) -> None:
    command = f"# {time.strftime('%Y-%m-%d %H:%M:%S')} rdpg {__version__}\n{shlex.join(argv)}\n"
    path = run_dir / "config.yaml"
    tmp = run_dir / "config.yaml.tmp"
    try:
        # Replaced whole (a resumed run rewrites it): a full disk must not leave the run without its config.
        tmp.write_text(config.to_yaml())
        os.replace(tmp, path)
        path = run_dir / "command.txt"
        with open(path, "a") as f:
            f.write(command)
    except OSError as exc:  # a full disk: nothing has been trained yet, and any checkpoint is untouched
        tmp.unlink(missing_ok=True)
        raise TrainingFault(f"{path}: cannot write it ({exc.strerror or exc})") from None


def remove_orphaned_temporaries(run_dir: Path) -> None:
    """Delete the temporary files of writes that never finished (a process killed while it wrote a checkpoint
    or cut metrics.csv back). Call with the folder's lock held: no other process can be writing them."""
    for pattern in (".checkpoint.h5.tmp-*", ".best.h5.tmp-*", "metrics.csv.tmp", "timing.csv.tmp", "config.yaml.tmp",
                    "tensorboard/events.out.tfevents.*.tmp"):
        for path in run_dir.glob(pattern):
            path.unlink(missing_ok=True)
