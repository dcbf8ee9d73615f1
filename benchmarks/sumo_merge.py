"""Reproduce Figure 3.5d and Table A.1 of the dissertation: the SUMO double lane merge.

Trains CM3, IAC and COMA (``--methods`` adds direct, qv, qmix) on the empty road with two
learning cars (``sumo_<method>`` scenarios, Table A.4 settings), evaluating 10 episodes every
10 iterations of 10 episodes; prints the final return, the episodes to 90% progress and the
share of clean merges (both cars arrived in their goal lanes, no collision), and writes
``docs/cm3_sumo.png``. Then Table A.1: each trained policy (the run's last checkpoint) plays
``--episodes`` (100) test episodes per seed on the training configuration (empty road) and on
C1-C4 with heavy SUMO traffic (sedans and trucks, SPEC §7), without further training.
Paper (Table A.1, sum of the agents' rewards): CM3 16.17 / 14.93 / 15.85 / 16.35, IAC 11.40 /
12.20 / 14.32 / 9.73, COMA 10.00 / 12.93 / 15.00 / 8.1.

    .venv/bin/python benchmarks/sumo_merge.py --iterations 1000 --seeds 0-2 --resume
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.cm3 import behaviour, curves, plot, summary  # noqa: E402
from benchmarks.common import parser, run_scenarios  # noqa: E402
from econsim import checkpoint, runner, scenario, store  # noqa: E402
from econsim.bounds import MAX_STEPS  # noqa: E402
from econsim.cli import parse_seeds  # noqa: E402

METHODS = ("cm3", "iac", "coma", "direct", "qv", "qmix")
CONFIGS = ("train", "C1", "C2", "C3", "C4")
PAPER = {"cm3": (16.17, 14.93, 15.85, 16.35), "iac": (11.40, 12.20, 14.32, 9.73),
         "coma": (10.00, 12.93, 15.00, 8.1)}


def test_table(method: str, run_id: str, root: str, seeds: list[int], episodes: int
               ) -> pd.DataFrame:
    """The trained policies of ``run_id`` on every test configuration: one row per config x
    seed (collective return, share of clean merges, collisions per car)."""
    result = runner.load_result(run_id, root)
    state = checkpoint.load(store.inside(result.path, "checkpoints", "last.pt"))["trainer"]
    rows = []
    for config in CONFIGS:
        data = result.scenario.resolved()
        data["env"].update(config=config, traffic="none" if config == "train" else "heavy")
        trainer = scenario.from_dict(data, result.scenario.name).make_trainer(seeds)
        trainer.load_state_dict(state)
        try:
            ev = trainer.evaluate(episodes, chunk=10)
        finally:
            trainer.game.close()
        for r, seed in enumerate(seeds):
            rows.append({"method": method, "config": config, "seed": seed,
                         "collective": float(ev["collective"][r]),
                         "merged": float(ev["merged"][r].mean()),
                         "collisions": float(ev["collision"][r].mean())})
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    p = parser(__doc__.splitlines()[0])
    p.set_defaults(seeds="0-2", root="runs/bench_sumo")
    p.add_argument("--methods", default="cm3,iac,coma", help=f"of {', '.join(METHODS)}")
    p.add_argument("--episodes", type=int, default=100, help="test episodes per seed")
    p.add_argument("--docs", default="docs", help="where the PNG curve goes")
    p.add_argument("--ttc-mask", choices=("on", "off"), default="off",
                   help="train and test with the reference code's time-to-collision action "
                   "mask (env.ttc_mask; off: the Diss); on: the curve goes to "
                   "cm3_sumo_ttc_mask.png")
    p.add_argument("--timeout", type=int, default=None,
                   help="steps before the time-out (env.timeout; default: the scenarios' 33, "
                   "the Diss; 40: the reference code, SPEC 7b); the curve goes to "
                   "cm3_sumo_timeout<N>.png")
    p.add_argument("--formation", choices=("C1", "C3"), default=None,
                   help="the training formation (env.formation; default: the scenarios' C1, "
                   "Diss A.5 and the reference code; C3: the text of Diss A.7.2, econsim "
                   "until 2026-12-03); C3's curve goes to cm3_sumo_formation_c3.png")
    p.add_argument("--taken-value", choices=("global", "credit"), default=None,
                   help="CM3's first advantage term (algorithm.taken_value; default: the "
                   "scenarios' global Q_n(s, a), eq. 3.6; credit: the credit function's "
                   "Q_n(s, a^m)); credit's curve goes to cm3_sumo_credit.png")
    p.add_argument("--restored-actor-lr", type=float, default=None,
                   help="CM3's and QV's learning-rate multiplier for the restored stage-1 "
                   "actor in stage 2 (algorithm.restored_actor_lr; default: the scenarios' 1, "
                   "the Diss; 0: frozen); the curve goes to cm3_sumo..._restored<X>.png")
    a = p.parse_args(argv)
    if a.restored_actor_lr is not None and not 0 <= a.restored_actor_lr <= 1:
        p.error(f"--restored-actor-lr {a.restored_actor_lr} is not allowed (allowed: 0 to 1)")
    if a.timeout is not None and not 1 <= a.timeout <= MAX_STEPS:
        p.error(f"--timeout {a.timeout} is not allowed (allowed: 1 to {MAX_STEPS} steps)")
    torch.set_num_threads(1)
    seeds = parse_seeds(a.seeds)
    methods = [m for m in a.methods.split(",") if m]
    bad = [m for m in methods if m not in METHODS]
    if bad:
        raise SystemExit(f"unknown methods {bad} (allowed: {', '.join(METHODS)})")
    names = [f"sumo_{m}" for m in methods]
    env = {"ttc_mask": True} if a.ttc_mask == "on" else {}
    if a.timeout is not None:
        env["timeout"] = a.timeout
    if a.formation is not None:
        env["formation"] = a.formation
    alg = {} if a.taken_value is None else {"taken_value": a.taken_value}
    if alg and not set(methods) <= {"cm3", "direct"}:
        p.error("--taken-value applies to CM3 and Direct only (--methods cm3 and/or direct)")
    if a.restored_actor_lr is not None:
        if not set(methods) <= {"cm3", "qv"}:
            p.error("--restored-actor-lr applies to CM3 and QV only (--methods cm3 and/or qv)")
        alg["restored_actor_lr"] = a.restored_actor_lr
    done = run_scenarios(names, seeds, a.iterations, a.root, progress=not a.quiet,
                         eval_every=10, resume=a.resume, checkpoint_every=50, env=env or None,
                         algorithm=alg or None)
    ids = {m: done[done.scenario == f"sumo_{m}"].run_id.iloc[0] for m in methods}
    curve = curves(ids, a.root)
    suffix = ("_ttc_mask" if a.ttc_mask == "on" else "") + (
        f"_timeout{a.timeout}" if a.timeout is not None else "") + (
        "_formation_c3" if a.formation == "C3" else "") + (
        "_credit" if a.taken_value == "credit" else "") + (
        "" if a.restored_actor_lr is None else f"_restored{a.restored_actor_lr:g}")
    plot("sumo", curve, Path(a.docs) / f"cm3_sumo{suffix}.png")
    fig = summary(curve).merge(behaviour(ids, a.root), on="method")
    mask = ("" if a.ttc_mask == "off" else ", with the time-to-collision mask") + (
        "" if a.timeout is None else f", time-out after {a.timeout} steps") + (
        "" if a.formation is None else f", formation {a.formation}") + (
        "" if a.taken_value is None else f", CM3's taken value from the {a.taken_value} Q") + (
        "" if a.restored_actor_lr is None else
        f", restored actor at {a.restored_actor_lr:g} x lr_actor")
    print(f"Figure 3.5d{mask} (final = mean of the last 5 evaluations):")
    print(fig.to_string(index=False), flush=True)
    tests = pd.concat([test_table(m, ids[m], a.root, seeds, a.episodes) for m in methods],
                      ignore_index=True)
    table = tests.groupby(["method", "config"], sort=False).agg(
        collective=("collective", "mean"), merged=("merged", "mean"),
        seeds_merging_80pct=("merged", lambda x: int((x >= 0.8).sum()))).round(2).reset_index()
    table["paper"] = [dict(zip(CONFIGS[1:], PAPER.get(m, ()), strict=False)).get(c)
                      for m, c in zip(table.method, table.config, strict=True)]
    print(f"\nTable A.1{mask} ({a.episodes} test episodes per seed, seeds {a.seeds}; 'train' = the "
          "empty road of training; C1-C4 with heavy traffic):")
    print(table.to_string(index=False))
    return fig, table


if __name__ == "__main__":
    main()
