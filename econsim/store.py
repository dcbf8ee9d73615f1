"""Query stored runs with DuckDB: every run folder's Parquet tables as one view.

>>> from econsim import store
>>> store.runs()                                   # one row per run folder
>>> store.query("select algorithm, avg(collective) from episodes "
...             "where phase = 'eval' group by 1")

The views ``episodes`` and ``agents`` union ``<root>/*/episodes.parquet`` and
``<root>/*/agents.parquet``; ``runs`` is the table of run manifests. Nothing needs a server.

* **The runs folder.** Every function takes ``root``; ``None`` means :func:`default_root`:
  ``$ECONSIM_RUNS`` if set, else ``./runs``. The CLI, the runner, sweeps, analysis, the Mesa
  model and the app all use this rule.
* **Run ids.** A run id is a plain name (:data:`RUN_ID_RULE`); :func:`resolve` is the one
  place a run id becomes a path, and it refuses ids like ``../x`` or ``/etc`` and folders
  that lead outside the runs folder (a symbolic link), with a one-line ``ScenarioError``.
* **Inside a run folder.** :func:`inside` is the one place a file of a run folder becomes a
  path: it refuses a symbolic link among the parts and anything that resolves outside the
  folder, so no read or write follows a link out of it; a folder whose own files are links
  is skipped like any unusable folder.
* **Bad folders.** A folder that is not a usable run (no or malformed ``run.json``, a
  ``run.json`` naming another run because the folder was renamed or copied, a finished run
  without its tables, an unreadable table) is skipped with a one-line :class:`StoreWarning`
  naming it, so one broken folder never makes the others unreadable.
* **Concurrent writers.** Tables are read through pyarrow, one open file each (never by a
  path DuckDB could glob or re-open), and :func:`query` runs again if a file was replaced
  while it read (a run writing its tables): a query sees complete files, all of one moment.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from econsim import bounds
from econsim.errors import ScenarioError, StoreWarning, short
from econsim.files import LOCK_NAME, atomic_write, remove_stale_temps, write_table

RUNS_ENV = "ECONSIM_RUNS"
RUNS_DIR = Path("runs")  # the runs folder when $ECONSIM_RUNS is not set
TABLES = ("episodes", "agents", "periods")  # periods: GTB runs only (per tax period)
REQUIRED = ("episodes", "agents")  # a finished run has both
RUN_ID_MAX = bounds.RUN_ID_MAX
RUN_ID_RULE = f"a run id is {bounds.NAME_RULE}, at most {RUN_ID_MAX} characters"
#: what a half-made run folder (``.<run id>.tmp-<pid>`` in the root) may hold
RUN_START = (LOCK_NAME, "run.json", "scenario.toml")
_ATTEMPTS = 8  # query(): runs again while a writer replaces files underneath it

#: columns of the views when no run has written that table yet (so they exist, empty)
_EMPTY = {
    "episodes": {"run_id": pa.string(), "scenario": pa.string(), "env": pa.string(),
                 "algorithm": pa.string(), "seed": pa.int64(), "phase": pa.string(),
                 "iteration": pa.int64(), "episodes": pa.int64(), "epsilon": pa.float64(),
                 "collective": pa.float64(), "length": pa.float64()},
    "agents": {"run_id": pa.string(), "scenario": pa.string(), "env": pa.string(),
               "algorithm": pa.string(), "seed": pa.int64(), "phase": pa.string(),
               "iteration": pa.int64(), "agent": pa.int64(), "kind": pa.string()},
    "periods": {"run_id": pa.string(), "scenario": pa.string(), "env": pa.string(),
                "algorithm": pa.string(), "seed": pa.int64(), "phase": pa.string(),
                "iteration": pa.int64(), "episode": pa.int64(), "period": pa.int64(),
                "agent": pa.int64()},
}
_RUN_COLUMNS = ["run_id", "scenario", "env", "algorithm", "seeds", "status", "iterations_done",
                "iterations", "wall_s", "final_collective_mean", "started"]


# --------------------------------------------------------------------------- root and ids


def default_root() -> Path:
    """The runs folder when none is given: ``$ECONSIM_RUNS`` if set, else ``./runs``."""
    return Path(os.environ.get(RUNS_ENV) or RUNS_DIR)


def root_path(root: str | Path | None = None) -> Path:
    """``root`` as a Path; ``None`` (or ``""``) means :func:`default_root`."""
    return default_root() if root is None or str(root) == "" else Path(root)


def check_root(root: str | Path | None = None) -> Path:
    """:func:`root_path`, refusing (one-line ``ScenarioError``) a runs folder that exists
    but is not a folder (a file of that name)."""
    base = root_path(root)
    if (base.exists() or base.is_symlink()) and not base.is_dir():
        raise ScenarioError(f"runs folder {short(str(base))}: is not a folder (a file of that "
                            "name exists; give another --root)")
    return base


def _plain(run_id: object) -> bool:
    return bounds.is_plain_name(run_id, RUN_ID_MAX)  # the rule of scenario names too


def _inside(path: Path, base: Path) -> bool:
    """Whether ``path``'s real location (links followed) is inside ``base``'s."""
    return path.resolve().is_relative_to(base.resolve())


def inside(folder: str | Path, *parts: str) -> Path:
    """``folder/part/...``: a file or folder of a run folder (it need not exist).

    Every part must be a plain name (no ``/``, ``.`` or ``..``), none may be a symbolic link
    and the path must resolve inside ``folder``; otherwise a one-line ``ScenarioError``
    (econsim never follows a link out of a run folder, whatever it reads, writes or
    deletes there).
    """
    base = Path(folder)
    path = base
    for part in parts:
        if (not isinstance(part, str) or part in ("", ".", "..") or "/" in part
                or "\\" in part or "\0" in part):
            raise ScenarioError(f"{base}/: {short(repr(part))} is not a plain file name")
        path = path / part
        if path.is_symlink():
            raise ScenarioError(f"{path} is a symbolic link; econsim does not follow links "
                                "inside a run folder (replace it with the file itself)")
    if not _inside(path, base):
        raise ScenarioError(f"{path} leads outside {base}/; it is not used")
    return path


#: what econsim keeps in a run folder (a link by one of these names makes the folder unusable)
RUN_FILES = ("run.json", "scenario.toml", "sweep.json", "log.jsonl", LOCK_NAME,
             *(f"{t}.parquet" for t in TABLES))
RUN_FOLDERS = {"checkpoints": ("last.pt",), "export": ()}


def kept_name(iteration: int) -> str:
    """The file in ``checkpoints/`` of the checkpoint kept at ``iteration`` (``keep_every``)."""
    return f"iteration-{iteration:07d}.pt"


def kept_iteration(name: str) -> int | None:
    """The iteration of a kept checkpoint's file ``name``; None for any other name."""
    stem = name.removeprefix("iteration-").removesuffix(".pt")
    ok = stem.isascii() and stem.isdigit() and name == kept_name(int(stem))
    return int(stem) if ok else None


#: the files a run writes atomically (``.<name>.tmp-<pid>`` while being written)
_WRITTEN = ("run.json", "scenario.toml", "sweep.json", *(f"{t}.parquet" for t in TABLES))


def _links(path: Path) -> str | None:
    """Why a run folder is unusable because one of econsim's files in it is a symbolic
    link (None if none is)."""
    names = [(n,) for n in RUN_FILES] + [
        parts for folder, files in RUN_FOLDERS.items()
        for parts in [(folder,), *((folder, f) for f in files)]]
    for parts in names:
        if path.joinpath(*parts).is_symlink():
            return (f"{'/'.join(parts)} is a symbolic link (econsim does not follow links "
                    "inside a run folder)")
    return None


def clean(folder: Path, min_age_s: float = 60.0) -> list[Path]:
    """Remove leftovers of dead processes in a validated run folder: econsim's own temporary
    files ``.<name>.tmp-<pid>`` of the files a run writes, in the folder and in its
    ``checkpoints/`` (``last.pt`` and the kept ones; regular files only; never a link, a
    folder or any other file)."""
    removed = remove_stale_temps(folder, _WRITTEN, min_age_s=min_age_s)
    try:
        checkpoints = inside(folder, "checkpoints")
    except ScenarioError:
        return removed  # a link: not ours to clean
    if checkpoints.is_dir():
        def ours(name: str) -> bool:
            return name in RUN_FOLDERS["checkpoints"] or kept_iteration(name) is not None

        removed += remove_stale_temps(checkpoints, ours, min_age_s=min_age_s)
    return removed


def check_run_id(run_id: object) -> str:
    """``run_id`` if it is a plain name (see :data:`RUN_ID_RULE`), else a one-line
    ``ScenarioError``."""
    if not _plain(run_id):
        text = repr(run_id)
        shown = text if len(text) <= 80 else text[:77] + "..."
        raise ScenarioError(f"run id {shown} is not allowed: {RUN_ID_RULE}")
    return str(run_id)


def resolve(run_id: str, root: str | Path | None = None) -> Path:
    """The folder of run ``run_id`` in ``root`` (it need not exist yet).

    Refuses a run id that is not a plain name, and a folder whose real path is outside
    ``root`` (a symbolic link), with a one-line ``ScenarioError``.
    """
    base = root_path(root)
    path = base / check_run_id(run_id)
    if not _inside(path, base):
        raise ScenarioError(f"run {run_id!r}: its folder leads outside {base}/ (a symbolic "
                            "link?); it is not used")
    return path


# --------------------------------------------------------------------------- scanning


@dataclass(frozen=True)
class StoredRun:
    """A usable run folder: its id, path, manifest (``run.json``) and the tables it has
    (name -> file; a table with no rows yet is absent)."""

    run_id: str
    path: Path
    info: dict[str, Any]
    tables: dict[str, Path] = field(default_factory=dict)


def _manifest_problem(info: Any, name: str) -> str | None:
    """Why a parsed ``run.json`` is unusable for folder ``name`` (None if it is fine)."""
    if not isinstance(info, dict):
        return "run.json is not a JSON object"
    if info.get("run_id") != name:
        return (f"run.json belongs to run {info.get('run_id')!r}, not to this folder "
                "(renamed or copied?)")
    seeds = info.get("seeds", [])
    if not isinstance(seeds, list) or not all(isinstance(s, int) for s in seeds):
        return "run.json: seeds is not a list of integers"
    final = info.get("final_collective")
    if final is not None and not (isinstance(final, dict) and all(
            isinstance(v, int | float) for v in final.values())):
        return "run.json: final_collective is malformed"
    if not isinstance(info.get("status", ""), str):
        return "run.json: status is not a string"
    return None


def _tables(path: Path, info: dict[str, Any]) -> tuple[dict[str, Path], str | None]:
    """The readable tables of a run folder, or why the folder is unusable."""
    found: dict[str, Path] = {}
    for table in TABLES:
        try:
            file = inside(path, f"{table}.parquet")
        except ScenarioError:
            return {}, f"{table}.parquet is a symbolic link or leads outside the folder"
        if not file.is_file():
            continue
        try:
            schema = pq.read_schema(file)
        except (OSError, pa.ArrowException):
            return {}, f"{table}.parquet is not a readable Parquet file"
        if len(schema):  # a table with no columns has no rows yet
            found[table] = file
    if info.get("status") == "finished":
        missing = [t for t in REQUIRED if t not in found]
        if missing:
            return {}, f"finished run without {' and '.join(t + '.parquet' for t in missing)}"
    return found, None


def _check(path: Path, base: Path) -> tuple[StoredRun | None, str | None]:
    """(the run, None) for a usable run folder, else (None, why it is skipped)."""
    if not _plain(path.name):
        return None, "its name is not a valid run id"
    if not _inside(path, base):
        return None, "it leads outside the runs folder (a symbolic link?)"
    why = _links(path)
    if why:
        return None, why
    manifest = inside(path, "run.json")
    if not manifest.is_file():
        return None, "no run.json"
    try:
        info = json.loads(manifest.read_text())
    except (OSError, UnicodeDecodeError, ValueError):
        return None, "run.json is not valid JSON"
    why = _manifest_problem(info, path.name)
    if why:
        return None, why
    tables, why = _tables(path, info)
    if why:
        return None, why
    return StoredRun(path.name, path, info, tables), None


def scan(root: str | Path | None = None) -> list[StoredRun]:
    """Every usable run in ``root``, sorted by id. Each other folder is skipped with a
    :class:`StoreWarning` (hidden folders and plain files silently); leftover temporary
    files of dead processes are removed on the way: only econsim's own temporary files in
    usable run folders and, in ``root``, half-made run folders ``.<run id>.tmp-<pid>``
    holding nothing but a run's first files (see :func:`clean`); nothing else is deleted and
    no link is followed."""
    base = root_path(root)
    if not base.is_dir():
        return []
    remove_stale_temps(base, _plain, folders=RUN_START, min_age_s=60.0)
    found = []
    for path in sorted(base.iterdir()):
        if path.name.startswith(".") or not path.is_dir():
            continue
        run, why = _check(path, base)
        if run is None:
            warnings.warn(f"run folder {path} skipped: {why}", StoreWarning, stacklevel=2)
        else:
            clean(path)
            found.append(run)
    return found


def _runs_frame(found: list[StoredRun]) -> pd.DataFrame:
    rows = []
    for run in found:
        info = dict(run.info)
        final = info.pop("final_collective", None) or {}
        info["seeds"] = ",".join(str(s) for s in info.get("seeds", []))
        info["final_collective_mean"] = (sum(final.values()) / len(final)) if final else None
        rows.append(info)
    df = pd.DataFrame(rows)
    return df.reindex(columns=_RUN_COLUMNS) if not df.empty else pd.DataFrame(
        columns=_RUN_COLUMNS)


def runs(root: str | Path | None = None) -> pd.DataFrame:
    """One row per usable run folder: id, scenario, env, algorithm, seeds, status
    (running, finished, failed, interrupted), iterations, wall time, final score."""
    return _runs_frame(scan(root))


def _names(base: Path) -> list[str]:
    """Folder names in ``base`` that look like runs (for messages; no checks, no warnings)."""
    if not base.is_dir():
        return []
    return sorted(p.name for p in base.iterdir() if (p / "run.json").is_file())


def run_dir(run_id: str, root: str | Path | None = None) -> Path:
    """The folder of a usable run ``run_id``; a one-line ``ScenarioError`` if the id is not a
    plain name, the run does not exist (listing the latest runs) or its folder is unusable."""
    base = root_path(root)
    path = resolve(run_id, base)
    if not (path / "run.json").is_file():
        known = ", ".join(_names(base)[-5:]) or "none"
        raise ScenarioError(f"run {run_id!r} not found in {base}/: no such run "
                            f"(latest runs: {known})")
    _, why = _check(path, base)
    if why:
        raise ScenarioError(f"run {run_id!r} in {base}/ cannot be used: {why}")
    return path


def table_file(run_id: str, table: str, root: str | Path | None = None) -> Path | None:
    """The Parquet file of one table of a run, or None if the run has no rows in it yet."""
    if table not in TABLES:
        raise ScenarioError(f"table {table!r} is not allowed (allowed: {', '.join(TABLES)})")
    path = run_dir(run_id, root)
    return _tables(path, {})[0].get(table)


def read_table(path: Path) -> pd.DataFrame:
    """A Parquet file read through one open file (complete even if it is replaced now)."""
    with open(path, "rb") as f:
        return pd.read_parquet(f)


def load(run_id: str, table: str = "episodes", root: str | Path | None = None
         ) -> pd.DataFrame:
    """One table (``episodes``, ``agents`` or, for GTB runs, ``periods``) of one run."""
    path = table_file(run_id, table, root)
    if path is None:
        raise ScenarioError(f"run {run_id!r} has no {table} table yet (still at its start?)")
    return read_table(path)


# --------------------------------------------------------------------------- DuckDB


def _union_schema(files: list[Path]) -> pa.Schema:
    """Columns of all files by name (as DuckDB's union_by_name); a column whose types
    cannot be reconciled becomes text."""
    types: dict[str, list[pa.DataType]] = {}
    for file in files:
        for f in pq.read_schema(file):
            types.setdefault(f.name, []).append(f.type)
    fields = []
    for name, ts in types.items():
        try:
            unified = pa.unify_schemas([pa.schema([(name, t)]) for t in ts],
                                       promote_options="permissive").field(name).type
        except (pa.ArrowException, TypeError):
            unified = pa.large_string()
        fields.append(pa.field(name, unified))
    return pa.schema(fields)


def _connection(found: list[StoredRun]) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    for table in TABLES:
        files = [run.tables[table] for run in found if table in run.tables]
        if files:
            data = pads.dataset([str(f) for f in files], schema=_union_schema(files),
                                format="parquet")
        else:
            data = pa.schema(_EMPTY[table]).empty_table()
        con.register(table, data)
    con.register("runs", _runs_frame(found))
    # SQL sees the registered tables and nothing else: no files (read_csv, COPY ... TO,
    # ATTACH, EXPORT), no extensions; locked so that a query cannot switch it back
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")
    return con


def connect(root: str | Path | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with views ``episodes``, ``agents``, ``periods`` and
    ``runs`` over the usable runs (a view no run has written yet is empty). External access
    is off and the configuration locked: SQL on it reads and writes no file.

    Prefer :func:`query`: it also runs again if a run replaced a file while it read.
    """
    return _connection(scan(root))


def _stamp(found: list[StoredRun]) -> tuple:
    """Identity of every table file (inode, size, modification time; None if gone)."""
    out = []
    for run in found:
        for file in run.tables.values():
            try:
                st = os.stat(file)
                out.append((st.st_ino, st.st_size, st.st_mtime_ns))
            except OSError:
                out.append(None)
    return tuple(out)


def _quiet_scan(base: Path) -> list[StoredRun]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StoreWarning)
        return scan(base)


def _first_line(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    return lines[0] if lines else type(err).__name__


def query(sql: str, root: str | Path | None = None) -> pd.DataFrame:
    """Run SQL over all usable runs and return a DataFrame; a bad query is a one-line
    ``ScenarioError``. If a run replaced one of its files meanwhile, the query runs again,
    so the result comes from files that were all complete and unchanged while it ran."""
    if not isinstance(sql, str) or not sql.strip():
        raise ScenarioError("query: give one SQL statement, e.g. 'select * from runs'")
    base = root_path(root)
    found = scan(base)  # warns once about skipped folders
    error: BaseException | None = None
    result = None
    for attempt in range(_ATTEMPTS):
        if attempt:
            time.sleep(0.02 * attempt)
            found = _quiet_scan(base)
        before = _stamp(found)
        try:
            con = _connection(found)
            try:
                result, error = con.execute(sql).df(), None
            finally:
                con.close()
        except (duckdb.Error, pa.ArrowException, OSError) as err:
            result, error = None, err
        if _stamp(found) == before:
            break  # nothing changed underneath: the answer (or the error) is the query's
    if error is not None:
        raise ScenarioError(f"query failed: {_first_line(error)}") from None
    return result


# --------------------------------------------------------------------------- export


def out_folder(dest: str | Path, what: str = "--out") -> list[Path]:
    """Make ``dest`` a writable folder (creating it and missing parents); returns the
    folders it created (deepest first, for :func:`undo`). One-line ``ScenarioError`` naming
    ``what`` if it is a file, cannot be created (a name too long, no such place, no
    permission) or is not writable."""
    dest = Path(dest)
    shown = short(str(dest))
    created: list[Path] = []
    try:
        probe = dest
        while not (probe.exists() or probe.is_symlink()) and probe != probe.parent:
            created.append(probe)
            probe = probe.parent
        if dest.exists() and not dest.is_dir():
            raise ScenarioError(f"{what} {shown}: is not a folder (a file of that name "
                                "exists)")
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        undo([], created)
        raise ScenarioError(f"{what} {shown}: cannot be created: {err.strerror or err}") \
            from None
    if not os.access(dest, os.W_OK | os.X_OK):
        undo([], created)
        raise ScenarioError(f"{what} {shown}: is not writable")
    return created


def undo(files: list[Path], folders: list[Path]) -> None:
    """Remove ``files`` and then the empty ``folders`` (deepest first) a failed write made."""
    for file in files:
        with contextlib.suppress(OSError):
            file.unlink()
    for folder in folders:
        with contextlib.suppress(OSError):
            folder.rmdir()


def export(run_id: str, fmt: str = "csv", out: str | Path | None = None,
           root: str | Path | None = None, also: Callable[[Path], Path] | None = None
           ) -> list[Path]:
    """Write a run's tables as CSV, Parquet or Stata (``dta``) into ``out`` (default: the run
    folder's ``export/``), as ``<out>/<run_id>-<table>.<fmt>``; returns the files written.

    ``also(folder)`` writes one more file there (e.g. the data dictionary) and returns its
    path, which is added to the list. An ``out`` that is a file, cannot be created or is not
    writable, or a write that fails, is a one-line ``ScenarioError``, and nothing is left
    behind (the files written so far and the folders made are removed)."""
    if fmt not in ("csv", "parquet", "dta"):
        raise ScenarioError(f"format {fmt!r} is not allowed (allowed: csv, parquet, dta)")
    src = run_dir(run_id, root)
    tables = {t: table_file(run_id, t, root) for t in TABLES}
    missing = [t for t in REQUIRED if tables[t] is None]
    if missing:
        raise ScenarioError(f"run {run_id!r} has no {missing[0]} table yet (still at its start?)")
    dest = Path(out) if out else inside(src, "export")  # never a link out of the run
    created = out_folder(dest, "export: --out" if out else "export:")
    written: list[Path] = []
    path = dest
    try:
        for table, file in tables.items():
            if file is None:
                continue  # only economies have per-period tables
            name = f"{run_id}-{table}.{fmt}"
            path = dest / name if out else inside(dest, name)
            if path.resolve().parent != dest.resolve():  # run ids are plain names; be sure
                raise ScenarioError(f"export: {path} would be outside {dest}/")
            if fmt == "dta":  # Stata, labelled from the data dictionary
                from econsim import dictionary, stata

                data = stata.dta_bytes(read_table(file), dictionary.RUN_KINDS.get(table, table),
                                       f"econsim run {run_id} {table}")
                atomic_write(path, lambda p, data=data: p.write_bytes(data))
            else:
                write_table(path, read_table(file))
            written.append(path)
        if also is not None:
            path = dest
            written.append(also(dest))
    except OSError as err:
        undo(written, created)
        raise ScenarioError(f"export: cannot write {short(str(path))}: "
                            f"{err.strerror or err}") from None
    except BaseException:
        undo(written, created)
        raise
    return written
