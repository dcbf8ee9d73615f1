"""Query stored runs with DuckDB: every run folder's Parquet tables as one view.

>>> from econsim import store
>>> store.runs()                                   # one row per run folder
>>> store.query("select algorithm, avg(collective) from episodes "
...             "where phase = 'eval' group by 1")

The views ``episodes`` and ``agents`` union ``runs/*/episodes.parquet`` and
``runs/*/agents.parquet``; ``runs`` is the table of run manifests. Nothing needs a server.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pandas as pd

from econsim.errors import ScenarioError
from econsim.files import write_table

RUNS_DIR = Path("runs")
TABLES = ("episodes", "agents", "periods")  # periods: GTB runs only (per tax period)


def runs(root: str | Path = RUNS_DIR) -> pd.DataFrame:
    """One row per run folder: id, scenario, env, algorithm, seeds, status, wall time."""
    rows = []
    for manifest in sorted(Path(root).glob("*/run.json")):
        info = json.loads(manifest.read_text())
        final = info.pop("final_collective", None) or {}
        info["seeds"] = ",".join(str(s) for s in info.get("seeds", []))
        info["final_collective_mean"] = (sum(final.values()) / len(final)) if final else None
        rows.append(info)
    cols = ["run_id", "scenario", "env", "algorithm", "seeds", "status", "iterations_done",
            "iterations", "wall_s", "final_collective_mean", "started"]
    df = pd.DataFrame(rows)
    return df.reindex(columns=cols) if not df.empty else pd.DataFrame(columns=cols)


def run_dir(run_id: str, root: str | Path = RUNS_DIR) -> Path:
    """The folder of run ``run_id``; one-line error listing known runs if absent."""
    path = Path(root) / run_id
    if not (path / "run.json").is_file():
        known = ", ".join(runs(root).run_id.tolist()[-5:]) or "none"
        raise ScenarioError(f"run {run_id!r} not found in {root}/ (latest runs: {known})")
    return path


def load(run_id: str, table: str = "episodes", root: str | Path = RUNS_DIR) -> pd.DataFrame:
    """One table (``episodes``, ``agents`` or, for GTB runs, ``periods``) of one run."""
    if table not in TABLES:
        raise ScenarioError(f"table {table!r} is not allowed (allowed: {', '.join(TABLES)})")
    path = run_dir(run_id, root) / f"{table}.parquet"
    if not path.is_file():
        raise ScenarioError(f"run {run_id!r} has no {table} table yet (still at its start?)")
    return pd.read_parquet(path)


def connect(root: str | Path = RUNS_DIR) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with views ``episodes``, ``agents``, ``runs`` and, once
    a GTB run exists, ``periods``."""
    con = duckdb.connect()
    root = Path(root)
    for table in TABLES:
        files = sorted(str(p) for p in root.glob(f"*/{table}.parquet"))
        if files:
            con.execute(f"create view {table} as select * from "
                        f"read_parquet({files!r}, union_by_name = true)")
    con.register("runs_df", runs(root))
    con.execute("create view runs as select * from runs_df")
    return con


def query(sql: str, root: str | Path = RUNS_DIR) -> pd.DataFrame:
    """Run SQL over all stored runs and return a DataFrame."""
    con = connect(root)
    try:
        return con.execute(sql).df()
    except duckdb.Error as err:
        raise ScenarioError(f"query failed: {str(err).splitlines()[0]}") from None
    finally:
        con.close()


def export(run_id: str, fmt: str = "csv", out: str | Path | None = None,
           root: str | Path = RUNS_DIR) -> list[Path]:
    """Write a run's tables as CSV or Parquet into ``out`` (default: the run folder)."""
    if fmt not in ("csv", "parquet"):
        raise ScenarioError(f"format {fmt!r} is not allowed (allowed: csv, parquet)")
    src = run_dir(run_id, root)
    dest = Path(out) if out else src / "export"
    dest.mkdir(parents=True, exist_ok=True)
    written = []
    for table in TABLES:
        if table == "periods" and not (src / "periods.parquet").is_file():
            continue  # only economies have per-period tables
        df = load(run_id, table, root)
        path = dest / f"{run_id}-{table}.{fmt}"
        write_table(path, df)
        written.append(path)
    return written
