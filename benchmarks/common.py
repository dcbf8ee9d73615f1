"""Shared helpers of the reproduction benchmarks: run scenarios, summarise final evaluations."""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from pathlib import Path

import pandas as pd

from econsim import runner, scenario, store
from econsim.cli import terminate_as_interrupt
from econsim.dictionary import RENAMED
from econsim.files import atomic_write
from econsim.model import load_trainer


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--seeds", default="0-4", help="seeds, e.g. 0-4 (default) or 0,1")
    p.add_argument("--iterations", type=int, help="override every scenario's budget")
    p.add_argument("--root", default="runs/bench", help="where run folders go")
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--resume", action="store_true",
                   help="reuse finished runs of the same scenario, seeds and budget in --root "
                   "and continue unfinished ones from their last checkpoint")
    return p


def previous_run(sc: scenario.Scenario, seeds: list[int], root: str | Path,
                 fork: tuple[str, int] | None = None) -> tuple[str, bool] | None:
    """The newest run in ``root`` of exactly this scenario (every resolved setting, budget
    included, except ``train.keep_every``, which does not change the numbers: a run found
    goes on keeping what it kept, said in one line) with these seeds, forked from ``fork``
    if given: (run id, finished?), or None."""
    if not Path(root).is_dir():
        return None
    runs = store.runs(root)
    same = runs[(runs.scenario == sc.name) & (runs.seeds == ",".join(map(str, seeds)))]

    def key(resolved: dict) -> dict:
        return {**resolved, "seeds": list(seeds),
                "train": {k: v for k, v in resolved["train"].items() if k != "keep_every"}}

    want = sc.resolved()
    for _, row in same.iloc[::-1].iterrows():
        stored = scenario.load(Path(root) / row.run_id / "scenario.toml").resolved()
        info = json.loads((Path(root) / row.run_id / "run.json").read_text())
        origin = info.get("forked_from")
        if origin != (None if fork is None else {"run_id": fork[0], "iteration": fork[1]}):
            continue
        if key(stored) == key(want):
            kept, asked = stored["train"]["keep_every"], want["train"]["keep_every"]
            if kept != asked:
                print(f"{row.run_id}: found with keep_every = {kept} (asked: {asked}); "
                      "it keeps its own")
            return str(row.run_id), row.status == "finished"
    return None


def run_scenarios(names: list[str], seeds: list[int], iterations: int | None, root: str | Path,
                  progress: bool = True, eval_every: int | None = None,
                  columns: tuple[str, ...] | list[str] = ("collective", "mutual_cooperation"),
                  algorithm: dict | None = None, resume: bool = False,
                  checkpoint_every: int | None = None, keep_every: int = 0,
                  eval_episodes: int | None = None, env: dict | None = None,
                  fork: tuple[str, int] | None = None) -> pd.DataFrame:
    """Train each scenario over ``seeds``; one row per scenario x seed of the final evaluation
    (the evaluation's ``columns`` that the game reports). ``algorithm`` overrides settings of
    every scenario's ``[algorithm]`` table (e.g. ``{"conv": True}``), ``env`` those of its
    ``[env]`` table (e.g. ``{"ttc_mask": True}``). ``resume``: reuse a
    finished run with the same scenario, seeds and budget in ``root``, continue an unfinished
    one (so a benchmark longer than a session goes on where it stopped). With ``iterations``,
    a run checkpoints at its end, or every ``checkpoint_every`` iterations when given, and
    keeps the checkpoint of every ``keep_every``-th iteration (``train.keep_every``; a
    setting of the run). ``eval_episodes`` overrides the episodes of every evaluation.
    ``fork`` = (run id, iteration): each scenario starts from what that run kept there
    (``runner.run``'s ``fork``; the seeds must be the run's)."""
    rows = []
    for name in names:
        sc = scenario.load(name)
        if iterations is not None or algorithm or env or eval_episodes is not None or keep_every:
            data = sc.resolved()
            data["algorithm"].update(algorithm or {})
            data["env"].update(env or {})
            if eval_episodes is not None:
                data["train"].update(eval_episodes=eval_episodes)
            if keep_every:
                data["train"].update(keep_every=keep_every)
            if iterations is not None:
                data["train"].update(
                    iterations=iterations, eval_every=(eval_every if eval_every is not None
                                                 else max(1, iterations // 4)),
                    log_every=max(1, min(data["train"]["log_every"], iterations)),
                    checkpoint_every=min(checkpoint_every or iterations, iterations))
            sc = scenario.from_dict(data, name)
        t0 = time.perf_counter()
        found = previous_run(sc, seeds, root, fork) if resume else None
        if found and found[1]:
            result = runner.load_result(found[0], root)
        else:
            with terminate_as_interrupt():  # kill marks the run interrupted, not running
                result = runner.run(sc, seeds=seeds, progress=progress, root=root,
                                    resume=found[0] if found else None,
                                    fork=None if found else fork)
        wall = result.wall_s if found else time.perf_counter() - t0
        final = result.final()  # runs made before the rename say social_welfare
        final = final.rename(columns={o: n for o, n in RENAMED.items() if n not in final})
        for _, row in final.iterrows():
            rows.append({"scenario": name, "algorithm": sc.algorithm_name, "seed": row.seed,
                         "iterations": int(row.iteration), **{
                             k: row[k] for k in final.columns if k in columns},
                         "wall_s": round(wall, 1), "run_id": result.run_id})
    return pd.DataFrame(rows)


def run_each(worker: Callable[..., pd.DataFrame], names: list[str], jobs: int,
             progress: bool, **kwargs) -> pd.DataFrame:
    """``worker(name, progress=..., **kwargs)`` for each scenario name, ``jobs`` at a time in
    processes (then without progress bars; ``worker`` must be a module-level function), the
    rows concatenated in the order of ``names``."""
    if jobs > 1:
        with ProcessPoolExecutor(jobs) as pool:
            parts = list(pool.map(partial(worker, progress=False, **kwargs), names))
    else:
        parts = [worker(n, progress=progress, **kwargs) for n in names]
    return pd.concat(parts, ignore_index=True)


def stored_trainer(run_id: str, root: str | Path | None, env: str | None, algorithm: str,
                   iteration: int | None = None):
    """The trainer of a stored run of ``algorithm`` (on ``env``; None: any game), restored
    from its last checkpoint, or from the one it kept at ``iteration`` (``train.keep_every``)
    (a probe's input); a one-line exit naming the run if it is something else or has no
    such checkpoint."""
    result = runner.load_result(run_id, root)
    sc = result.scenario
    if sc.algorithm_name != algorithm or env not in (None, sc.env_name):
        raise SystemExit(f"{run_id} is {sc.algorithm_name} on {sc.env_name}, not "
                         f"{algorithm} on {env or 'any game'}")
    try:
        return load_trainer(run_id, root, iteration)
    except ValueError as err:  # no such checkpoint, or one that does not fit
        raise SystemExit(str(err)) from None


def save_figure(fig, path: Path) -> None:
    """Write a matplotlib figure to ``path`` (PNG, folders made) and free it."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def gather_csv(new: pd.DataFrame, path: Path, key: list[str], settings: list[str],
               sort: list[str], order: dict[str, tuple] | None = None) -> pd.DataFrame:
    """``new`` rows plus those of ``path`` (the CSV an earlier invocation kept in ``docs/``)
    whose ``key`` (e.g. method and seed) ``new`` does not hold, sorted by ``sort``
    (``order``: a column's values in this order) and written back atomically. The file
    gathers runs of one configuration only: when its ``settings`` columns (e.g. iterations)
    differ from ``new``'s, a one-line ``SystemExit`` names both and nothing is written."""
    if path.exists():
        saved = pd.read_csv(path)
        missing = [c for c in [*key, *settings] if c not in saved]
        if missing:
            raise SystemExit(f"{path}: no column {missing[0]!r}; written by another version "
                             "(move it away or give another --docs folder)")
        have = set(saved[settings].itertuples(index=False, name=None))
        want = set(new[settings].itertuples(index=False, name=None))
        if have != want:
            raise SystemExit(f"{path} holds runs with {settings} = {sorted(have)}, these have "
                             f"{sorted(want)} (give another --docs folder)")
        ran = set(new[key].itertuples(index=False, name=None))
        keep = [k not in ran for k in saved[key].itertuples(index=False, name=None)]
        new = pd.concat([saved[keep], new], ignore_index=True)
    rank = {c: {v: i for i, v in enumerate(vals)} for c, vals in (order or {}).items()}
    new = new.sort_values(sort, key=lambda c: c.map(rank[c.name]) if c.name in rank else c,
                          ignore_index=True)
    atomic_write(path, lambda tmp: new.to_csv(tmp, index=False))
    return new
