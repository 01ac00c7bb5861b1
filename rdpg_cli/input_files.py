"""Checking the paths a user named before anything opens them: that an input is a regular file, that an
output's folder can be written in (one-line errors); and putting a finished output in place without replacing
what appeared there meanwhile."""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

from rdpg_cli.errors import RdpgError
from rdpg_cli.signals import stop_signals_deferred


@dataclass(frozen=True)
class FileMessages:
    """How one kind of input names each way a path can fail; ``{shown}`` is the path as the user gave it,
    ``{reason}`` the operating system's reason."""

    not_found: str
    unreadable: str
    folder: str
    not_regular: str


def regular_file_size(path: Path, shown: str, error: type[RdpgError], messages: FileMessages) -> int:
    """The size of ``path`` if it is a regular file; otherwise ``error`` with the matching message."""
    try:
        info = path.stat()
    except (FileNotFoundError, NotADirectoryError):
        raise error(messages.not_found.format(shown=shown)) from None
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise error(messages.unreadable.format(shown=shown, reason=reason)) from None
    except ValueError:  # an embedded NUL byte
        raise error(f"{shown!r}: not a valid file name") from None
    if stat.S_ISDIR(info.st_mode):
        raise error(messages.folder.format(shown=shown))
    if not stat.S_ISREG(info.st_mode):
        raise error(messages.not_regular.format(shown=shown))
    return info.st_size


def blocked_folder_problem(folder: Path) -> str | None:
    """Why an output cannot go in ``folder``, made with its missing parents where need be (None when it can):
    the nearest part of it that is there is not a folder."""
    for part in (folder, *folder.parents):
        if os.path.lexists(part):
            return None if part.is_dir() else f"{part} is not a folder"
    return None


def nearest_folder(folder: Path) -> Path:
    """``folder``, or the nearest of its parents that is there: where its missing parts would be made."""
    return next((part for part in (folder, *folder.parents) if part.is_dir()), Path("."))


def make_folder(folder: Path) -> list[Path]:
    """Make ``folder`` and its missing parents, as ``rdpg train --run-dir`` does; -> those made, deepest first,
    for ``remove_made_folders`` to take back if the output is not placed. OSError as ``mkdir`` raises it (what
    it had made removed)."""
    # "a/.." names no folder of its own to remove (rmdir refuses it, which stopped the removal before "a").
    made = [part for part in (folder, *folder.parents) if part.name not in ("", ".", "..") and not may_exist(part)]
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except BaseException:  # an OSError, or Ctrl-C midway: what was made goes
        remove_made_folders(made)
        raise
    return made


def remove_made_folders(made: list[Path]) -> None:
    """Remove the folders ``make_folder`` made, deepest first, while they are empty: one holding anything (an
    output placed after all, a file another process put there) keeps itself and the folders above it."""
    for folder in made:
        try:
            folder.rmdir()
        except (FileNotFoundError, NotADirectoryError):
            # Not a folder this call made after all: through "..", "new/x/../../f" names the file f, made of
            # nothing, while new/x above it was made. The folders above are still taken back while empty.
            continue
        except OSError:
            break


def cannot_write_in(folder: Path, prefix: str) -> str | None:
    """Why no file can be created in ``folder`` (None when one can). A file named ``prefix...`` is made and
    removed: the test that also holds for root in a folder made immutable, where os.access says yes."""
    try:
        with stop_signals_deferred():  # a Ctrl-C between the two would leave the probe in the user's folder
            fd, probe = tempfile.mkstemp(prefix=prefix, dir=folder)
            os.close(fd)
            os.unlink(probe)
    except OSError as exc:
        return exc.strerror or str(exc)
    return None


def may_exist(path: Path) -> bool:
    """``path.exists()``, and True where that cannot be told (a name too long for the file system): rdpg never
    removes a folder it cannot tell it made."""
    try:
        return path.exists()
    except (OSError, ValueError):
        return True


def name_problem(path: Path) -> str | None:
    """Why the file system cannot take ``path`` as a name at all (a component over its length limit, a NUL
    byte), or None: checked before anything asks whether the path exists, which would raise."""
    try:
        os.lstat(path)
    except OSError as exc:
        return exc.strerror if exc.errno in (errno.ENAMETOOLONG, errno.ELOOP) else None
    except ValueError:
        return "not a valid file name"
    return None


def temporary_name(prefix: str, suffix: str = "") -> str:
    """A hidden name for an output being written beside its place: the process id (a leftover tells whose it
    was) and a random part (processes in two containers sharing a folder can have the same id). Short whatever
    the output's own name, which may be near the file system's limit of 255 bytes."""
    return f"{prefix}{os.getpid()}-{secrets.token_hex(4)}{suffix}"


# How a file system without hard links refuses one (FAT and exFAT: EPERM; some network and FUSE mounts: the rest).
NO_HARD_LINKS = (errno.EPERM, errno.EOPNOTSUPP, errno.ENOSYS, errno.EMLINK)


def place_new(tmp: Path, dest: Path) -> None:
    """Move the finished file or folder ``tmp`` to ``dest``, where nothing was when the command checked.
    FileExistsError if something is there now (another rdpg writing the same output, or the user), which then
    stays as it is; ``tmp`` is left for its owner to remove. Checking first and renaming after would replace
    it. A file gets a second name instead (``os.link`` never replaces), then loses its temporary one; a folder
    first claims the name with an empty folder of its own (``os.mkdir`` fails on anything there, where a rename
    would replace an empty folder), then is renamed over it. Where a file system has no hard links the check
    and the move of a file are two steps, as close together as they can be."""
    if tmp.is_dir():
        os.mkdir(dest)
        try:
            os.rename(tmp, dest)
        except BaseException:
            with contextlib.suppress(OSError):
                os.rmdir(dest)  # the claim, still empty; never a folder someone filled since
            raise
        return
    try:
        os.link(tmp, dest)
    except FileExistsError:
        # Over NFS a link the server made can be answered "exists" when the request was sent again: then the
        # name already leads to this very file.
        identity = file_identity(tmp)
        if identity is None or identity != file_identity(dest):
            raise
    except OSError as exc:
        if exc.errno not in NO_HARD_LINKS:
            raise
        if os.path.lexists(dest):
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(dest)) from None
        os.replace(tmp, dest)
        return
    tmp.unlink()


def file_identity(path: Path) -> tuple[int, int] | None:
    """The (device, inode) pair ``path`` names itself (a link is not followed), None where nothing is: what
    tells one file from another that took its name."""
    try:
        info = os.lstat(path)
    except OSError:
        return None
    return info.st_dev, info.st_ino
