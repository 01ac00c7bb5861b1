"""Run folders: where a run's files go, what records how to repeat it, and the lock that keeps two
processes out of one folder. No TensorFlow here: these checks run before it loads."""

from __future__ import annotations

import csv
import errno
import io
import os
import re
import shlex
import shutil
import time
from pathlib import Path

from rdpg_cli import __version__
from rdpg_cli.config import Config
from rdpg_cli.errors import ConfigError, TrainingFault
from rdpg_cli.input_files import FileMessages, make_folder, may_exist, regular_file_size, remove_made_folders


class RunLock:
    """An exclusive lock file in the run folder: a second process training into it is refused."""

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / ".lock"
        self.fd: int | None = None

    def __enter__(self) -> RunLock:
        import fcntl

        try:
            # O_NOFOLLOW: a symbolic link named .lock (a run folder copied with cp -rs) would have rdpg lock,
            # and overwrite with its process id, the file it points to.
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        except OSError as exc:  # a read-only folder or file system
            if exc.errno == errno.ELOOP:
                raise ConfigError(f"run folder {self.path.parent}: its .lock is a symbolic link; remove it (a run "
                                  "folder copied as links shares the original's files)") from None
            raise ConfigError(f"run folder {self.path.parent}: cannot write in it ({exc.strerror})") from None
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if os.fstat(self.fd).st_nlink == 0:  # a command that made the folder removed it as this one opened it
                os.close(self.fd)
                self.fd = None
                raise ConfigError(f"run folder {self.path.parent}: removed by another rdpg command as this one "
                                  "started; try again")
        except BlockingIOError:
            holder = _read_small(self.fd)
            os.close(self.fd)
            self.fd = None
            by = f" (process {holder})" if holder.isdigit() else ""
            raise ConfigError(f"run folder {self.path.parent}: another rdpg train is using it{by}") from None
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


def _read_small(fd: int) -> str:
    """The lock file's text (its holder's process id), or "" when it cannot be read."""
    try:
        return os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return ""


# What a training run writes into its folder; --force replaces exactly these (exports and other files stay).
RUN_FILES = ("checkpoint.h5", "best.h5", "metrics.csv", "timing.csv", "config.yaml", "command.txt", "tensorboard")


# Linux's limit on a path given to the kernel, and what a run folder's path may take of it: the longest name
# a run writes inside is TensorBoard's, events.out.tfevents.<time>.<host name>.<pid>.<n>.v2 and a .tmp (a host
# name takes up to 64 bytes).
PATH_MAX_BYTES = 4096
MAX_RUN_DIR_BYTES = PATH_MAX_BYTES - 256


def new_run_dir(config: Config, run_dir: Path | None, force: bool) -> tuple[Path, list[Path]]:
    """The folder a new run will write into, created if need be, and the folders this call made: the run
    folder, then its missing parents (none where the run folder was there), for ``remove_if_unused``. A folder
    that already holds a run's files is refused without ``force``; with it, they are removed by
    ``clear_run_files`` once the folder's lock is held. Without ``run_dir``: ``runs/<name>/<stamp>``, made
    exclusively, so that runs started in the same second get a folder each."""
    if run_dir is None:
        return _new_stamped_folder(Path("runs") / config.name)
    run_dir = Path(run_dir)
    length = len(os.fsencode(str(run_dir)))
    if length > MAX_RUN_DIR_BYTES:
        raise ConfigError(f"--run-dir {run_dir}: a path of {length} bytes leaves no room for the run's files in it "
                          f"(paths take {PATH_MAX_BYTES} bytes at most; give one under {MAX_RUN_DIR_BYTES})")
    try:
        exists = run_dir.exists()
    except (OSError, ValueError) as exc:  # a name too long for the file system, a NUL byte
        raise ConfigError(f"--run-dir {run_dir}: cannot use it ({getattr(exc, 'strerror', None) or exc})") from None
    if exists and not run_dir.is_dir():
        raise ConfigError(f"--run-dir {run_dir}: exists and is not a folder")
    RunLock.check_free(run_dir)  # a folder in use is refused, --force or not
    if run_dir.is_dir():
        refuse_existing_run(run_dir, force)
    made: list[Path] = []
    try:
        made = make_folder(run_dir.parent)
        made = [_make_in_made_parents(run_dir, made), *made]
    except FileExistsError:  # there already, or made by another process a moment ago: the lock decides
        if not run_dir.is_dir():
            if run_dir.is_symlink():  # to nothing (rdpg makes no folder at a link's far end), or in a loop
                why = _dangling_link(run_dir)
            elif os.path.lexists(run_dir):
                why = "exists and is not a folder"
            else:  # a file where a folder above it should be
                why = f"cannot create it ({os.strerror(errno.ENOTDIR)})"
            raise ConfigError(f"--run-dir {run_dir}: {why}") from None
        made = []  # there already: the parents were too
    except OSError as exc:
        remove_made_folders(made)
        raise ConfigError(f"--run-dir {run_dir}: cannot create it ({exc.strerror})") from None
    try:
        require_writable(run_dir, f"--run-dir {run_dir}")
    except ConfigError:
        remove_made_folders(made)
        raise
    return run_dir, made


def _dangling_link(link: Path) -> str:
    """What is wrong with a symbolic link that leads to no folder: where it ends, or that it never does."""
    try:
        os.stat(link)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "is a symbolic link that leads back to itself"
    return f"is a symbolic link to {os.path.realpath(link)}, which does not exist"


def _new_stamped_folder(parent: Path) -> tuple[Path, list[Path]]:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    try:
        parents = make_folder(parent)  # runs/ and runs/<name> on a project's first run
    except OSError as exc:
        raise ConfigError(f"{parent}: cannot create the runs folder ({exc.strerror})") from None
    try:
        for suffix in range(10_000):
            run_dir = parent / (stamp if suffix == 0 else f"{stamp}-{suffix}")
            try:
                _make_in_made_parents(run_dir, parents)
            except FileExistsError:
                continue
            except OSError as exc:
                raise ConfigError(f"{run_dir}: cannot create the run folder ({exc.strerror})") from None
            made = [run_dir, *parents]
            try:
                require_writable(run_dir, str(run_dir))
            except ConfigError:
                remove_made_folders(made)
                raise
            return run_dir, made
    except ConfigError:
        remove_made_folders(parents)  # a no-op once the run folder is made: it holds the lock's place
        raise
    raise ConfigError(f"{parent}: 10000 run folders stamped {stamp} already; give --run-dir")


def _make_in_made_parents(run_dir: Path, parents: list[Path]) -> Path:
    """``run_dir.mkdir()`` (FileExistsError if it is there). Its parent may vanish between being made and this:
    another rdpg that stopped before its run started takes back the empty parents it made (two first runs of a
    project at once, in runs/<preset>/): made again, a few times, and added to ``parents``."""
    retries = 2
    while True:
        try:
            run_dir.mkdir()
            return run_dir
        except FileNotFoundError:
            if not retries or may_exist(run_dir.parent):
                raise
            retries -= 1
            parents[:0] = [made for made in make_folder(run_dir.parent) if made not in parents]


def require_writable(run_dir: Path, what: str) -> None:
    """Refuse a folder this process cannot write in (permissions, a read-only file system) before
    TensorFlow loads, rather than failing at the first file."""
    if not os.access(run_dir, os.W_OK | os.X_OK):
        raise ConfigError(f"{what}: cannot write in this folder (read-only or no permission)")


LOG_HEADER_START = b"env_steps,"  # metrics.csv's and timing.csv's first column


def written_by_rdpg(path: Path) -> bool:
    """Whether a file named as one of a run's looks like the one rdpg writes: a folder of the user's that
    happens to hold a config.yaml, a metrics.csv, a checkpoint.h5 of another tool or a tensorboard/ of its own
    is not a run, and --force must not replace it. Judged by the first bytes (by the format attribute for a
    readable HDF5 file); empty or zeroed (a power loss), or an HDF5 file too damaged to read, counts as
    rdpg's: a damaged run is what --force is there to replace."""
    name = path.name
    try:
        if name == "tensorboard":
            return path.is_dir() and not path.is_symlink() and all(
                entry.name.startswith("events.out.tfevents.") and entry.is_file() for entry in path.iterdir())
        if path.is_symlink() or not path.is_file():
            return False
        with open(path, "rb") as f:
            head = f.read(64)
    except OSError:
        return False
    if head.strip(b"\0") == b"":
        return True
    head = head.rstrip(b"\0")  # a text cut short by a power loss, then zeroed
    if name.endswith(".h5"):
        from rdpg_cli.checkpoint import HDF5_SIGNATURE

        return head.startswith(HDF5_SIGNATURE) and _rdpg_checkpoint_or_unreadable(path)
    if name.endswith(".csv"):  # a header cut short counts too
        return head.startswith(LOG_HEADER_START) or LOG_HEADER_START.startswith(head)
    if name == "config.yaml":
        return head.startswith((b"env:", b"name:"))
    # command.txt: "# 2026-11-27 09:00:00 rdpg 0.1.0"
    return re.match(rb"# \d{4}-\d\d-\d\d \d\d:\d\d:\d\d rdpg ", head) is not None


def _rdpg_checkpoint_or_unreadable(path: Path) -> bool:
    """An HDF5 file: whether its format attribute is rdpg's checkpoint's, or it is too damaged to tell."""
    import h5py

    from rdpg_cli.checkpoint import FORMAT

    def stored_format(locking: bool):
        with h5py.File(path, "r", locking=locking) as f:
            return f.attrs.get("format")

    try:
        found = stored_format(locking=True)
    except BlockingIOError:  # another program holds it open for writing (unflushed, it reads as truncated)
        return False
    except OSError as exc:
        if "lock" not in str(exc).lower():
            return True  # truncated, a bad superblock: damaged
        try:  # a file system without HDF5's file locks
            found = stored_format(locking=False)
        except Exception:
            return True
    except Exception:  # h5py raises KeyError, RuntimeError... on damaged attributes too
        return True
    if isinstance(found, bytes):
        found = found.decode(errors="replace")
    return isinstance(found, str) and found == FORMAT


def refuse_existing_run(run_dir: Path, force: bool = False) -> None:
    """A ConfigError when the folder holds a run's files (with ``force``, which replaces them: only when a file
    of such a name is not one rdpg wrote, the user's own config.yaml, metrics.csv or tensorboard/ of other
    logs). Checked when the folder is chosen, and again once its lock is held (a run may have started and ended
    there while TensorFlow loaded)."""
    foreign = [name for name in RUN_FILES if os.path.lexists(run_dir / name)
               and not written_by_rdpg(run_dir / name)]
    if foreign:  # first: "use --force" would not help there
        raise ConfigError(f"--run-dir {run_dir}: holds {', '.join(foreign)} that rdpg did not write; rdpg "
                          "replaces only a run's own files, even with --force: give another folder")
    if force:
        return
    if (run_dir / "checkpoint.h5").exists():
        raise ConfigError(
            f"--run-dir {run_dir}: already holds a run (checkpoint.h5); use --resume {shlex.quote(str(run_dir))} "
            "to continue it or --force to start over")
    found = [name for name in RUN_FILES if os.path.lexists(run_dir / name)]
    if found:  # e.g. a run stopped before its first checkpoint: its metrics are still the user's
        raise ConfigError(f"--run-dir {run_dir}: already holds a run's files ({', '.join(found)}); "
                          "use --force to start over")


def remove_if_unused(run_dir: Path, made: list[Path]) -> None:
    """Remove the run folder this command made (``made``: it, then the missing parents made for it), when
    nothing but its lock file is in it, and only with its lock held: a process that lost the lock to another
    must not remove the folder the winner is about to train in (it holds only the lock file until the winner's
    first write). Then the parents made for it, while they are empty."""
    if not made:
        return
    try:
        with RunLock(run_dir):  # a ConfigError while another process holds it
            if {entry.name for entry in run_dir.iterdir()} - {".lock"}:
                return  # the run wrote something: the folder, its lock included, stays
            (run_dir / ".lock").unlink()
            run_dir.rmdir()
    except (ConfigError, OSError):
        return
    remove_made_folders(made[1:])


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
        try:
            for path in run_dir.glob(pattern):
                path.unlink(missing_ok=True)
        except OSError:  # one it cannot remove stays (the next session tries again); it is never read
            pass


def _resume_refusals(kept: str) -> FileMessages:
    """How a resume refuses one of the run's files that is not a regular file it can read (``kept``: what the
    run keeps in it)."""
    return FileMessages(
        not_found="{shown}: a link to nothing; repair or remove it to resume",
        unreadable="{shown}: cannot read it ({reason}); repair or remove it to resume",
        folder="{shown}: is a folder, not the run's " + kept + "; remove it to resume",
        not_regular="{shown}: not a regular file; remove it to resume")


def require_run_entries(folder: Path) -> None:
    """A resume writes command.txt and TensorBoard events in the run folder: one of them of the wrong kind
    (command.txt a folder, tensorboard/ a file) failed only once config.yaml had been rewritten, or at the first
    evaluation. Refused first, as metrics.csv and timing.csv are (``read_log``)."""
    command = folder / "command.txt"
    if os.path.lexists(command):
        regular_file_size(command, str(command), ConfigError, _resume_refusals("command log"))
    best = folder / "best.h5"  # (a symbolic link is replaced by the run's file, not written through)
    if os.path.lexists(best) and not best.is_symlink() and not best.is_file():
        raise ConfigError(f"{best}: not a regular file (the run writes its best policy there); remove it to resume")
    events = folder / "tensorboard"
    if os.path.lexists(events) and not events.is_dir():
        raise ConfigError(f"{events}: not a folder (the run's TensorBoard events go in it); remove it to resume")


def read_log(path: Path) -> list[list[str]]:
    """The rows of a run's metrics.csv or timing.csv, header first (none when the file is missing). A file
    that is not one (text cut by a crash, a zero-filled tail left by a power loss, an edit) is one line
    naming its first bad line, so that a resume stops before it changes anything."""
    if not os.path.lexists(path):
        return []
    # Not a regular file (a folder, a FIFO that would block the resume for ever): refused before it is opened.
    regular_file_size(path, str(path), ConfigError, _resume_refusals("log"))
    try:
        with open(path, newline="", encoding="utf-8") as f:
            text = f.read()
        rows = list(csv.reader(io.StringIO(text)))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read it ({exc.strerror or exc}); repair or remove it to resume") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not a log rdpg wrote (byte {exc.start} is not text); repair or remove it "
                          "to resume") from None
    except csv.Error as exc:
        raise ConfigError(f"{path}: not a log rdpg wrote ({exc}); repair or remove it to resume") from None
    columns = len(rows[0]) if rows else 0
    for number, row in enumerate(rows[1:], start=2):
        if row and not (row[0].isascii() and row[0].isdigit()):  # ASCII: '²'.isdigit() holds, int('²') fails
            raise ConfigError(f"{path}: line {number} is not a log row (it starts {row[0][:20]!r}, not an env "
                              "step); repair or remove it to resume")
        # A row cut short (a crash in mid-write, a tail zeroed from inside it) would be kept as it is, its last
        # number cut off: every row rdpg writes has a field for each column of the header.
        if row and len(row) != columns:
            raise ConfigError(f"{path}: line {number} has {len(row)} fields, the header {columns}; repair or "
                              "remove it to resume")
    if text and not text.endswith("\n"):
        raise ConfigError(f"{path}: line {len(rows)} is cut short (no line end); repair or remove it to resume")
    return rows


def log_disagreement(rows: list[list[str]], saved: dict[str, int], best_eval: float | None,
                     same_branch: bool = True) -> str | None:
    """Why metrics.csv's rows (``read_log``'s, header first) cannot be the log of the run whose checkpoint holds
    the counters ``saved`` (env_steps, episodes, gradient_steps) and ``best_eval``; None when they can be.
    Another run's log, left behind when this run's checkpoint was copied over that run's, would otherwise be cut
    at this run's step and continued: two runs in one file.

    A row at the checkpoint's env step was written with the checkpoint's very counters (the row comes just
    before the save, a closing row just after it); an earlier row has no more episodes, gradient steps or best
    return than the checkpoint (they only grow). Not ``same_branch`` (a checkpoint without replay memory: a
    best.h5 copied as checkpoint.h5), the rows may come from a later branch of the same run, which resumed
    from an older checkpoint and took other steps: only the best return is compared, which no row of the
    folder's exceeds (a better evaluation would have replaced best.h5)."""
    if not rows:
        return None
    # Where each compared column is (a file of an older rdpg may lack one: nothing to compare there).
    counters = [(rows[0].index(c), c) for c in ("episodes", "gradient_steps") if same_branch and c in rows[0]]
    best_at = rows[0].index("eval/best_return") if "eval/best_return" in rows[0] else None
    for row in rows[1:]:
        if not row or int(row[0]) > saved["env_steps"]:
            continue  # written after the checkpoint (a session killed later): the resume drops it
        exact = same_branch and int(row[0]) == saved["env_steps"]
        for at, column in counters:
            text = row[at]
            if text.isascii() and text.isdigit() and (
                    int(text) > saved[column] or (exact and int(text) != saved[column])):
                return f"its row at env step {row[0]} has {column} {text}, checkpoint.h5 {saved[column]}"
        if best_at is None:
            continue
        text = row[best_at]
        try:
            logged = float(text) if text else None
        except ValueError:
            continue
        if logged is None:
            differs = exact and best_eval is not None
        else:
            differs = best_eval is None or logged > best_eval or (exact and logged != best_eval)
        if differs:
            saved_best = "none" if best_eval is None else repr(float(best_eval))
            return f"its row at env step {row[0]} has eval/best_return {text or 'empty'}, checkpoint.h5 {saved_best}"
    return None


def require_logs_of_this_run(folder: Path, state: dict, with_replay: bool) -> None:
    """Before a resume changes anything (and before TensorFlow loads): metrics.csv and timing.csv readable as
    logs rdpg wrote (``read_log``; the run cuts them back at its start), and metrics.csv this run's own
    (``log_disagreement``) given the checkpoint's training state."""
    rows = read_log(folder / "metrics.csv")
    read_log(folder / "timing.csv")
    saved = {"env_steps": state["env_steps"], "episodes": state["episodes"], "gradient_steps": state["critic_updates"]}
    disagreement = log_disagreement(rows, saved, state["best_eval"], same_branch=with_replay)
    if disagreement:
        raise ConfigError(f"{folder / 'metrics.csv'}: not the log of the run in checkpoint.h5 ({disagreement}): "
                          "another run's, which the resume would mix with this one's; move it away to resume")
