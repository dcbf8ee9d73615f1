"""Reproduce LIO vs AC on Cleanup 7x7 and 10x10 (Diss §5.6, Fig. 5.6a,b, B.5).

Paper: LIO agents find a division of labour (one cleans the river, the other harvests and
pays it) and collect far more apples than independent actor-critic agents, who compete for
apples after cleaning. Acceptance (issue 5): LIO's collective return >= 1.5x AC's on the
same budget and seeds, with the division of labour visible in the exported events.

Budget: the Diss trains 50,000 episodes; here every scenario gets the same number of
iterations (one training episode tau per seed and iteration; LIO plays a second episode
tau_hat for its incentive step), all seeds vectorised in one process. Final evaluation:
``eval_episodes`` greedy episodes (eps = 0) per seed.

Division of labour (issue 16's criterion): a seed *splits* when, in the final evaluation, one
agent cleans at least 20 waste cells per episode and another collects at least 20 apples.
The same criterion on every logged training row (a mean over ``log_every`` iterations) gives
the split over training (per
seed: the first and last iteration with it, the breaks of at least ``BREAK_ITERATIONS``
without it, the share with it over the last tenth) in ``docs/<scenario>_splits.csv``.
Training curves (per seed: the team's extrinsic return, the top cleaner's cells, the top
harvester's apples, the incentives paid, every ``log_every`` iterations) go to
``docs/<scenario>_training.png`` and their points to ``docs/<scenario>_training.csv``, and
the team's return of every scenario of the map whose curves are there, over training
episodes, to ``docs/cleanup7_comparison.png`` (``cleanup10_`` on 10x10). For LIO, what the
incentive functions pay for cleaning and for not cleaning in greedy episodes from the last
checkpoint (``incentive_response``; equal payments near R_max = a saturated sigmoid) goes to
``docs/<scenario>_incentives.csv``, and with ``--keep-every`` the same at every kept
checkpoint to ``docs/<scenario>_incentives_by_checkpoint.csv`` and ``.png``. ``--fork``
starts the scenarios from what a run kept (a what-if from that iteration on). A later
invocation with the same iterations and ``--conv`` replaces the seeds it ran and keeps the
others (``runs/`` is not kept between sessions, the CSV is); other settings need another
``--docs`` folder.

    .venv/bin/python benchmarks/cleanup.py                       # scenarios' budgets, seeds 0-2
    .venv/bin/python benchmarks/cleanup.py --iterations 3000 --jobs 2 --quiet
    .venv/bin/python benchmarks/cleanup.py --extra               # also AC-d, AC-c, IA, Cen
    .venv/bin/python benchmarks/cleanup.py --scenarios cleanup7_acd,cleanup7_acc
    .venv/bin/python benchmarks/cleanup.py --map 10x10 --extra     # 3 agents: LIO, AC, IA, Cen
    .venv/bin/python benchmarks/cleanup.py --designers             # MetaGrad vs dual-RL (c), 7x7
    .venv/bin/python benchmarks/cleanup.py --conv                  # agents with the conv layer

Designers (Diss §6.4, Fig. 6.2): a central designer pays incentives per action type (clean /
collect / else) to shared actor-critic agents; their ``collective`` is the extrinsic return
minus the incentives paid (the Diss's test-time ID reward), ``extrinsic`` and ``incentives``
are printed beside it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    gather_csv,
    parser,
    run_each,
    run_scenarios,
    save_figure,
    stored_trainer,
)

from econsim import runner  # noqa: E402
from econsim.cli import parse_fork, parse_seeds  # noqa: E402
from learners.lio import LIOTrainer  # noqa: E402

#: scenario name suffixes per map (``cleanup7_lio``, ``cleanup10_ia``, ...)
MAIN = ["lio", "ac"]
EXTRA = {"7x7": ["acd", "acc", "ia", "cen"], "10x10": ["ia", "cen"]}
DESIGNERS = ["metagrad", "dualrl"]
COLUMNS = ("collective", "length", "extrinsic", "incentives")
PREFIX = {"7x7": "cleanup7_", "10x10": "cleanup10_"}
EVENTS = ["return", "apples", "waste_cleaned", "n_clean", "given", "received"]
OFFERS = ["offer_clean", "offer_collect", "offer_else"]


CHECKPOINT_EVERY = 500  # with --iterations: what an interrupted run loses at most


def _one(name: str, seeds: list[int], iterations: int | None, root: str,
         progress: bool, conv: bool = False, resume: bool = False,
         keep_every: int = 0, fork: tuple[str, int] | None = None) -> pd.DataFrame:
    """Train one scenario (a worker of --jobs); with ``iterations``, a checkpoint every
    ``CHECKPOINT_EVERY`` iterations (part of the run's settings: ``--resume`` finds runs made
    with it), and one kept every ``keep_every`` iterations (``train.keep_every``); ``fork``:
    from what a run kept (``runner.run``)."""
    torch.set_num_threads(1)
    return run_scenarios([name], seeds, iterations, root, progress=progress,
                         columns=COLUMNS, algorithm={"conv": True} if conv else None,
                         resume=resume, checkpoint_every=CHECKPOINT_EVERY,
                         keep_every=keep_every, fork=fork)


def agent_rows(root: str | Path, run_id: str, phase: str) -> pd.DataFrame:
    """The rows of a run's ``agents.parquet`` of one ``phase`` (``train`` or ``eval``)."""
    return pd.read_parquet(Path(root) / run_id / "agents.parquet").query("phase == @phase")


def division_of_labour(df: pd.DataFrame, root: str | Path) -> pd.DataFrame:
    """Per scenario x seed x agent: the final evaluation's per-agent event counts."""
    out = []
    for run_id in df.run_id.unique():
        ag = agent_rows(root, run_id, "eval")
        ag = ag[ag.iteration == ag.iteration.max()]
        cols = [c for c in EVENTS if c in ag.columns]
        part = ag[["scenario", "seed", "agent", *cols]]
        ep = pd.read_parquet(Path(root) / run_id / "episodes.parquet").query("phase == 'eval'")
        offers = [c for c in OFFERS if c in ep.columns]
        if offers:  # a designer's mean offer per action type in that evaluation
            ep = ep[ep.iteration == ep.iteration.max()][["seed", *offers]]
            part = part.merge(ep, on="seed", how="left")
        out.append(part)
    return pd.concat(out, ignore_index=True)


SPLIT = 20.0  # cells cleaned by one agent and apples collected by another, per episode


def splits(dol: pd.DataFrame, by: tuple[str, ...] = ("scenario", "seed")) -> pd.DataFrame:
    """Per group of ``by`` (a scenario's seed; with ``"iteration"``, each logged training
    row): whether the per-agent counts show the division of labour, one agent cleaning at
    least ``SPLIT`` cells and another collecting at least ``SPLIT`` apples (``cleaner`` and
    ``harvester``: of the pairs that do, the one with the most cells, then apples; else the
    top cleaner and the best other harvester)."""
    out = []
    for key, g in dol.groupby(list(by), sort=False):
        cells = dict(zip(g.agent, g.waste_cleaned.fillna(0.0), strict=True))
        apples = dict(zip(g.agent, g.apples.fillna(0.0), strict=True))

        found, c, a, i, j = max((cells[i] >= SPLIT and apples[j] >= SPLIT, cells[i], apples[j],
                                 i, j) for i in cells for j in apples if i != j)
        out.append({**{k: v.item() if isinstance(v, np.generic) else v
                       for k, v in zip(by, key, strict=True)},
                    "cleaner": int(i), "cleaned": float(c), "harvester": int(j),
                    "harvested": float(a), "split": bool(found)})
    return pd.DataFrame(out)


BREAK_ITERATIONS = 300  # a stretch without the split this long counts as a break


def split_timeline(rows: pd.DataFrame) -> pd.DataFrame:
    """Per scenario x seed, the division of labour over training, from :func:`splits` of
    every logged training row (``by`` with ``"iteration"``; each row: the mean of the
    ``log_every`` iterations up to it): ``first`` and ``last`` iteration with the split (<NA>:
    never); ``breaks``, the stretches after the first split without it that span at least
    ``BREAK_ITERATIONS`` (``from-to``: the first and the last row without it, each row
    counting the iterations since the one before); ``end_share``, the share of rows with the
    split over the last tenth of the iterations logged (a team that keeps it: near 1)."""
    out = []
    for (name, seed), g in rows.sort_values("iteration").groupby(["scenario", "seed"],
                                                                   sort=False):
        g = g.assign(span=g.iteration.diff().fillna(g.iteration))  # iterations per row
        end = int(g.iteration.iloc[-1])
        row = {"scenario": name, "seed": int(seed), "first": pd.NA, "last": pd.NA,
               "breaks": "", "n_breaks": 0,
               "end_share": float(g.split[g.iteration > end - end / 10].mean())}
        if g.split.any():
            row["first"], row["last"] = (int(g.iteration[g.split].min()),
                                         int(g.iteration[g.split].max()))
            after = g[g.iteration >= row["first"]]
            stretch = (after.split != after.split.shift()).cumsum()  # runs of equal rows
            off = after[~after.split].groupby(stretch[~after.split])
            stretches = [f"{r.iteration.iloc[0]}-{r.iteration.iloc[-1]}" for _, r in off
                         if r.span.sum() >= BREAK_ITERATIONS]
            row["breaks"], row["n_breaks"] = " ".join(stretches), len(stretches)
        out.append(row)
    out = pd.DataFrame(out)
    return out.astype({"first": "Int64", "last": "Int64"}) if len(out) else out


def training_splits(df: pd.DataFrame, root: str | Path) -> pd.DataFrame:
    """:func:`split_timeline` of every run in ``df``, with its settings (``iterations``,
    ``conv``)."""
    out = []
    for run_id in df.run_id.unique():
        ag = agent_rows(root, run_id, "train")
        if ag.empty:
            continue
        sc = runner.load_result(run_id, root).scenario
        part = split_timeline(splits(ag, ("scenario", "seed", "iteration")))
        for k, (col, v) in enumerate(settings(sc).items()):
            part.insert(2 + k, col, v)
        out.append(part)
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame()


RESPONSE_EPISODES = 10  # greedy episodes per seed for incentive_response


def incentive_response(trainer, episodes: int = RESPONSE_EPISODES) -> pd.DataFrame:
    """What LIO's incentive functions pay for cleaning and for not cleaning: on the states of
    ``episodes`` greedy episodes per seed (eps = 0) from ``trainer`` (a run's last
    checkpoint), each giver's payment to each recipient (eq. 5.2: R_max x sigmoid) with the
    recipient's [did not clean, cleaned] input set to "cleaned" (``pay_clean``) and to "did
    not clean" (``pay_other``), the others' actions as played; ``cleaned``: the share of
    steps the recipient did clean, ``paid``: the mean payment per step as played. Equal
    payments near R_max say the sigmoid is saturated: the payment no longer depends on what
    the recipient does. ``weight``: the giver's mean weight per step in its outer loss
    (``outer_returns``: with actor-critic agents its extrinsic TD error under the critic of
    its total reward), beside ``received``, the incentives it receives per step. One row per
    seed x giver x recipient. ``cleaned`` counts steps with the beam fired (the game's
    action features), not cells cleaned. Playing advances ``trainer``'s random streams: give
    it a trainer loaded for the purpose (``econsim.model.load_trainer``), not one in training.
    """
    inc, ag, game = trainer.incentive, trainer.agents, trainer.game
    if not inc.features:
        raise ValueError("incentive_response needs incentive functions that see the others' "
                         "[did not clean, cleaned] features (incentive_actions = 'features')")
    # one action of each kind, by the game's own features ([did not clean, cleaned])
    kinds = game.action_features(np.arange(ag.A)[:, None])[:, 0].argmax(-1)
    other, clean = int(np.flatnonzero(kinds == 0)[0]), int(np.flatnonzero(kinds == 1)[0])
    with torch.no_grad():
        batch = trainer.run_episodes(trainer.params, 0.0, episodes)
        T = batch.mask.shape[0]

        def per_replica(v: torch.Tensor) -> torch.Tensor:  # world layout [T, R*B, ...]
            return v.reshape(T, ag.R, -1, *v.shape[2:]).transpose(0, 1)  # [R, T, B, ...]

        def pays(actions: torch.Tensor) -> torch.Tensor:  # [R, T, B, G, N], eq. 5.2
            x = inc.inputs(batch.obs, actions)
            return per_replica(trainer.cfg.r_max * inc.incentives(inc.eta, x))

        mask = per_replica(batch.mask)
        cleaned = per_replica(torch.from_numpy(kinds[batch.env_actions.numpy()] == 1))
        received = per_replica(batch.transfers.sum(2))  # [R, T, B, N]
        weight = trainer.outer_returns(batch).reshape(ag.R, trainer.N, T, -1)  # [R, N, T, B]
        paid = pays(batch.env_actions)

        def mean(v: torch.Tensor, r: int) -> float:  # per valid step of replica r
            return float((v * mask[r]).sum() / mask[r].sum())

        rows = []
        for g, i in enumerate(inc.givers):
            for j in ag.others[i].tolist():
                as_if = {}  # recipient j's action replaced, the others' as played
                for label, a in (("pay_clean", clean), ("pay_other", other)):
                    actions = batch.env_actions.clone()
                    actions[..., j] = a
                    as_if[label] = pays(actions)[..., g, j]
                for r, seed in enumerate(trainer.seeds):
                    rows.append({"seed": seed, "giver": i, "recipient": j,
                                 "cleaned": mean(cleaned[r, ..., j], r),
                                 "paid": mean(paid[r, ..., g, j], r),
                                 **{k: mean(v[r], r) for k, v in as_if.items()},
                                 "received": mean(received[r, ..., i], r),
                                 "weight": mean(weight[r, i], r)})
    return pd.DataFrame(rows)


SETTINGS = ["iterations", "conv"]  # the columns settings() fills


def settings(sc) -> dict[str, object]:
    """The settings a docs CSV gathers runs of (one configuration per file): the budget and
    whether the agents have the conv front end."""
    return {"iterations": sc.train.iterations, "conv": "on" if sc.algorithm.get("conv") else "off"}


def responses(df: pd.DataFrame, root: str | Path, kept: bool = False) -> pd.DataFrame:
    """:func:`incentive_response` of every LIO run in ``df`` whose incentive functions see
    the [did not clean, cleaned] features, from its last checkpoint, or with ``kept`` from
    every checkpoint it kept on the way (``--keep-every``; an ``iteration`` column says
    which: the Diss's Fig. 5.6b follows the harvester's payments over training the same
    way), with the scenario and its settings (``iterations``, ``conv``)."""
    out = []
    for run_id in df.run_id.unique():
        result = runner.load_result(run_id, root)
        sc = result.scenario
        points = runner.kept_checkpoints(result) if kept else {None: None}
        for it in points:
            trainer = stored_trainer(run_id, root, None, sc.algorithm_name, iteration=it)
            if not isinstance(trainer, LIOTrainer) or not trainer.incentive.features:
                break  # no incentive functions, or ones that see every action (onehot)
            part = incentive_response(trainer)
            head = {"scenario": sc.name, **settings(sc), **({} if it is None else
                                                            {"iteration": it})}
            for k, (col, v) in enumerate(head.items()):
                part.insert(k, col, v)
            out.append(part)
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame()


def plot_responses(name: str, resp: pd.DataFrame, path: Path) -> None:
    """What each giver pays per step for cleaning and for not cleaning over training
    (:func:`responses` with ``kept``), one panel per seed, with the share of steps its
    recipient cleaned: where the two payments meet, the incentive function no longer tells
    cleaning apart (the Diss's Fig. 5.6b: the harvester's payments to scripted agents)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    seeds = sorted(resp.seed.unique())
    fig, axes = plt.subplots(1, len(seeds), figsize=(3.6 * len(seeds), 3.2), sharey=True,
                             squeeze=False)
    for ax, seed in zip(axes[0], seeds, strict=True):
        for (i, j), r in resp[resp.seed == seed].groupby(["giver", "recipient"]):
            line, = ax.plot(r.iteration, r.pay_clean, lw=1.2, label=f"{i}->{j} cleaning")
            ax.plot(r.iteration, r.pay_other, lw=1.2, ls="--", color=line.get_color(),
                    label=f"{i}->{j} not cleaning")
            ax.plot(r.iteration, 2 * r.cleaned, lw=0.8, ls=":", color=line.get_color(),
                    label=f"{j} cleans (share x 2)")
        ax.set_title(f"{name}, seed {seed}", fontsize=9)
        ax.set_xlabel("iteration")
        ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel("payment per step (greedy play)")
    axes[0, -1].legend(fontsize=6)
    save_figure(fig, path)


def training(df: pd.DataFrame, root: str | Path) -> pd.DataFrame:
    """Training curves, one row per scenario x seed x logged iteration: ``extrinsic`` (the
    team's extrinsic return per episode: the agents' ``return``), ``cleaned`` (the most any agent
    cleaned), ``harvested`` (the most apples any agent collected), ``paid`` (incentives
    received, all agents: what LIO's givers or a designer paid), with the run and its
    settings (``iterations``, ``conv``) and the training ``episodes`` played by then as the
    Diss counts them (LIO's tau-hat too; the runner's ``episodes.parquet`` counts the
    episodes tau only)."""
    out = []
    for run_id in df.run_id.unique():
        ag = agent_rows(root, run_id, "train")
        if ag.empty:
            continue
        agg = {"cleaned": ("waste_cleaned", "max"), "harvested": ("apples", "max"),
               "extrinsic": ("return", "sum")}
        if "received" in ag:
            agg["paid"] = ("received", "sum")
        part = ag.groupby(["scenario", "seed", "iteration"]).agg(**agg).reset_index()
        sc = runner.load_result(run_id, root).scenario
        for k, (col, v) in enumerate({"run": run_id, **settings(sc)}.items()):
            part.insert(2 + k, col, v)
        per = sc.make_trainer([int(part.seed.iloc[0])]).episodes_per_iteration()
        part.insert(6, "episodes", part.iteration * per)
        out.append(part)
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame()


def gather(curve: pd.DataFrame, path: Path) -> pd.DataFrame:
    """``curve`` with the rows of ``path`` (an earlier training CSV of the same iterations
    and ``conv``) of the seeds it does not hold; written back to ``path``."""
    return gather_csv(curve, path, ["seed"], SETTINGS, ["seed", "iteration"])


def plot_training(name: str, curve: pd.DataFrame, path: Path) -> None:
    """One panel per quantity of ``training``, one line per seed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("extrinsic", "apples collected (team)"), ("cleaned", "waste cleaned, top agent"),
              ("harvested", "apples, top agent"), ("paid", "incentives paid (team)")]
    panels = [p for p in panels if p[0] in curve]
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.4), sharex=True)
    for ax, (col, title) in zip(axes, panels, strict=True):
        for seed, c in curve.groupby("seed"):
            ax.plot(c.iteration, c[col], label=f"seed {seed}", lw=1)
        if col in ("cleaned", "harvested"):
            ax.axhline(SPLIT, color="grey", ls="--", lw=0.8)
        ax.set_title(f"{name}: {title}", fontsize=9)
        ax.set_xlabel("iteration")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("per episode")
    axes[-1].legend(fontsize=7)
    save_figure(fig, path)


SMOOTH = 10  # logged points in the comparison's moving average


def plot_comparison(folder: Path, prefix: str, path: Path) -> list[str]:
    """The team's extrinsic return per episode over training episodes (mean over seeds, a
    moving average of ``SMOOTH`` logged points; the band: the seeds' lowest and highest) for
    every ``<prefix>*_training.csv`` in ``folder`` that counts episodes; the scenarios drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    drawn = []
    for csv in sorted(folder.glob(f"{prefix}*_training.csv")):  # training() CSVs only
        c = pd.read_csv(csv)
        if "episodes" not in c or c.episodes.isna().any():
            print(f"comparison: {csv.name} left out (written before training curves counted "
                  "episodes; rerun its scenario with --resume)")
            continue
        wide = c.pivot(index="episodes", columns="seed", values="extrinsic")
        wide = wide.rolling(SMOOTH, min_periods=1).mean()
        name = csv.name.removesuffix("_training.csv")
        x = wide.index / 1000
        line, = ax.plot(x, wide.mean(axis=1), lw=1.5, label=f"{name} ({wide.shape[1]} seeds)")
        ax.fill_between(x, wide.min(axis=1), wide.max(axis=1), color=line.get_color(),
                        alpha=0.15, lw=0)
        drawn.append(name)
    if drawn:
        ax.set_xlabel("training episodes (thousands; LIO's count tau and tau-hat)")
        ax.set_ylabel("apples collected per episode (team)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        save_figure(fig, path)
    else:
        plt.close(fig)
    return drawn


def main(argv: list[str] | None = None):
    p = parser(__doc__.splitlines()[0])
    p.set_defaults(seeds="0-2", root="runs/bench_cleanup")
    p.add_argument("--map", choices=sorted(PREFIX), default="7x7", help="Cleanup map")
    p.add_argument("--extra", action="store_true",
                   help="also the baselines AC-d, AC-c (7x7 only), IA and Cen")
    p.add_argument("--designers", action="store_true",
                   help="MetaGrad vs dual-RL (c) (central designers, 7x7) instead of LIO vs AC")
    p.add_argument("--conv", action="store_true",
                   help="agents (policy, critic and LIO's incentive function) with the "
                   "Diss's conv(6, 3x3) front end instead of the MLP")
    p.add_argument("--jobs", type=int, default=1, help="scenarios trained in parallel")
    p.add_argument("--scenarios", help="comma-separated scenario names (default: LIO and AC)")
    p.add_argument("--docs", default="docs", help="where the training curves (PNG, CSV) go")
    p.add_argument("--keep-every", type=int, default=0, metavar="N",
                   help="keep a checkpoint every N iterations (a setting of the run) and "
                   "follow LIO's incentive functions over them")
    p.add_argument("--fork", metavar="RUN_ID@ITERATION",
                   help="start the scenarios from what a run in --root kept at that iteration "
                   "(--keep-every), with their own settings from there on (same seeds)")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    pre = PREFIX[args.map]
    main_names = DESIGNERS if args.designers else MAIN
    if args.designers and args.map != "7x7":
        p.error("--designers: the designer scenarios are 7x7 (Diss Fig. 6.2)")
    names = (args.scenarios.split(",") if args.scenarios
             else [pre + n for n in main_names + (EXTRA[args.map] if args.extra else [])])
    seeds = parse_seeds(args.seeds)
    df = run_each(_one, names, args.jobs, not args.quiet, seeds=seeds,
                  iterations=args.iterations, root=args.root, conv=args.conv,
                  resume=args.resume, keep_every=args.keep_every,
                  fork=parse_fork(args.fork))
    print("\nFinal collective return (evaluation, eps = 0) per seed:")
    shown = [c for c in ("scenario", "seed", "iterations", "collective", "extrinsic",
                         "incentives", "wall_s") if c in df.columns]
    print(df[shown].to_string(index=False))
    wide = df.pivot(index="seed", columns="scenario", values="collective")
    lio, ac = pre + "lio", pre + "ac"
    if {lio, ac} <= set(wide.columns):
        wide["lio/ac"] = wide[lio] / wide[ac].where(wide[ac] != 0)
        means = df.groupby("scenario").collective.mean()
        ratio = means[lio] / means[ac] if means[ac] else float("inf")
        print(f"\nMean collective: LIO {means[lio]:.2f}, AC {means[ac]:.2f}, ratio {ratio:.2f}"
              " (acceptance on 7x7: >= 1.5)")
    mg, dual = pre + "metagrad", pre + "dualrl"
    if {mg, dual} <= set(wide.columns):
        means = df.groupby("scenario").collective.mean()
        print(f"\nMean collective (extrinsic - incentives): MetaGrad {means[mg]:.2f}, "
              f"dual-RL (c) {means[dual]:.2f}")
    print("\nCollective per seed:")
    print(wide.round(2).to_string())
    dol = division_of_labour(df, args.root)
    print("\nDivision of labour (final evaluation, per agent, mean per episode):")
    print(dol.round(2).to_string(index=False))
    split = splits(dol)
    print(f"\nSplit (one agent cleans >= {SPLIT:g} cells, another collects >= {SPLIT:g} "
          "apples):")
    print(split.round(2).to_string(index=False))
    timeline = training_splits(df, args.root)
    if len(timeline):
        print(f"\nThe split over training (per logged row: a mean over log_every iterations; "
              f"breaks: at least {BREAK_ITERATIONS} iterations without it; end_share: rows "
              "with it over the last tenth):")
        print(timeline.drop(columns=SETTINGS).round(2).to_string(index=False))
        for name, t in timeline.groupby("scenario", sort=False):
            gather_csv(t.drop(columns="scenario"), Path(args.docs) / f"{name}_splits.csv",
                       ["seed"], SETTINGS, ["seed"])
    resp = responses(df, args.root)
    if len(resp):
        print("\nWhat the incentive functions pay per step for cleaning and for not cleaning "
              f"({RESPONSE_EPISODES} greedy episodes per seed from the last checkpoint):")
        print(resp.round(3).to_string(index=False))
        for name, r in resp.groupby("scenario", sort=False):
            gather_csv(r.drop(columns="scenario"), Path(args.docs) / f"{name}_incentives.csv",
                       ["seed"], SETTINGS, ["seed", "giver", "recipient"])
    over = responses(df, args.root, kept=True)
    for name, r in over.groupby("scenario", sort=False) if len(over) else ():
        r = gather_csv(r.drop(columns="scenario"),
                       Path(args.docs) / f"{name}_incentives_by_checkpoint.csv", ["seed"],
                       SETTINGS, ["seed", "iteration", "giver", "recipient"])
        plot_responses(name, r, Path(args.docs) / f"{name}_incentives_by_checkpoint.png")
    curves = training(df, args.root)
    for name, c in curves.groupby("scenario", sort=False) if len(curves) else ():
        c = gather(c.drop(columns="scenario"), Path(args.docs) / f"{name}_training.csv")
        plot_training(name, c, Path(args.docs) / f"{name}_training.png")
    plot_comparison(Path(args.docs), pre, Path(args.docs) / f"{pre}comparison.png")
    return df, dol


if __name__ == "__main__":
    main()
