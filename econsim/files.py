"""Files of a run folder: atomic writes, leftovers of dead processes, and the run lock.

* **Atomic writes.** A file is written to ``.<name>.tmp-<pid>`` in the same folder, then
  renamed onto ``<name>``, so a reader sees the old or the new file, never half of one.
* **Leftovers.** A process killed mid-write leaves its temporary file behind;
  :func:`remove_stale_temps` removes those whose process has ended, of the names it is
  given only, never through a link (the store calls it for usable run folders when it reads
  the runs folder, the runner when it resumes a run).
* **Run lock.** :func:`lock_folder` takes an exclusive ``fcntl.flock`` on ``<folder>/.lock``
  (which holds the owner's pid, for the message) so two processes never train the same run;
  the operating system releases it when its owner exits, however it exits, so a lock of a
  dead process is never in the way.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import time
from collections.abc import Callable, Collection
from pathlib import Path
from typing import IO

import pandas as pd

from econsim.errors import ScenarioError

LOCK_NAME = ".lock"
_TEMP = re.compile(r"^\.(.+)\.tmp-(\d+)$")


def temp_path(path: Path) -> Path:
    """The temporary name this process writes ``path`` under: ``.<name>.tmp-<pid>``."""
    path = Path(path)
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def atomic_write(path: Path, write: Callable[[Path], object]) -> None:
    """Call ``write(tmp_path)`` then rename onto ``path``; a crash leaves no partial file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    if tmp.is_symlink():  # not ours: never write through it
        tmp.unlink()
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda p: p.write_text(text))


def write_table(path: Path, df: pd.DataFrame) -> None:
    """Parquet or CSV by the file's suffix."""
    if path.suffix == ".csv":
        atomic_write(path, lambda p: df.to_csv(p, index=False))
    else:
        atomic_write(path, lambda p: df.to_parquet(p, index=False))


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists (on this machine)."""
    if pid <= 0:
        return False  # os.kill(0, ...) would address our own process group
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):
        return False
    except PermissionError:
        return True  # it exists, owned by another user
    return True


def _ours(name: str, names: Callable[[str], bool] | Collection[str]) -> bool:
    return names(name) if callable(names) else name in names


def _half_made(folder: str, files: Collection[str]) -> bool:
    """Whether ``folder`` (a real folder) holds nothing but ``files`` and their temporary
    names, all regular files: what a process creating a run folder leaves when killed."""
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                m = _TEMP.match(entry.name)
                name = m.group(1) if m else entry.name
                if name not in files or not entry.is_file(follow_symlinks=False):
                    return False
    except OSError:
        return False
    return True


def remove_stale_temps(folder: Path, names: Callable[[str], bool] | Collection[str], *,
                       folders: Collection[str] | None = None,
                       min_age_s: float = 60.0) -> list[Path]:
    """Remove econsim's temporary files ``.<name>.tmp-<pid>`` in ``folder`` whose process
    has ended and that were last modified more than ``min_age_s`` seconds ago.

    Only names ``<name>`` in ``names`` (or for which ``names(name)`` is true) are ours.
    Without ``folders``, only regular files are removed; with ``folders``, only real
    folders (a run folder being created) that hold nothing but the files named in
    ``folders`` (and their temporary names). A symbolic link is never followed nor removed,
    nor is anything else. The age guard keeps the temporary file of a live writer on
    another machine sharing the folder (whose pid means nothing here). Returns what was
    removed; errors (a read-only folder, a file removed meanwhile) are ignored.
    """
    removed: list[Path] = []
    try:
        with os.scandir(folder) as it:
            entries = list(it)
    except OSError:
        return removed
    now = time.time()
    for entry in entries:
        m = _TEMP.match(entry.name)
        if not m or not _ours(m.group(1), names) or pid_alive(int(m.group(2))):
            continue
        try:
            if now - entry.stat(follow_symlinks=False).st_mtime < min_age_s:
                continue
            if folders is not None:
                if not entry.is_dir(follow_symlinks=False) or not _half_made(entry.path,
                                                                             folders):
                    continue
                shutil.rmtree(entry.path)
            elif entry.is_file(follow_symlinks=False):
                os.unlink(entry.path)
            else:
                continue
            removed.append(Path(entry.path))
        except OSError:
            continue
    return removed


def lock_folder(folder: Path, what: str) -> IO[str]:
    """Take the exclusive lock of ``folder`` (``<folder>/.lock``) without waiting.

    Returns the open lock file: the lock is held until it is closed (or the process ends).
    If another live process holds it, raises a one-line ``ScenarioError`` naming ``what``
    and that process.
    """
    try:  # never through a link (O_NOFOLLOW): the lock file is truncated and written
        fd = os.open(Path(folder) / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    except OSError as err:
        raise ScenarioError(f"{what}: cannot take its lock {Path(folder) / LOCK_NAME}: "
                            f"{err.strerror or err} (a symbolic link?)") from None
    f = os.fdopen(fd, "r+")  # noqa: SIM115 (held open while the lock is)
    try:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        f.seek(0)
        owner = f.read().strip() or "?"
        f.close()
        raise ScenarioError(f"{what} is already running (process {owner}); wait for it to "
                            "finish or stop it first") from None
    f.seek(0)
    f.truncate()
    f.write(f"{os.getpid()}\n")
    f.flush()
    return f
