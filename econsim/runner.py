"""Train and evaluate a scenario: seeds, progress bar, checkpoints, resume, tidy tables.

``run(scenario)`` writes one folder per run in the runs folder (``root``; default
``$ECONSIM_RUNS`` or ``runs``)::

    runs/<run_id>/
      scenario.toml        the resolved scenario (every default written out)
      run.json             status, seeds, iterations done, wall time, final scores
      episodes.parquet     one row per seed x phase (train/eval) x logged iteration
      agents.parquet       one row per seed x phase x logged iteration x agent
      checkpoints/last.pt  trainer state, log rows and RNG states of the last checkpoint
                           (plain data, read with torch.load(weights_only=True))
      checkpoints/iteration-NNNNNNN.pt  with train.keep_every: the checkpoints kept on the
                           way (``kept_checkpoints``), for diagnostics over training
      log.jsonl            one JSON line per event (start, eval, checkpoint, finish)
      .lock                held by the process training the run (its pid inside)

Every file is written to a temporary name and renamed, so a killed run never leaves a
half-written file; ``run(..., resume=run_id)`` continues from the last checkpoint and
produces the same tables as an uninterrupted run.

A run's ``status`` in ``run.json`` is ``running``, ``finished``, ``interrupted`` (Ctrl-C,
SIGTERM; resumable) or ``failed`` (with ``error``, e.g. ``training diverged at iteration 37:
policy_loss is nan (lower the learning rates)``). Bad input, or a failure before the first
iteration, leaves no folder. While a process trains a run it holds ``.lock``, so a second
``--resume`` of it is refused.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from econsim import checkpoint, store
from econsim import scenario as scenario_mod
from econsim.errors import ScenarioError, TrainingDiverged, short
from econsim.files import (
    lock_folder,
    temp_path,
    write_table,
    write_text,
)
from econsim.scenario import Scenario

RESUMABLE = ("running", "interrupted")  # statuses `--resume` without a run id picks up
EPISODE_COLUMNS = ["run_id", "scenario", "env", "algorithm", "seed", "phase", "iteration",
                   "episodes", "epsilon", "collective", "length"]



@dataclass
class RunResult:
    """What a run produced; tables are loaded from the run folder."""

    run_id: str
    path: Path
    scenario: Scenario
    seeds: list[int]
    wall_s: float
    trainer: Any = field(repr=False, default=None)

    @property
    def episodes(self) -> pd.DataFrame:
        return store.read_table(store.inside(self.path, "episodes.parquet"))

    @property
    def agents(self) -> pd.DataFrame:
        return store.read_table(store.inside(self.path, "agents.parquet"))

    def final(self) -> pd.DataFrame:
        """Last evaluation per seed: collective return and per-agent returns."""
        ev = self.episodes.query("phase == 'eval'")
        return ev[ev.iteration == ev.iteration.max()].reset_index(drop=True)


class _Log:
    """Accumulates per-iteration metrics into windowed rows (tidy, long format)."""

    def __init__(self, run_id: str, scenario: Scenario, seeds: list[int], kinds: list[str],
                 action_names: tuple[str, ...]) -> None:
        self.meta = {"run_id": run_id, "scenario": scenario.name, "env": scenario.env_name,
                     "algorithm": scenario.algorithm_name}
        self.seeds, self.kinds, self.action_names = seeds, kinds, action_names
        self.episode_rows: list[dict] = []
        self.agent_rows: list[dict] = []
        self.window: list[dict[str, np.ndarray]] = []
        self.tables: dict[str, list[dict]] = {}

    def add_train(self, metrics: dict[str, np.ndarray]) -> None:
        self.window.append(metrics)

    def flush_train(self, iteration: int, epsilon: float, episodes_per_it: int) -> None:
        if not self.window:
            return
        mean = {k: np.mean([m[k] for m in self.window], axis=0) for k in self.window[0]}
        self._rows("train", iteration, mean, len(self.window) * episodes_per_it, epsilon)
        self.window = []

    def add_eval(self, iteration: int, metrics: dict[str, np.ndarray], episodes: int) -> None:
        self._rows("eval", iteration, metrics, episodes, 0.0)

    def _rows(self, phase: str, iteration: int, m: dict[str, np.ndarray], episodes: int,
              eps: float) -> None:
        per_world = [k for k, v in m.items() if v.ndim == 1]  # collective, length, game extras
        per_agent = [k for k, v in m.items() if v.ndim == 2]  # return, incentives, actions...
        for r, seed in enumerate(self.seeds):
            self.episode_rows.append({
                **self.meta, "seed": seed, "phase": phase, "iteration": iteration,
                "episodes": episodes, "epsilon": eps, **{k: float(m[k][r]) for k in per_world},
            })
            for i, kind in enumerate(self.kinds):
                row = {**self.meta, "seed": seed, "phase": phase, "iteration": iteration,
                       "agent": i, "kind": kind}
                row.update({k: float(m[k][r, i]) for k in per_agent})
                self.agent_rows.append(row)

    def add_tables(self, iteration: int, tables: dict[str, pd.DataFrame]) -> None:
        """Detail tables of an evaluation (e.g. GTB's per-period rows), ``replica`` -> seed."""
        for name, df in tables.items():
            df = df.copy()
            seed = np.asarray(self.seeds)[df.pop("replica").to_numpy()]
            front = {**self.meta, "seed": seed, "phase": "eval", "iteration": iteration}
            for j, (k, v) in enumerate(front.items()):
                df.insert(j, k, v)
            self.tables.setdefault(name, []).extend(df.to_dict("records"))

    def state(self) -> dict:
        return {"episodes": self.episode_rows, "agents": self.agent_rows, "window": self.window,
                "tables": self.tables}

    def restore(self, state: Any) -> None:
        """The log of a checkpoint (see :meth:`state`); ``ValueError`` (one line) if it is not
        one of this run: rows must be tables of plain values, the window's metrics arrays of
        one row per seed (and one column per agent), detail tables only known ones."""
        if not isinstance(state, dict):
            raise ValueError(f"log is a {type(state).__name__}, not a table")
        episodes = _plain_rows(state.get("episodes"), "log.episodes")
        agents = _plain_rows(state.get("agents"), "log.agents")
        window = state.get("window")
        if not isinstance(window, list):
            raise ValueError("log.window is not a list")
        for i, metrics in enumerate(window):
            if not isinstance(metrics, dict) or not all(isinstance(k, str) for k in metrics):
                raise ValueError(f"log.window[{i}] is not a table of metrics")
            if set(metrics) != set(window[0]):
                raise ValueError(f"log.window[{i}] has other metrics than log.window[0]")
            for key, value in metrics.items():
                ok = (isinstance(value, np.ndarray) and value.dtype.kind in "biuf"
                      and value.ndim in (1, 2) and value.shape[0] == len(self.seeds)
                      and (value.ndim == 1 or value.shape[1] == len(self.kinds))
                      and value.shape == window[0][key].shape)
                if not ok:
                    raise ValueError(f"log.window[{i}].{short(key, 60)} is not an array of "
                                     "one row per seed (and one column per agent)")
        tables = state.get("tables", {})
        if not isinstance(tables, dict):
            raise ValueError("log.tables is not a table")
        extra = [t for t in store.TABLES if t not in ("episodes", "agents")]
        for name in tables:
            if name not in extra:
                raise ValueError(f"log.tables: {short(repr(name), 60)} is not allowed "
                                 f"(allowed: {', '.join(extra)})")
        tables = {name: _plain_rows(rows, f"log.tables.{name}")
                  for name, rows in tables.items()}
        self.episode_rows, self.agent_rows, self.window = episodes, agents, window
        self.tables = tables

    def frames(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        ep = pd.DataFrame(self.episode_rows)
        ep = ep.reindex(columns=EPISODE_COLUMNS + [c for c in ep.columns
                                                   if c not in EPISODE_COLUMNS])
        ag = pd.DataFrame(self.agent_rows)
        return ep, ag

    def extra_frames(self) -> dict[str, pd.DataFrame]:
        return {name: pd.DataFrame(rows) for name, rows in self.tables.items()}


def _plain_rows(rows: Any, where: str) -> list[dict]:
    """``rows`` if it is a list of tables of plain values (text, numbers, booleans, None),
    else a one-line ``ValueError`` naming ``where``."""
    if not isinstance(rows, list):
        raise ValueError(f"{where} is not a list of rows")
    for i, row in enumerate(rows):
        if not isinstance(row, dict) or not all(
                isinstance(k, str) and (v is None or isinstance(v, str | int | float | bool))
                for k, v in row.items()):
            raise ValueError(f"{where}[{i}] is not a row of plain values")
    return rows


def load_result(run_id: str, root: str | Path | None = None) -> RunResult:
    """The ``RunResult`` of a stored run (tables read from its folder; no trainer)."""
    path = store.run_dir(run_id, root)
    info = json.loads(store.inside(path, "run.json").read_text())
    wall = info.get("wall_s", 0.0)
    return RunResult(run_id, path, scenario_mod.load(store.inside(path, "scenario.toml")),
                     stored_seeds(run_id, info),
                     float(wall) if isinstance(wall, int | float) else 0.0)


def kept_checkpoints(result: RunResult) -> dict[int, Path]:
    """The checkpoints a stored run kept on the way (``train.keep_every``): iteration ->
    file, by iteration; empty if it kept none."""
    folder = store.inside(result.path, "checkpoints")
    if not folder.is_dir():
        return {}
    found = {}
    for p in folder.iterdir():
        it = store.kept_iteration(p.name)
        if it is not None and not p.is_symlink():
            found[it] = store.inside(folder, p.name)
    return dict(sorted(found.items()))


def new_run_id(scenario: Scenario) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return f"{scenario.name}-{stamp}-{secrets.token_hex(2)}"


def _as_scenario(scenario: Scenario | str | Path) -> Scenario:
    return scenario if isinstance(scenario, Scenario) else scenario_mod.load(scenario)


def _started(info: dict[str, Any]) -> datetime:
    """When a run started (``run.json``'s ``started``); the earliest time if unreadable."""
    try:
        when = datetime.fromisoformat(str(info.get("started")))
    except ValueError:
        return datetime.min.replace(tzinfo=UTC)
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def latest_unfinished(name: str, root: str | Path | None = None) -> str | None:
    """The newest run (by its ``started`` time; ties by run id) of scenario ``name`` that
    stopped before finishing (status running or interrupted; failed runs are resumed only
    by naming them), for ``--resume``."""
    found = [run for run in store.scan(root)
             if run.info.get("scenario") == name and run.info.get("status") in RESUMABLE]
    if not found:
        return None
    return max(found, key=lambda run: (_started(run.info), run.run_id)).run_id


def stored_seeds(run_id: str, info: dict[str, Any]) -> list[int]:
    """The seeds in a run's ``run.json`` (``info``), checked like any seeds
    (``scenario.check_seeds``); one-line ``ScenarioError`` naming the run if they are
    missing or not allowed."""
    if "seeds" not in info:
        raise ScenarioError(f"run {run_id!r}: run.json: seeds: required field is missing")
    try:
        return scenario_mod.check_seeds(info["seeds"])
    except ScenarioError as err:
        raise ScenarioError(f"run {run_id!r}: run.json: {err}") from None


def _stored_iterations(run_id: str, info: dict[str, Any]) -> int:
    """The budget in a run's ``run.json``, checked like ``--iterations``."""
    if info.get("iterations") is None:
        raise ScenarioError(f"run {run_id!r}: run.json: iterations: required field is missing")
    try:
        return scenario_mod.check_iterations(info["iterations"])
    except ScenarioError as err:
        raise ScenarioError(f"run {run_id!r}: run.json: {err}") from None


def run(scenario: Scenario | str | Path, *, seeds: list[int] | None = None,
        progress: bool | Callable[[int, int], None] = True, root: str | Path | None = None,
        run_id: str | None = None, resume: str | bool | None = None,
        iterations: int | None = None, fork: tuple[str, int] | None = None,
        threads: int | None = 1) -> RunResult:
    """Train ``scenario`` for every seed (vectorised replicas) and write ``<root>/<run_id>/``.

    ``root``: the runs folder (default: ``$ECONSIM_RUNS`` or ``runs``). ``resume`` = a run id
    (or True: the newest interrupted run of this scenario) continues that run from its last
    checkpoint. ``fork`` = (run id, iteration): a new run that starts from the checkpoint a
    stored run in ``root`` kept at that iteration (``train.keep_every``), with this
    scenario's settings from there on (what if the exploration, the cost or a tax changed
    at that point?; the optimisers keep their moments but take this scenario's learning
    rates, a cost schedule its own weight): same seeds (default: the stored run's), a
    trainer whose state fits, the iterations counted on from the fork, the tables holding
    the new iterations only (the first training row averages the iterations since the
    fork) and ``run.json`` naming the fork (``forked_from``). ``iterations`` overrides
    ``train.iterations``. ``threads``: torch intra-op
    threads while training (restored afterwards). The networks are small, so one thread is
    fastest and keeps parallel runs from starving each other; ``None`` leaves torch's
    setting alone. ``progress``: a tqdm bar (True), none (False), or a callable given
    ``(iterations done, total)`` after every iteration (e.g. an app's progress bar).

    Bad input raises a one-line ``ScenarioError`` before anything is written. Training that
    produces a non-finite number raises ``TrainingDiverged``; it, any other error and an
    interruption are recorded in ``run.json`` (status ``failed`` with the error, or
    ``interrupted``), so a run is never left ``running`` by a process that stopped.
    """
    iterations = scenario_mod.check_iterations(iterations)
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        root = store.check_root(root)
        if resume and fork:
            raise ScenarioError("fork: a new run; it cannot also resume one")
        setup = (_resume(scenario, root, resume, iterations) if resume
                 else _start(scenario, seeds, root, run_id, iterations, fork))
        try:
            return _train(setup, progress)
        finally:
            setup.lock.close()
    finally:
        torch.set_num_threads(before)


@dataclass
class _Setup:
    """Everything a run needs before its first iteration (the folder exists and is locked)."""

    run_id: str
    path: Path
    scenario: Scenario
    seeds: list[int]
    total: int
    trainer: Any
    log: _Log
    manifest: dict[str, Any]
    lock: IO[str]
    resumed: bool
    elapsed_before: float = 0.0


def _manifest(run_id: str, scenario: Scenario, seeds: list[int], total: int) -> dict[str, Any]:
    return {"run_id": run_id, "scenario": scenario.name, "env": scenario.env_name,
            "algorithm": scenario.algorithm_name, "seeds": seeds, "iterations": total,
            "status": "running", "started": datetime.now(UTC).isoformat(timespec="seconds"),
            "iterations_done": 0, "wall_s": 0.0}


def _start(scenario: Scenario | str | Path, seeds: list[int] | None, root: Path,
           run_id: str | None, iterations: int | None,
           fork: tuple[str, int] | None = None) -> _Setup:
    """Validate a new run (``fork``: from a kept checkpoint, see :func:`run`) and make its
    folder, complete (scenario.toml, run.json) and locked, or nothing at all."""
    scenario = _as_scenario(scenario)
    source = _fork_source(fork, root) if fork else None
    if source is not None and seeds is None:
        seeds = source[0].seeds
    seeds = scenario_mod.check_seeds(scenario.seeds if seeds is None else seeds)
    run_id = store.check_run_id(new_run_id(scenario) if run_id is None else run_id)
    path = store.resolve(run_id, root)
    if path.exists() or path.is_symlink():
        raise ScenarioError(f"run id {run_id!r} already exists in {root}/")
    total = scenario_mod.budget(scenario, iterations)  # 0 is refused, not replaced
    scenario_mod.check_size(scenario, seeds)  # the seeds of this run, not only the file's
    trainer = scenario.make_trainer(seeds)  # may raise before anything is written
    log = _Log(run_id, scenario, seeds, trainer.kinds, trainer.game.action_names)
    manifest = _manifest(run_id, scenario, seeds, total)
    if source is not None:
        manifest["forked_from"] = _restore_fork(source, trainer, seeds, total)
        manifest["iterations_done"] = trainer.iteration
    lock = _create_folder(path, scenario, manifest)
    return _Setup(run_id, path, scenario, seeds, total, trainer, log, manifest, lock, False)


def _fork_source(fork: Any, root: Path) -> tuple[RunResult, int, Path]:
    """The stored run, iteration and kept checkpoint file a fork starts from; one-line
    ``ScenarioError`` naming what is missing (and the iterations the run kept)."""
    if (not isinstance(fork, tuple | list) or len(fork) != 2 or not isinstance(fork[0], str)
            or isinstance(fork[1], bool) or not isinstance(fork[1], int)):
        raise ScenarioError(f"fork: {short(repr(fork), 60)} is not (run id, iteration)")
    rid, iteration = fork
    try:
        source = load_result(rid, root)
    except ScenarioError as err:
        raise ScenarioError(f"fork: {err}") from None
    except (OSError, ValueError) as err:  # an unreadable run.json or scenario
        raise ScenarioError(f"fork: run {short(rid, 60)!r} in {root}/ cannot be read: "
                            f"{short(str(err), 200)}") from None
    kept = kept_checkpoints(source)
    if iteration not in kept:
        have = ", ".join(map(str, kept)) if kept else "none (train.keep_every was 0)"
        raise ScenarioError(f"fork: run {rid!r} kept no checkpoint at iteration {iteration} "
                            f"(kept: {short(have, 200)})")
    return source, iteration, kept[iteration]


def _restore_fork(source: tuple[RunResult, int, Path], trainer: Any, seeds: list[int],
                  total: int) -> dict[str, Any]:
    """Put the kept checkpoint's trainer state into ``trainer`` (not its log: the fork's
    tables start empty); what ``run.json`` records of the fork."""
    result, iteration, path = source
    if list(seeds) != list(result.seeds):
        raise ScenarioError(f"fork: seeds {list(seeds)} are not the stored run's "
                            f"{list(result.seeds)} (a checkpoint holds all of them)")
    if total <= iteration:
        raise ScenarioError(f"fork: the budget ({total} iterations) must go beyond the fork's "
                            f"iteration {iteration}")
    settings = {where: [{k: v for k, v in g.items() if k != "params"} for g in opt.param_groups]
                for where, opt in _optimizers(trainer).items()}
    try:
        checkpoint.restore_file(trainer, path)  # refuses a trainer of other sizes
    except ScenarioError as err:
        raise ScenarioError(f"fork: {err}") from None
    for where, opt in _optimizers(trainer).items():  # the fork's rates, not the stored ones
        for group, own in zip(opt.param_groups, settings.get(where, []), strict=False):
            group.update(own)
    return {"run_id": result.run_id, "iteration": iteration}


_LEARNER_PACKAGES = ("learners.", "mechanisms.")


def _optimizers(obj: Any, where: str = "trainer", depth: int = 0) -> dict[str, Any]:
    """Every torch optimiser a trainer holds, by attribute path, in its components (objects
    of the learners and mechanisms packages, lists of them): a checkpoint restores them with
    the stored run's learning rates, which a fork replaces with its own scenario's."""
    found: dict[str, Any] = {}
    if isinstance(obj, torch.optim.Optimizer):
        return {where: obj}
    if depth > 4:
        return found
    if isinstance(obj, list | tuple):
        for i, item in enumerate(obj):
            found.update(_optimizers(item, f"{where}[{i}]", depth + 1))
    elif type(obj).__module__.startswith(_LEARNER_PACKAGES) and hasattr(obj, "__dict__"):
        for name, value in vars(obj).items():
            found.update(_optimizers(value, f"{where}.{name}", depth + 1))
    return found


def _create_folder(path: Path, scenario: Scenario, manifest: dict[str, Any]) -> IO[str]:
    """Write the run's first files in a hidden temporary folder, lock it and rename it into
    place, so readers never see a half-made run and a failure leaves nothing behind."""
    made_root = not path.parent.exists()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ScenarioError(f"runs folder {short(str(path.parent))}: cannot be created: "
                            f"{err.strerror or err}") from None
    tmp = temp_path(path)
    lock = None
    try:
        if tmp.is_symlink():
            tmp.unlink()  # not ours: never create the run through it
        shutil.rmtree(tmp, ignore_errors=True)  # our own leftover (same pid), if any
        try:
            tmp.mkdir()
        except OSError as err:
            raise ScenarioError(f"runs folder {short(str(path.parent))}: cannot be written: "
                                f"{err.strerror or err}") from None
        lock = lock_folder(tmp, f"run {path.name!r}")
        write_text(tmp / "scenario.toml", scenario.to_toml())
        write_text(tmp / "run.json", json.dumps(manifest, indent=2))
        try:
            os.rename(tmp, path)
        except OSError:
            raise ScenarioError(f"run id {path.name!r} already exists in {path.parent}/") \
                from None
    except BaseException:
        if lock is not None:
            lock.close()
        shutil.rmtree(tmp, ignore_errors=True)
        if made_root:
            with contextlib.suppress(OSError):
                path.parent.rmdir()  # only if still empty
        raise
    return lock


def _resume(scenario: Scenario | str | Path, root: Path, resume: str | bool,
            iterations: int | None) -> _Setup:
    """Lock a stored run and restore its trainer and log from the last checkpoint."""
    rid = resume if isinstance(resume, str) else latest_unfinished(
        _as_scenario(scenario).name, root)
    if rid is None:
        raise ScenarioError(f"resume: no unfinished run to resume (none found in {root}/)")
    path = store.run_dir(rid, root)  # a plain name, inside root, a usable run, no links
    if not store.inside(path, "scenario.toml").is_file():
        raise ScenarioError(f"resume: run {rid!r} has no scenario.toml in {path}/")
    lock = lock_folder(path, f"run {rid!r}")
    try:
        store.clean(path, min_age_s=0)  # we hold the lock: any leftover of ours is stale
        sc = scenario_mod.load(store.inside(path, "scenario.toml"))
        info = json.loads(store.inside(path, "run.json").read_text())
        seeds = stored_seeds(rid, info)
        # the run's own budget unless --iterations is given (with or without a checkpoint)
        total = _stored_iterations(rid, info) if iterations is None else iterations
        scenario_mod.check_size(sc, seeds)
        trainer = sc.make_trainer(seeds)
        log = _Log(rid, sc, seeds, trainer.kinds, trainer.game.action_names)
        manifest = _manifest(rid, sc, seeds, total)
        if isinstance(info.get("started"), str):
            manifest["started"] = info["started"]  # the run keeps its place in time
        elapsed = 0.0
        ckpt_path = store.inside(path, "checkpoints", "last.pt")
        if ckpt_path.is_file():
            ckpt = checkpoint.restore_file(trainer, ckpt_path)
            try:
                log.restore(ckpt["log"])
                elapsed = checkpoint.wall_seconds(ckpt["wall_s"])
            except Exception as err:  # any content that is not this run's
                raise checkpoint.mismatch(ckpt_path, err) from None
            manifest.update(info, status="running", seeds=seeds, iterations=total)
            manifest.pop("error", None)
        else:
            write_text(store.inside(path, "scenario.toml"), sc.to_toml())
            fork = info.get("forked_from")
            if isinstance(fork, dict):  # stopped before its first checkpoint: fork again
                source = _fork_source((fork.get("run_id"), fork.get("iteration")), root)
                manifest["forked_from"] = _restore_fork(source, trainer, seeds, total)
                manifest["iterations_done"] = trainer.iteration
    except BaseException:
        lock.close()
        raise
    return _Setup(rid, path, sc, seeds, total, trainer, log, manifest, lock, True, elapsed)


def _nonfinite(value: Any) -> str | None:
    """``"nan"`` or ``"inf"`` if a number or array holds one, else None."""
    if isinstance(value, torch.Tensor):
        if not value.dtype.is_floating_point or bool(torch.isfinite(value).all()):
            return None
        return "nan" if bool(torch.isnan(value).any()) else "inf"
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError):
        return None
    if arr.dtype.kind not in "fc" or np.isfinite(arr).all():
        return None
    return "nan" if np.isnan(arr).any() else "inf"


def first_nonfinite(state: Any, prefix: str = "") -> tuple[str, str] | None:
    """``(dotted name, "nan" | "inf")`` of the first non-finite float tensor, array or number
    in a (nested) state dict, or None if every one is finite."""
    if isinstance(state, dict):
        items = state.items()
    elif isinstance(state, list | tuple):
        items = enumerate(state)
    else:
        bad = _nonfinite(state) if isinstance(state, torch.Tensor | np.ndarray | float) \
            else None
        return (prefix, bad) if bad else None
    for key, value in items:
        found = first_nonfinite(value, f"{prefix}.{key}" if prefix else str(key))
        if found:
            return found
    return None


def _params_nonfinite(trainer: Any) -> tuple[str, str] | None:
    """:func:`first_nonfinite` of the trainer's state, or None if it cannot be read."""
    try:
        return first_nonfinite(trainer.state_dict())
    except Exception:  # the trainer is broken: report the original error instead
        return None


def _guarded(trainer: Any, call: Callable[[], Any], iteration: int) -> Any:
    """``call()``; an error it raises while the trainer holds a NaN or inf becomes the
    divergence it is (NaN parameters often surface as a sampling error)."""
    try:
        return call()
    except Exception as err:
        found = _params_nonfinite(trainer)
        if found:
            raise _diverged(iteration, f"parameter {found[0]}", found[1]) from err
        raise


def _diverged(iteration: int, what: str, kind: str) -> TrainingDiverged:
    return TrainingDiverged(f"training diverged at iteration {iteration}: {what} is {kind} "
                            "(lower the learning rates)")


class _Watch:
    """Stops training on non-finite numbers: the metrics of every iteration and evaluation,
    and the trainer's tensors (its ``state_dict``) at every checkpoint (the state about to be
    saved) and, between them, as often as costs at most ``BUDGET`` of the training time (a
    trainer with large replay buffers is not re-read at every log or evaluation step)."""

    BUDGET = 0.02

    def __init__(self, trainer: Any) -> None:
        self.trainer = trainer
        self.cost = 0.0  # seconds the last parameter check took
        self.last = time.perf_counter()

    def metrics(self, iteration: int, metrics: dict[str, Any], what: str = "") -> None:
        for key, value in metrics.items():
            kind = _nonfinite(value)
            if kind:
                raise _diverged(iteration, f"{what}{key}", kind)

    def params(self, iteration: int, state: dict | None = None) -> None:
        """Check the trainer's tensors if the budget allows, or ``state`` (its state dict,
        read once for a checkpoint) always."""
        now = time.perf_counter()
        if state is None and (now - self.last) * self.BUDGET < self.cost:
            return
        found = first_nonfinite(self.trainer.state_dict() if state is None else state)
        self.last = time.perf_counter()
        self.cost = self.last - now
        if found:
            raise _diverged(iteration, f"parameter {found[0]}", found[1])


def _one_line(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    text = lines[0] if lines else ""
    return text if isinstance(err, ValueError) and text else f"{type(err).__name__}: {text}"


def _train(setup: _Setup, progress: bool | Callable[[int, int], None]) -> RunResult:
    """The training loop of a prepared run; records how it ended in ``run.json``."""
    trainer, log, manifest, run_dir = setup.trainer, setup.log, setup.manifest, setup.path
    scenario, total, tr = setup.scenario, setup.total, setup.scenario.train
    t0 = time.perf_counter()

    def save_tables() -> None:
        ep, ag = log.frames()
        frames = {"episodes": ep, "agents": ag, **log.extra_frames()}
        for name, df in frames.items():
            if len(df):  # a table with no rows yet is not written
                write_table(store.inside(run_dir, f"{name}.parquet"), df)

    def save_manifest(status: str, **extra: Any) -> None:
        manifest.update(status=status, iterations_done=trainer.iteration,
                        wall_s=round(setup.elapsed_before + time.perf_counter() - t0, 2),
                        **extra)
        write_text(store.inside(run_dir, "run.json"), json.dumps(manifest, indent=2))

    try:
        _event(run_dir, "resume" if setup.resumed else "start", iteration=trainer.iteration)
        save_manifest("running")
    except BaseException:
        if not setup.resumed:
            shutil.rmtree(run_dir, ignore_errors=True)  # nothing happened yet: leave nothing
        raise
    watch = _Watch(trainer)
    report = progress if callable(progress) else None
    bar = tqdm(total=total, initial=trainer.iteration, disable=report is not None or not progress,
               desc=scenario.name, unit="it", dynamic_ncols=True)
    recent: list[float] = []
    try:
        while trainer.iteration < total:
            eps = trainer.epsilon()
            metrics = _guarded(trainer, trainer.iterate, trainer.iteration + 1)
            it = trainer.iteration
            watch.metrics(it, metrics)
            log_step = it % tr.log_every == 0 or it == total
            eval_step = it % tr.eval_every == 0 or it == total
            keep_step = tr.keep_every > 0 and it % tr.keep_every == 0
            ckpt_step = it % tr.checkpoint_every == 0 or it == total or keep_step
            if not ckpt_step:
                watch.params(it)
            log.add_train(metrics)
            recent.append(float(metrics["collective"].mean()))
            if log_step:
                log.flush_train(it, eps, trainer.cfg.batch)
                bar.set_postfix(ret=f"{np.mean(recent):.2f}", eps=f"{eps:.2f}")
                recent = []
            if eval_step:
                ev = _guarded(trainer, lambda: trainer.evaluate(tr.eval_episodes), it)
                tables = ev.pop("_tables", {})
                watch.metrics(it, ev, "evaluation ")
                log.add_tables(it, tables)
                log.add_eval(it, ev, tr.eval_episodes)
                _event(run_dir, "eval", iteration=it,
                       collective=[round(float(x), 4) for x in ev["collective"]])
            if ckpt_step:
                wall = setup.elapsed_before + time.perf_counter() - t0
                state = {"trainer": trainer.state_dict(), "log": log.state(), "wall_s": wall}
                watch.params(it, state["trainer"])  # no checkpoint holds a NaN
                if keep_step:  # first: a kill between the two leaves nothing to redo unkept
                    checkpoint.save(store.inside(run_dir, "checkpoints", store.kept_name(it)),
                                    state)
                checkpoint.save(store.inside(run_dir, "checkpoints", "last.pt"), state)
                save_tables()
                save_manifest("running")
                _event(run_dir, "checkpoint", iteration=it)
            bar.update(1)
            if report is not None:
                report(trainer.iteration, total)
        # the final tables and status are part of the run: an error or a signal while they
        # are written is recorded like one during training, never leaving "running"
        save_tables()
        final = log.frames()[0].query("phase == 'eval'")
        manifest["final_collective"] = {
            str(s): float(v) for s, v in
            final[final.iteration == final.iteration.max()].set_index("seed").collective.items()}
        save_manifest("finished")
    except (KeyboardInterrupt, SystemExit):
        _record(save_manifest, run_dir, trainer.iteration, "interrupted")
        raise
    except BaseException as err:
        _record(save_manifest, run_dir, trainer.iteration, "failed", error=_one_line(err))
        raise
    finally:
        bar.close()
    with contextlib.suppress(Exception):  # run.json says finished; the event is a courtesy
        _event(run_dir, "finish", iteration=trainer.iteration, wall_s=manifest["wall_s"])
    return RunResult(setup.run_id, run_dir, scenario, setup.seeds, manifest["wall_s"], trainer)


def _record(save_manifest: Any, run_dir: Path, iteration: int, status: str,
            **extra: Any) -> None:
    """Write how a run ended (``interrupted`` or ``failed``) to ``run.json``, once more if a
    second signal (Ctrl-C, SIGTERM) interrupts the first attempt, then the event; an error
    while doing so never hides the one being recorded."""
    for _ in range(2):
        try:
            save_manifest(status, **extra)
            break
        except KeyboardInterrupt:
            continue
        except Exception:
            break
    with contextlib.suppress(Exception):
        _event(run_dir, status, iteration=iteration, **extra)


def _event(run_dir: Path, kind: str, **fields) -> None:
    """Append one JSON line to ``log.jsonl`` (append-only; each line is complete; never
    through a symbolic link)."""
    line = json.dumps({"time": datetime.now(UTC).isoformat(timespec="seconds"),
                       "event": kind, **fields})
    path = store.inside(run_dir, "log.jsonl")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "a") as f:
        f.write(line + "\n")
