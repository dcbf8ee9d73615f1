"""Train and evaluate a scenario: seeds, progress bar, checkpoints, resume, tidy tables.

``run(scenario)`` writes one folder per run::

    runs/<run_id>/
      scenario.toml        the resolved scenario (every default written out)
      run.json             status, seeds, iterations done, wall time, final scores
      episodes.parquet     one row per seed x phase (train/eval) x logged iteration
      agents.parquet       one row per seed x phase x logged iteration x agent
      checkpoints/last.pt  trainer state, log rows and RNG states of the last checkpoint
      log.jsonl            one JSON line per event (start, eval, checkpoint, finish)

Every file is written to a temporary name and renamed, so a killed run never leaves a
half-written file; ``run(..., resume=run_id)`` continues from the last checkpoint and
produces the same tables as an uninterrupted run.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from econsim import scenario as scenario_mod
from econsim.errors import ScenarioError
from econsim.files import atomic_write, write_table, write_text
from econsim.scenario import Scenario

RUNS_DIR = Path("runs")
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
        return pd.read_parquet(self.path / "episodes.parquet")

    @property
    def agents(self) -> pd.DataFrame:
        return pd.read_parquet(self.path / "agents.parquet")

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

    def restore(self, state: dict) -> None:
        self.episode_rows, self.agent_rows = state["episodes"], state["agents"]
        self.window = state["window"]
        self.tables = state.get("tables", {})

    def frames(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        ep = pd.DataFrame(self.episode_rows)
        ep = ep.reindex(columns=EPISODE_COLUMNS + [c for c in ep.columns
                                                   if c not in EPISODE_COLUMNS])
        ag = pd.DataFrame(self.agent_rows)
        return ep, ag

    def extra_frames(self) -> dict[str, pd.DataFrame]:
        return {name: pd.DataFrame(rows) for name, rows in self.tables.items()}


def load_result(run_id: str, root: str | Path = RUNS_DIR) -> RunResult:
    """The ``RunResult`` of a stored run (tables read from its folder; no trainer)."""
    from econsim import store

    path = store.run_dir(run_id, root)
    info = json.loads((path / "run.json").read_text())
    return RunResult(run_id, path, scenario_mod.load(path / "scenario.toml"),
                     list(info["seeds"]), float(info.get("wall_s", 0.0)))


def new_run_id(scenario: Scenario) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return f"{scenario.name}-{stamp}-{secrets.token_hex(2)}"


def _as_scenario(scenario: Scenario | str | Path) -> Scenario:
    return scenario if isinstance(scenario, Scenario) else scenario_mod.load(scenario)


def latest_unfinished(name: str, root: Path = RUNS_DIR) -> str | None:
    """The newest run of scenario ``name`` that did not finish (for ``--resume``)."""
    best = None
    for manifest in sorted(root.glob("*/run.json")):
        info = json.loads(manifest.read_text())
        if info.get("scenario") == name and info.get("status") != "finished":
            best = info["run_id"]
    return best


def run(scenario: Scenario | str | Path, *, seeds: list[int] | None = None,
        progress: bool = True, root: str | Path = RUNS_DIR, run_id: str | None = None,
        resume: str | bool | None = None, iterations: int | None = None,
        threads: int | None = 1) -> RunResult:
    """Train ``scenario`` for every seed (vectorised replicas) and write ``runs/<run_id>/``.

    ``resume`` = a run id (or True: the newest unfinished run of this scenario) continues
    that run from its last checkpoint. ``iterations`` overrides ``train.iterations``.
    ``threads``: torch intra-op threads while training (restored afterwards). The networks
    are small, so one thread is fastest and keeps parallel runs from starving each other;
    ``None`` leaves torch's setting alone.
    """
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        return _run(scenario, seeds, progress, Path(root), run_id, resume, iterations)
    finally:
        torch.set_num_threads(before)


def _run(scenario: Scenario | str | Path, seeds: list[int] | None, progress: bool, root: Path,
         run_id: str | None, resume: str | bool | None, iterations: int | None) -> RunResult:
    if resume:
        rid = resume if isinstance(resume, str) else latest_unfinished(
            _as_scenario(scenario).name, root)
        if rid is None or not (root / rid / "scenario.toml").is_file():
            raise ScenarioError(f"resume: no unfinished run to resume ({rid or 'none found'} "
                                f"in {root}/)")
        run_dir = root / rid
        scenario = scenario_mod.load(run_dir / "scenario.toml")
        info = json.loads((run_dir / "run.json").read_text())
        seeds, run_id = info["seeds"], rid
    else:
        scenario = _as_scenario(scenario)
        seeds = list(seeds or scenario.seeds)
        if len(set(seeds)) != len(seeds) or any(s < 0 for s in seeds):
            raise ScenarioError(f"seeds: {seeds} is not allowed: seeds must be distinct and >= 0")
        run_id = run_id or new_run_id(scenario)
        run_dir = root / run_id
        if run_dir.exists():
            raise ScenarioError(f"run id {run_id!r} already exists in {root}/")
    total = scenario_mod.budget(scenario, iterations)  # 0 is refused, not replaced
    trainer = scenario.make_trainer(seeds)  # may raise before anything is written
    game = trainer.game
    log = _Log(run_id, scenario, seeds, trainer.kinds, game.action_names)
    ckpt_path = run_dir / "checkpoints" / "last.pt"
    manifest: dict[str, Any] = {
        "run_id": run_id, "scenario": scenario.name, "env": scenario.env_name,
        "algorithm": scenario.algorithm_name, "seeds": seeds, "iterations": total,
        "status": "running", "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "iterations_done": 0, "wall_s": 0.0,
    }
    elapsed_before = 0.0
    if resume and ckpt_path.is_file():
        ckpt = torch.load(ckpt_path, weights_only=False)
        trainer.load_state_dict(ckpt["trainer"])
        log.restore(ckpt["log"])
        elapsed_before = ckpt["wall_s"]
        manifest.update(info, status="running")
        total = iterations if iterations is not None else info["iterations"]
    else:
        run_dir.mkdir(parents=True, exist_ok=bool(resume))
        write_text(run_dir / "scenario.toml", scenario.to_toml())
    _event(run_dir, "resume" if resume else "start", iteration=trainer.iteration)
    tr = scenario.train
    t0 = time.perf_counter()

    def save_tables() -> None:
        ep, ag = log.frames()
        write_table(run_dir / "episodes.parquet", ep)
        write_table(run_dir / "agents.parquet", ag)
        for name, df in log.extra_frames().items():
            write_table(run_dir / f"{name}.parquet", df)

    def save_manifest(status: str) -> None:
        manifest.update(status=status, iterations_done=trainer.iteration,
                        wall_s=round(elapsed_before + time.perf_counter() - t0, 2))
        write_text(run_dir / "run.json", json.dumps(manifest, indent=2))

    save_manifest("running")
    bar = tqdm(total=total, initial=trainer.iteration, disable=not progress,
               desc=scenario.name, unit="it", dynamic_ncols=True)
    recent: list[float] = []
    while trainer.iteration < total:
        eps = trainer.epsilon()
        metrics = trainer.iterate()
        it = trainer.iteration
        log.add_train(metrics)
        recent.append(float(metrics["collective"].mean()))
        if it % tr.log_every == 0 or it == total:
            log.flush_train(it, eps, trainer.cfg.batch)
            bar.set_postfix(ret=f"{np.mean(recent):.2f}", eps=f"{eps:.2f}")
            recent = []
        if it % tr.eval_every == 0 or it == total:
            ev = trainer.evaluate(tr.eval_episodes)
            log.add_tables(it, ev.pop("_tables", {}))
            log.add_eval(it, ev, tr.eval_episodes)
            _event(run_dir, "eval", iteration=it,
                   collective=[round(float(x), 4) for x in ev["collective"]])
        if it % tr.checkpoint_every == 0 or it == total:
            wall = elapsed_before + time.perf_counter() - t0
            state = {"trainer": trainer.state_dict(), "log": log.state(), "wall_s": wall}
            atomic_write(ckpt_path, lambda p, s=state: torch.save(s, p))
            save_tables()
            save_manifest("running")
            _event(run_dir, "checkpoint", iteration=it)
        bar.update(1)
    bar.close()
    save_tables()
    final = log.frames()[0].query("phase == 'eval'")
    manifest["final_collective"] = {
        str(s): float(v) for s, v in
        final[final.iteration == final.iteration.max()].set_index("seed").collective.items()}
    save_manifest("finished")
    _event(run_dir, "finish", iteration=trainer.iteration, wall_s=manifest["wall_s"])
    return RunResult(run_id, run_dir, scenario, seeds, manifest["wall_s"], trainer)


def _event(run_dir: Path, kind: str, **fields) -> None:
    """Append one JSON line to ``log.jsonl`` (append-only; each line is complete)."""
    line = json.dumps({"time": datetime.now(UTC).isoformat(timespec="seconds"),
                       "event": kind, **fields})
    with open(run_dir / "log.jsonl", "a") as f:
        f.write(line + "\n")
