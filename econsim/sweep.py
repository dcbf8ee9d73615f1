"""Many runs of one scenario: a grid of parameter values x seeds, on a process pool or Ray.

>>> from econsim.sweep import sweep
>>> table = sweep("gtb_flat30", {"mechanism.rate": [0.1, 0.3, 0.5]}, seeds=range(8),
...               backend="local", workers=2, iterations=50)

or ``econsim sweep gtb_flat30 --seeds 0-7 --set mechanism.rate=0.1,0.3,0.5``.

* **Grid.** ``grid`` maps dotted paths into the scenario (``mechanism.rate``,
  ``algorithm.lr``, ``env.n_agents``, ``train.eval_episodes``...) to lists of values; the sweep
  runs every combination (the Cartesian product, in the grid's order). Every combination is
  validated with :func:`econsim.scenario.from_dict` **before anything runs**: a bad key or
  value raises ``ScenarioError`` (one line, naming the combination) and nothing is written,
  unless ``skip_invalid=True``, which reports invalid combinations as ``invalid`` and runs
  the others.
* **One run per combination.** Each combination is one :func:`econsim.runner.run` with all
  the seeds as vectorised replicas (exactly what ``econsim run SCENARIO --seeds ...`` does),
  so a sweep's run of one combination is the same as running that scenario by hand.
  Parallelism is across combinations (``workers`` at a time).
* **Run folders.** Run ``i`` is written to ``<root>/<sweep_id>-<ii>-<values>/`` (e.g.
  ``gtb_flat30-sweep-20250101-120000-ab12-01-rate0.3``): deterministic given the sweep id
  (pass ``sweep_id`` to choose it). Next to the runner's files, ``sweep.json`` records the
  sweep id and the combination, so :func:`econsim.analysis.tidy` adds them as columns
  (``mechanism.rate`` -> ``mechanism_rate``). Sweeping again with the same ``sweep_id`` keeps
  finished runs and resumes unfinished ones from their last checkpoint.
* **Backends, one code path.** The same module-level worker :func:`run_one` gets the same
  task dicts either from a ``concurrent.futures`` process pool with the ``spawn`` start
  method (``backend="local"``, the default) or as Ray tasks (``backend="ray"``, one CPU
  each; ``ray.init(num_cpus=workers)`` if Ray is not initialised yet, shut down again
  afterwards), or one after another in the calling process (``backend="inline"``, no pool:
  the app's Experiment page runs this way with one run at a time). Each worker runs torch
  on one thread.
* **Stopping.** Ctrl-C or SIGTERM of the sweep stops its local workers within seconds (each
  run still going is marked ``interrupted`` and resumes with the same ``sweep_id``); a
  worker whose sweep process died (even by ``kill -9``) notices within a second and stops.
* **Failures.** A run that raises is reported (``status = failed`` and a one-line
  ``error``); the other runs finish. The result is one row per combination with its status,
  wall time and the final evaluation's metrics averaged over seeds.
"""

from __future__ import annotations

import itertools
import json
import multiprocessing
import os
import re
import secrets
import shlex
import signal
import threading
import time
import tomllib
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from econsim import scenario as scenario_mod
from econsim import store
from econsim.errors import ScenarioError
from econsim.files import write_text
from econsim.scenario import Scenario

BACKENDS = ("local", "ray", "inline")
METRICS = ("collective", "productivity", "equality", "welfare_sum", "tax_revenue")
_GRACE_S = 5.0  # a stopping worker's run may take this long to mark itself interrupted


# --------------------------------------------------------------------------- grid parsing


def _split_top(text: str) -> list[str]:
    """Split on commas outside brackets and quotes: ``[1,2],[3,4]`` -> two items."""
    items, depth, quote, cur = [], 0, "", ""
    for ch in text:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == "," and depth == 0:
            items.append(cur)
            cur = ""
            continue
        cur += ch
    items.append(cur)
    return [i.strip() for i in items]


def parse_value(text: str) -> Any:
    """A TOML value (``0.3``, ``true``, ``[0.1, 0.2]``, ``"flat"``); a bare word is a string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]*", text):
            return text  # mechanism.name=flat
        raise ValueError(f"--set: {text!r} is not a TOML value (e.g. 0.3, true, \"flat\", "
                         "[0.1, 0.2])") from None


def parse_set(text: str) -> tuple[str, list[Any]]:
    """``"mechanism.rate=0.1,0.3"`` -> ``("mechanism.rate", [0.1, 0.3])``."""
    path, sep, values = text.partition("=")
    path = path.strip()
    if not sep or not re.fullmatch(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*", path) or not values.strip():
        raise ValueError(f"--set: {text!r} is not allowed (use PATH=V1,V2,..., e.g. "
                         "mechanism.rate=0.1,0.3 or algorithm.lr=1e-4,3e-4)")
    return path, [parse_value(v) for v in _split_top(values)]


def combinations(grid: dict[str, Iterable[Any] | Any]) -> list[dict[str, Any]]:
    """Every combination of the grid's values, in order (the last key varies fastest)."""
    keys = list(grid)
    values = [list(v) if isinstance(v, list | tuple | range) else [v] for v in grid.values()]
    for key, vals in zip(keys, values, strict=True):
        if not vals:
            raise ValueError(f"sweep: {key} has no values")
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*values)]


def set_path(data: dict[str, Any], path: str, value: Any) -> None:
    """``data["a"]["b"] = value`` for ``path = "a.b"`` (missing tables are created)."""
    *parents, leaf = path.split(".")
    if path in ("seeds", "name"):
        raise ValueError(f"sweep: {path} cannot be swept (seeds are given separately; "
                         "the runs are named after the sweep)")
    node = data
    for i, key in enumerate(parents):
        if node.get(key) is None:
            node[key] = {}
        nxt = node[key]
        if not isinstance(nxt, dict):
            where = ".".join(parents[:i + 1])
            raise ValueError(f"sweep: {path}: {where} is a value ({nxt!r}), not a table")
        node = nxt
    node[leaf] = value


def label(combo: dict[str, Any]) -> str:
    """``mechanism.rate=0.1, algorithm.lr=0.0003`` (for messages)."""
    return ", ".join(f"{k}={json.dumps(v)}" for k, v in combo.items()) or "(base scenario)"


def _slug(combo: dict[str, Any], varying: set[str] | None = None) -> str:
    parts = []
    for key, value in combo.items():
        if varying is not None and key not in varying:
            continue  # the same in every run: not part of the name
        text = re.sub(r"[^A-Za-z0-9.-]+", "_", json.dumps(value)).strip("_") or "x"
        text = re.sub(r"\.{2,}", ".", text)  # a run id has no '..'

        parts.append(f"{key.split('.')[-1]}{text}")
    return ("_".join(parts) or "base")[:60]


def run_ids(sweep_id: str, combos: list[dict[str, Any]]) -> list[str]:
    """The run folder names of a sweep's combinations (deterministic): the sweep id, the
    combination's index and the values of the parameters that vary."""
    varying = {k for k in (combos[0] if combos else {})
               if len({json.dumps(c[k]) for c in combos}) > 1}
    return [f"{sweep_id}-{i:02d}-{_slug(c, varying)}" for i, c in enumerate(combos)]


# --------------------------------------------------------------------------- planning


def new_sweep_id(name: str) -> str:
    """``<scenario>-sweep-<UTC time>-<4 hex>``."""
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return f"{name}-sweep-{stamp}-{secrets.token_hex(2)}"


def _base(scenario: Scenario | str | Path) -> tuple[dict[str, Any], str]:
    """The scenario as given (not resolved, so a swept mechanism or algorithm name does not
    inherit the other one's defaults) and its source name for messages."""
    if isinstance(scenario, Scenario):
        data = scenario.model_dump(mode="json")
        if data.get("mechanism") is None:
            data.pop("mechanism", None)
        return data, scenario.name
    path = scenario_mod.find(scenario)
    data = scenario_mod.read(path)  # the file checks of scenario.load: size, UTF-8, nesting
    scenario_mod.from_dict(data, path.name)  # the base itself must be valid
    return data, path.name


def plan(scenario: Scenario | str | Path, grid: dict[str, Any], seeds: Iterable[int] | None,
         *, sweep_id: str | None = None, root: str | Path | None = None,
         iterations: int | None = None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Validate every combination; returns (tasks, invalid), nothing is run or written.

    A task is the plain dict :func:`run_one` takes; an invalid entry has ``run_id``,
    ``params`` and ``error``.
    """
    base, source = _base(scenario)
    # the rules of a run's seeds and --iterations (scenario.check_seeds, check_iterations)
    seeds = scenario_mod.check_seeds(base.get("seeds", [0]) if seeds is None else seeds)
    iterations = scenario_mod.check_iterations(iterations)
    sweep_id = sweep_id or new_sweep_id(str(base.get("name", "sweep")))
    try:
        store.check_run_id(sweep_id)
    except ScenarioError:
        raise ScenarioError(f"sweep id {sweep_id!r} is not allowed: it starts the run ids, "
                            f"and {store.RUN_ID_RULE}") from None
    combos = combinations(grid)
    root = str(store.check_root(root).resolve())
    tasks, invalid = [], []
    for run_id, combo in zip(run_ids(sweep_id, combos), combos, strict=True):
        store.check_run_id(run_id)  # e.g. too long: refused before anything runs
        data = json.loads(json.dumps(base))  # deep copy of plain TOML data
        try:
            for path, value in combo.items():
                set_path(data, path, value)
            data["seeds"] = seeds
            scenario_mod.from_dict(data, source)
        except ValueError as err:  # ScenarioError is a ValueError
            invalid.append({"run_id": run_id, "sweep": sweep_id, "params": combo,
                            "error": str(err)})
            continue
        tasks.append({"run_id": run_id, "sweep": sweep_id, "params": combo, "data": data,
                      "source": source, "seeds": seeds, "root": root,
                      "iterations": iterations})
    return tasks, invalid


# --------------------------------------------------------------------------- the worker


def _one_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    msg = text[0] if text else ""
    return msg if isinstance(err, ValueError) and msg else f"{type(err).__name__}: {msg}"


def _final_metrics(episodes: pd.DataFrame) -> dict[str, float]:
    ev = episodes[episodes.phase == "eval"]
    last = ev[ev.iteration == ev.iteration.max()]
    return {m: float(last[m].mean()) for m in METRICS if m in last}


def run_one(task: dict[str, Any], on_iteration: Callable[[int, int], None] | None = None
            ) -> dict[str, Any]:
    """Run one combination (module level, so a spawned process or a Ray worker can import
    it). Never raises: a failure comes back as ``status = failed`` with a one-line error.
    ``on_iteration(done, total)``: called after each training iteration (in this process)."""
    import torch

    from econsim import runner

    torch.set_num_threads(1)
    t0 = time.perf_counter()
    root, run_id = Path(task["root"]), task["run_id"]
    out: dict[str, Any] = {"run_id": run_id, "status": "failed", "wall_s": 0.0, "error": ""}
    try:
        run_dir = store.resolve(run_id, root)
        manifest = store.inside(run_dir, "run.json")
        info = json.loads(manifest.read_text()) if manifest.is_file() else None
        if info is not None and info.get("status") == "finished":
            result_path, status = run_dir, "existing"  # same sweep id again: keep it
        else:
            resume = run_id if info is not None else None
            result = runner.run(scenario_mod.from_dict(task["data"], task["source"]),
                                seeds=task["seeds"], progress=on_iteration or False,
                                root=root, run_id=run_id,
                                resume=resume, iterations=task["iterations"], threads=1)
            result_path, status = result.path, "finished"
        write_text(store.inside(result_path, "sweep.json"),
                   json.dumps({"sweep": task["sweep"], "params": task["params"]}, indent=2))
        out.update(_final_metrics(store.read_table(store.inside(result_path,
                                                                "episodes.parquet"))))
        out["status"] = status
    except Exception as err:  # report, never take the sweep down
        out["error"] = _one_line(err)
    out["wall_s"] = round(time.perf_counter() - t0, 2)
    return out


# --------------------------------------------------------------------------- backends


_busy = False  # a pool worker is inside a run (its stop signal interrupts the run first)


def _stop_worker(signum: int, frame: Any) -> None:
    """SIGTERM / SIGINT in a pool worker: interrupt the run (the runner marks it interrupted,
    then :func:`_pool_run_one` exits), or exit at once if no run is going."""
    if _busy:
        raise KeyboardInterrupt
    os._exit(128 + signum)


def _watch_parent(parent: int) -> None:
    """A pool worker's guard thread: when the sweep process is gone (its parent changed,
    e.g. after ``kill -9``), stop the worker like SIGTERM does; exit hard after a grace."""
    while os.getppid() == parent:
        time.sleep(0.5)
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(_GRACE_S)
    os._exit(1)


def _init_worker(parent: int | None = None) -> None:
    """Pool worker set-up: one torch thread; stop on SIGTERM/SIGINT or when ``parent`` dies."""
    import torch

    torch.set_num_threads(1)
    signal.signal(signal.SIGTERM, _stop_worker)
    signal.signal(signal.SIGINT, _stop_worker)
    if parent is not None:
        threading.Thread(target=_watch_parent, args=(parent,), daemon=True,
                         name="econsim-parent-watch").start()


def _pool_run_one(task: dict[str, Any]) -> dict[str, Any]:
    """:func:`run_one` in a pool worker; an interruption ends the worker process."""
    global _busy
    _busy = True
    try:
        return run_one(task)
    except KeyboardInterrupt:
        os._exit(130)  # the run is marked interrupted; the sweep is stopping
    finally:
        _busy = False


def _failed(task: dict[str, Any], err: BaseException) -> dict[str, Any]:
    return {"run_id": task["run_id"], "status": "failed", "wall_s": float("nan"),
            "error": _one_line(err)}


def _stop_pool(pool: ProcessPoolExecutor) -> None:
    """Stop a pool whose sweep is ending early: SIGTERM to every worker (a run still going
    marks itself interrupted), then SIGKILL to any left after a grace period."""
    procs = list((getattr(pool, "_processes", None) or {}).values())  # private, but stable
    for proc in procs:
        if proc.is_alive():
            proc.terminate()
    pool.shutdown(wait=False, cancel_futures=True)
    deadline = time.monotonic() + _GRACE_S
    for proc in procs:
        proc.join(timeout=max(0.0, deadline - time.monotonic()))
    for proc in procs:
        if proc.is_alive():
            proc.kill()
            proc.join(timeout=1.0)


def _local(tasks: list[dict[str, Any]], workers: int) -> Iterator[tuple[dict, dict]]:
    ctx = multiprocessing.get_context("spawn")  # import mesa forces spawn anyway
    pool = ProcessPoolExecutor(max_workers=max(1, min(workers, len(tasks))), mp_context=ctx,
                               initializer=_init_worker, initargs=(os.getpid(),))
    done = False
    try:
        futures = {pool.submit(_pool_run_one, task): task for task in tasks}
        for fut in as_completed(futures):
            task = futures[fut]
            try:
                yield task, fut.result()
            except Exception as err:  # the worker process died (e.g. killed for memory)
                yield task, _failed(task, err)
        done = True
    finally:
        if done:
            pool.shutdown(wait=True)
        else:  # interrupted (Ctrl-C, SIGTERM) or abandoned by the caller
            _stop_pool(pool)


def _inline(tasks: list[dict[str, Any]],
            on_iteration: Callable[[dict[str, Any], int, int], None] | None = None
            ) -> Iterator[tuple[dict, dict]]:
    """One run after another in this process and thread (no pool: the app's experiments,
    tiny sweeps); ``workers`` does not apply; ``on_iteration(task, done, total)`` after each
    training iteration."""
    for task in tasks:
        hook = None if on_iteration is None else (
            lambda done, total, task=task: on_iteration(task, done, total))
        yield task, run_one(task, hook)


def _ray(tasks: list[dict[str, Any]], workers: int) -> Iterator[tuple[dict, dict]]:
    try:
        import ray
    except ImportError:
        raise ValueError("backend 'ray' needs Ray: pip install 'econsim[ray]'") from None
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False,
                 logging_level="ERROR")
    try:
        remote = ray.remote(num_cpus=1, max_retries=0)(run_one)
        refs = {remote.remote(task): task for task in tasks}
        pending = list(refs)
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            for ref in done:
                try:
                    yield refs[ref], ray.get(ref)
                except Exception as err:  # the worker died
                    yield refs[ref], _failed(refs[ref], err)
    finally:
        if started:
            ray.shutdown()


def execute(tasks: list[dict[str, Any]], backend: str = "local", workers: int = 2,
            on_iteration: Callable[[dict[str, Any], int, int], None] | None = None
            ) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """Yield ``(task, outcome)`` as runs finish; the backend only decides where
    :func:`run_one` runs. ``on_iteration(task, done, total)``: after each training
    iteration, with the ``inline`` backend (the others report whole runs)."""
    if backend not in BACKENDS:
        raise ValueError(f"backend {backend!r} is not allowed (allowed: {', '.join(BACKENDS)})")
    if workers < 1:
        raise ValueError(f"workers: {workers} is not allowed: must be >= 1")
    if not tasks:
        return iter(())
    if backend == "inline":
        return _inline(tasks, on_iteration)
    return _local(tasks, workers) if backend == "local" else _ray(tasks, workers)


# --------------------------------------------------------------------------- the sweep


def sweep(scenario: Scenario | str | Path, grid: dict[str, Any] | None = None,
          seeds: Iterable[int] | None = None, backend: str = "local", workers: int = 2,
          root: str | Path | None = None, iterations: int | None = None, *,
          sweep_id: str | None = None, skip_invalid: bool = False,
          progress: bool | Callable[[dict[str, Any]], None] = False,
          on_iteration: Callable[[dict[str, Any], int, int], None] | None = None
          ) -> pd.DataFrame:
    """Run every combination of ``grid`` (see the module docstring); one row per
    combination: ``run_id``, the swept values, ``status`` (finished, existing, failed,
    invalid), ``wall_s``, the final evaluation's metrics (mean over seeds), ``error``.

    ``progress``: True prints a line per finished run; a callable gets each row.
    ``on_iteration(task, done, total)``: after each training iteration of a run, with the
    ``inline`` backend (a task holds ``params``, the combination's values).
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend {backend!r} is not allowed (allowed: {', '.join(BACKENDS)})")
    tasks, invalid = plan(scenario, grid or {}, seeds, sweep_id=sweep_id, root=root,
                          iterations=iterations)
    if invalid and not skip_invalid:
        bad = invalid[0]
        more = f"; {len(invalid) - 1} more invalid" if len(invalid) > 1 else ""
        raise ScenarioError(f"sweep: {label(bad['params'])}: {bad['error']}{more}; nothing "
                            "was run (fix the values, or skip invalid combinations: "
                            "--skip-invalid, skip_invalid=True)")
    order = {t["run_id"]: i for i, t in enumerate([*tasks, *invalid])}
    rows = [{**inv["params"], "run_id": inv["run_id"], "status": "invalid",
             "wall_s": float("nan"), "error": inv["error"]} for inv in invalid]
    total = len(tasks) + len(invalid)
    report = progress if callable(progress) else (_print_row if progress else None)
    for task, outcome in execute(tasks, backend, workers, on_iteration):
        row = {**task["params"], **outcome}
        rows.append(row)
        if report:
            report({**row, "done": len(rows), "total": total})
    keys = list(grid or {})
    cols = ["run_id", *keys, "status", "wall_s",
            *[m for m in METRICS if any(m in r for r in rows)], "error"]
    df = pd.DataFrame(rows).reindex(columns=cols)
    df["seeds"] = ",".join(str(s) for s in (tasks[0]["seeds"] if tasks else []))
    df = df[[*cols[:-1], "seeds", "error"]]
    df["error"] = df["error"].fillna("")
    df = df.sort_values("run_id", key=lambda s: s.map(order), kind="stable")
    df = df.reset_index(drop=True)
    df.attrs["sweep"] = (tasks or invalid)[0]["sweep"] if tasks or invalid else sweep_id
    return df


def by_combination(runs: pd.DataFrame, episodes: pd.DataFrame, keys: Iterable[str]
                   ) -> pd.DataFrame:
    """``episodes`` (rows of the sweep's runs, with ``run_id``) with a column ``combination``
    naming each row's grid values (:func:`label`, e.g. ``mechanism.rate=0.3``), in the order
    of ``runs`` (a :func:`sweep` table), for comparisons per combination across seeds."""
    keys = list(keys)
    names = {r["run_id"]: label({k: r[k] for k in keys}) for _, r in runs.iterrows()}
    missing = sorted(set(episodes["run_id"]) - set(names))
    if missing:
        raise ValueError(f"episodes of runs outside the sweep: {', '.join(missing)}")
    out = episodes.assign(combination=episodes["run_id"].map(names))
    order = {n: i for i, n in enumerate(dict.fromkeys(names.values()))}
    return out.sort_values("combination", key=lambda c: c.map(order), kind="stable")


def rerun_command(scenario: str, grid: dict[str, list[Any]], seeds: Iterable[int],
                  iterations: int | None, sweep_id: str | None = None) -> str:
    """The ``econsim sweep`` command line that runs this grid again (``sweep_id``: the same
    folders, so finished runs are kept)."""
    sets = " ".join("--set " + shlex.quote(f"{k}={','.join(json.dumps(v) for v in vals)}")
                    for k, vals in grid.items())
    seeds = ",".join(str(s) for s in seeds)
    return (f"econsim sweep {shlex.quote(scenario)} {sets} --seeds {seeds}"
            + (f" --iterations {iterations}" if iterations else "")
            + (f" --sweep-id {shlex.quote(sweep_id)}" if sweep_id else ""))


def _print_row(row: dict[str, Any]) -> None:
    extra = f": {row['error']}" if row.get("error") else f" in {row['wall_s']:.1f} s"
    print(f"[{row['done']}/{row['total']}] {row['run_id']} {row['status']}{extra}", flush=True)
