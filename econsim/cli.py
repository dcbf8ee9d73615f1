"""``econsim`` command line: list, run, export, sweep, regress, bench, demo.

Bad input (a wrong scenario field, an unknown env, a missing run) prints one line on stderr
naming what is wrong and what is allowed, and exits with status 2; nothing is written.
Training that diverges (a NaN or inf loss or parameter) also exits with status 2, after
marking the run failed. The runs folder is ``--root`` (before or after the subcommand),
else ``$ECONSIM_RUNS``, else ``runs``; a folder in it that is not a usable run is skipped
with a one-line warning.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import signal
import sys
import warnings

import pandas as pd

from econsim.bounds import MAX_SEEDS
from econsim.errors import ScenarioError, StoreWarning, short

ROOT_HELP = "folder holding run folders (default: $ECONSIM_RUNS, else runs)"


_SEED_PART = re.compile(r"([0-9]+)(?:-([0-9]+))?")  # ASCII digits only


def parse_seeds(text: str) -> list[int]:
    """``"0-4"`` -> [0..4]; ``"1,3,5"`` -> [1, 3, 5]; ``"7"`` -> [7]. The seeds must pass
    ``scenario.check_seeds`` (at most ``MAX_SEEDS`` distinct seeds in ``[0, 2^32)``);
    anything else (``1-``, ``''``, ``5-3``, digits other than 0-9) is a one-line
    ``ScenarioError``."""
    from econsim.scenario import check_seeds

    shown = short(repr(text))
    too_many = ScenarioError(f"--seeds: {shown} is not allowed: at most {MAX_SEEDS} seeds")
    seeds: list[int] = []
    for part in str(text).split(","):
        m = _SEED_PART.fullmatch(part.strip())
        if m is None or (m.group(2) is not None and int(m.group(2)) < int(m.group(1))):
            raise ScenarioError(f"--seeds: {shown} is not allowed (use e.g. 0-4 or 0,2,5)")
        first, last = int(m.group(1)), int(m.group(2) or m.group(1))
        if last - first >= MAX_SEEDS or len(seeds) > MAX_SEEDS:  # before building 0-99999999
            raise too_many
        seeds.extend(range(first, last + 1))
    if len(seeds) > MAX_SEEDS:
        raise too_many
    try:
        return check_seeds(seeds)  # the rule of every run's seeds
    except ScenarioError:
        raise ScenarioError(f"--seeds: {shown} is not allowed: seeds must be distinct "
                            "integers in [0, 2^32)") from None


def _table(df: pd.DataFrame) -> str:
    return df.to_string(index=False) if not df.empty else "(none)"


def cmd_list(args) -> int:
    import learners
    from econsim import envs, scenario, store

    what = args.what
    if what in ("all", "envs"):
        from econsim.core.capabilities import names_of

        print("envs (capabilities):")
        for name in envs.names():
            caps = ", ".join(names_of(envs.game_class(name))) or "-"
            print(f"  {name:<18} {caps}")
    if what in ("all", "algorithms"):
        print("algorithms: " + ", ".join(learners.algorithm_names()))
    if what in ("all", "scenarios"):
        print("scenarios:  " + ", ".join(scenario.names()))
    if what in ("all", "runs"):
        df = store.runs(args.root)
        print(f"runs in {args.root}/:")
        print(_table(df.drop(columns=["started"])))
    return 0


def summary(result) -> pd.DataFrame:
    """Final evaluation per seed: collective return and each agent's return; with a central
    designer, ``collective`` is the extrinsic return minus the incentives it paid, both shown;
    then the game's own episode metrics (its documented ``run_episodes`` columns)."""
    ev = result.agents.query("phase == 'eval'")
    last = ev[ev.iteration == ev.iteration.max()]
    wide = last.pivot_table(index="seed", columns="agent", values="return")
    wide.columns = [f"agent{c}" for c in wide.columns]
    wide.insert(0, "collective", wide.sum(axis=1))
    eps = result.episodes.query("phase == 'eval'")
    if {"extrinsic", "incentives"} <= set(eps.columns):
        final = eps[eps.iteration == eps.iteration.max()].groupby("seed")
        wide["collective"] = final.collective.mean()
        wide.insert(1, "extrinsic", final.extrinsic.mean())
        wide.insert(2, "incentives", final.incentives.mean())
    if not eps.empty:  # the game's own episode metrics (e.g. contribution_rate)
        from econsim import dictionary

        final = eps[eps.iteration == eps.iteration.max()].groupby("seed")
        for col in eps.columns:
            if dictionary.game_column("run_episodes", col) and eps[col].notna().any():
                wide[col] = final[col].mean()
    return wide.reset_index().round(3)


def parse_fork(text: str | None) -> tuple[str, int] | None:
    """``RUN_ID@ITERATION`` (``--fork``) as (run id, iteration); a one-line error otherwise."""
    if text is None:
        return None
    rid, at, it = text.rpartition("@")
    if not at or not rid or not (it.isascii() and it.isdigit()):
        raise ScenarioError(f"--fork: {text!r} is not RUN_ID@ITERATION (e.g. "
                            "cleanup7_lio-20261205-001500-ab12@13500)")
    return rid, int(it)


def cmd_run(args) -> int:
    from econsim import runner

    seeds = parse_seeds(args.seeds) if args.seeds is not None else None
    result = runner.run(args.scenario, seeds=seeds, progress=not args.quiet, root=args.root,
                        resume=args.resume if args.resume is not None else None,
                        iterations=args.iterations, fork=parse_fork(args.fork))
    print(f"\n{result.scenario.name}: {result.scenario.description}")
    print(f"final evaluation (ε = 0, {result.scenario.train.eval_episodes} episodes per seed):")
    print(_table(summary(result)))
    print(f"\nrun {result.run_id} in {result.wall_s:.1f} s; files in {result.path}/")
    for f in ("scenario.toml", "episodes.parquet", "agents.parquet", "log.jsonl"):
        print(f"  {result.path / f}")
    return 0


def cmd_export(args) -> int:
    from econsim import dictionary, store

    def write_dictionary(folder):
        """The data dictionary (table, column, unit, meaning) next to the tables."""
        names = [t for t in store.TABLES if store.table_file(args.run, t, args.root)]
        frames = {name: store.load(args.run, name, args.root) for name in names}
        name = f"{args.run}-dictionary.csv"
        return dictionary.write(folder / name if args.out else store.inside(folder, name),
                                frames, dictionary.RUN_KINDS)

    for path in store.export(args.run, args.format, args.out, args.root,
                             also=write_dictionary):
        print(path)
    return 0


def parse_reference(items: list[str] | None) -> dict[str, str]:
    """``["mechanism=us_federal"]`` -> ``{"mechanism": "us_federal"}`` (``--reference``)."""
    out: dict[str, str] = {}
    for item in items or []:
        col, sep, level = item.partition("=")
        if not sep or not col.strip() or not level.strip():
            raise ValueError(f"--reference: {item!r} is not allowed (use COLUMN=LEVEL, e.g. "
                             "mechanism=us_federal)")
        out[col.strip()] = level.strip()
    return out


def cmd_regress(args) -> int:
    import warnings

    from econsim import analysis, bootstrap

    if args.out:
        analysis.check_output(args.out)  # before any work: a one-line error, not one after
    reference = parse_reference(args.reference)
    bootstrap.check_draws(args.draws)  # before reading any run
    which = analysis.evaluation_label(args.evaluations)  # refuses a bad value first
    if args.table == "episodes":
        data = analysis.episode_table(args.runs, root=args.root, evaluations=args.evaluations)
    else:
        data = analysis.tidy(args.runs, args.table, root=args.root,
                             evaluations=args.evaluations)
    cluster = None if args.cluster.lower() == "none" else args.cluster
    boot = {"auto": "auto", "on": True, "off": False}[args.bootstrap]
    with warnings.catch_warnings():  # the summary and stderr say it once
        warnings.simplefilter("ignore", analysis.FewClustersWarning)
        fit = analysis.regress(args.formula, data, cluster=cluster, reference=reference,
                               bootstrap=boot, draws=args.draws, weights=args.weights)
    runs = data.run_id.nunique() if "run_id" in data else 0
    print(f"{args.table} table of {runs} run(s), {which}: {len(data)} rows ({fit.nobs} used)")
    print(fit.summary_text())
    for w in fit.warnings:
        print(f"econsim: warning: {w}", file=sys.stderr)
    if args.out:
        print(f"coefficients written to {fit.to_csv(args.out)}")
    return 0


def cmd_sweep(args) -> int:
    from econsim import scenario, sweep

    grid: dict[str, list] = {}
    for text in args.sets:
        path, values = sweep.parse_set(text)
        if path in grid:
            raise ValueError(f"--set: {path} is given twice (list all values in one --set)")
        grid[path] = values
    seeds = parse_seeds(args.seeds) if args.seeds is not None else None
    sweep_id = args.sweep_id or sweep.new_sweep_id(scenario.load(args.scenario).name)
    n = len(sweep.combinations(grid))
    if not args.quiet:
        print(f"sweep {sweep_id}: {n} run(s), seeds {args.seeds or 'of the scenario'}, "
              f"backend {args.backend}, {args.workers} at a time", flush=True)
    try:
        df = sweep.sweep(args.scenario, grid, seeds, backend=args.backend,
                         workers=args.workers, root=args.root, iterations=args.iterations,
                         sweep_id=sweep_id, skip_invalid=args.skip_invalid,
                         progress=not args.quiet)
    except KeyboardInterrupt:
        print(f"econsim: interrupted; the same command with --sweep-id {sweep_id} keeps "
              "the finished runs and resumes the others", file=sys.stderr)
        return 130
    bad = df[~df.status.isin(["finished", "existing"])]
    show = df.drop(columns=["error"] if bad.empty else [])
    print(f"\nsweep {sweep_id}: {len(df) - len(bad)} of {len(df)} runs finished "
          f"(final evaluation, mean over seeds {show.seeds.iloc[0] if len(show) else ''})")
    with pd.option_context("display.max_colwidth", 120, "display.width", 200):
        print(_table(show.drop(columns=["seeds"]).round(3)))
    print(f"\nrun folders: {args.root}/{sweep_id}-*; analyse with e.g.\n"
          f"  econsim --root {args.root} regress \"welfare_sum ~ top_rate\" "
          f"--runs '{sweep_id}-*'")
    return 1 if len(bad) else 0


def cmd_bench(args) -> int:
    from econsim import bench

    out = bench.json_path(args.json) if args.json else None
    if args.dense and not args.train:
        raise ValueError("bench --dense: only with --train SCENARIO")
    if args.train:
        if args.games:
            raise ValueError("bench --train: give the scenario only, no games")
        row = bench.train_throughput(args.train, args.iterations,
                                     parse_seeds(args.seeds) if args.seeds else None,
                                     dense=args.dense)
        df = pd.DataFrame([row])
        print(f"training {row['scenario']} end to end ({row['iterations']} iteration(s) after "
              f"a warm-up, {row['seeds']} seed(s), {row['threads']} torch thread(s)): "
              f"{row['env_steps_per_s']:,} env-steps/s; of the time {row['env_share']:.0%} in "
              f"the game, {row['inference_share']:.0%} in inference, {row['update_share']:.0%}"
              f" in the update; the learner at {row['learner_gflops']} GFLOP/s against a "
              f"{row['matmul_peak_gflops']} GFLOP/s matrix product on this machine"
              + (" (every input dense)" if args.dense else ""))
        if out is not None:
            used = {"train": args.train, "iterations": args.iterations, "seeds": args.seeds,
                    "dense": args.dense}
            print(f"wrote {bench.write_json(out, df, used)}")
        print(_table(df))
        return 0
    settings = {"batch": args.batch, "seconds": args.seconds, "rounds": args.rounds,
                "warmup": args.warmup, "sampler": args.sampler}
    df = bench.speed_table(args.games or None, **settings)
    batch = f", batch {args.batch}" if args.batch else ""
    print(f"env-steps/s with random {args.sampler} actions{batch}: median [min, max] of "
          f"{args.rounds} round(s) of {args.seconds:g} s after {args.warmup:g} s warm-up "
          "(one env-step = one world step, observed):")
    if out is not None:
        print(f"wrote {bench.write_json(out, df, settings)}")
    shown = df.copy()
    for c in ("env_steps_per_s", "min", "max", "agent_steps_per_s", "steps"):
        shown[c] = shown[c].map("{:,}".format)
    print(_table(shown))
    return 0


def cmd_demo(args) -> int:
    from econsim import demo

    demo.main(root=args.root, quick=args.quick)
    return 0


class UsageError(Exception):
    """A command line argparse refuses (unknown option, bad value, missing argument)."""


class Parser(argparse.ArgumentParser):
    """argparse, whose errors are one ``econsim: error: ...`` line (see :func:`main`)
    instead of the usage text and ``econsim run: error: ...``."""

    def error(self, message: str):  # type: ignore[override]
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="econsim", description=__doc__.splitlines()[0])
    p.add_argument("--root", default=None, help=ROOT_HELP)
    # every subcommand takes --root too; given there, it wins over the one before
    common = Parser(add_help=False)
    common.add_argument("--root", default=argparse.SUPPRESS, help=ROOT_HELP)
    sub = p.add_subparsers(dest="command", required=True)

    def add(name: str, **kwargs) -> argparse.ArgumentParser:
        return sub.add_parser(name, parents=[common], **kwargs)

    s = add("list", help="list envs, algorithms, scenarios and runs")
    s.add_argument("what", nargs="?", default="all",
                   choices=["all", "envs", "algorithms", "scenarios", "runs"])
    s.set_defaults(func=cmd_list)

    s = add("run", help="train and evaluate a scenario")
    s.add_argument("scenario",
                   help="scenario file, or name of a shipped one (econsim list scenarios)")
    s.add_argument("--seeds", help="e.g. 0-4 or 0,2,5 (default: the scenario's)")
    s.add_argument("--iterations", type=int, help="override train.iterations")
    s.add_argument("--resume", nargs="?", const=True, default=None, metavar="RUN_ID",
                   help="continue a killed or interrupted run (default: the newest one of this "
                   "scenario that is running or interrupted)")
    s.add_argument("--fork", metavar="RUN_ID@ITERATION",
                   help="a new run from the checkpoint a stored run kept at that iteration "
                   "(train.keep_every), with this scenario's settings from there on")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.set_defaults(func=cmd_run)

    s = add("export", help="write a run's tables as CSV, Parquet or Stata (.dta, labelled)")
    s.add_argument("run", help="run id (see `econsim list runs`)")
    s.add_argument("--format", default="csv", choices=["csv", "parquet", "dta"])
    s.add_argument("--out", help="output folder (default: <root>/<run>/export)")
    s.set_defaults(func=cmd_export)

    from econsim.sweep import BACKENDS

    s = add(
        "sweep", help="a grid of runs: every combination of --set values, all seeds in each",
        description="Run SCENARIO once per combination of the --set values (all seeds as "
        "vectorised replicas in each run, like `econsim run`); each run writes its own "
        "folder <root>/<sweep-id>-<nn>-<values>/. Every combination is validated before "
        "anything runs. Exit status: 0 all finished, 1 some run failed (the others "
        "finish), 2 bad input.")
    s.add_argument("scenario",
                   help="scenario file, or name of a shipped one (econsim list scenarios)")
    s.add_argument("--seeds", help="e.g. 0-7 or 0,2,5 (default: the scenario's)")
    s.add_argument("--set", dest="sets", action="append", default=[], metavar="PATH=V1,V2",
                   help="dotted path into the scenario and its values as TOML, e.g. "
                   "mechanism.rate=0.1,0.3 or algorithm.hidden=[64],[128]; repeat for a grid")
    s.add_argument("--backend", default="local", choices=BACKENDS,
                   help="local: process pool (default); ray: Ray tasks (pip install "
                   "'econsim[ray]')")
    s.add_argument("--workers", type=int, default=2, help="runs at a time (default: 2)")
    s.add_argument("--iterations", type=int, help="override train.iterations")
    s.add_argument("--sweep-id", help="name of the sweep and prefix of its run folders "
                   "(default: SCENARIO-sweep-<time>-<hex>); reusing one keeps finished runs "
                   "and resumes unfinished ones")
    s.add_argument("--skip-invalid", action="store_true",
                   help="run the valid combinations and report the invalid ones")
    s.add_argument("--quiet", action="store_true", help="no line per finished run")
    s.set_defaults(func=cmd_sweep)

    s = add(
        "regress", help="OLS (statsmodels formula) on runs' tables, SEs clustered by seed",
        description="Fit FORMULA by OLS on the tidy table of the runs (final evaluation of "
        "each seed by default), with standard errors clustered by --cluster, and print the "
        "summary: coefficients, the covariance used (type, clusters, correction, degrees of "
        "freedom) and, with fewer than 10 clusters, a warning and wild cluster bootstrap "
        "p-values (p_boot). FORMULA allows column names, numbers, ~ + - * / : ** ( ), "
        "C(col) or C(col, Treatment(reference=\"level\")), I(arithmetic), log/exp/sqrt (or "
        "np.log/np.exp/np.sqrt), center(), standardize(); nothing else is evaluated. "
        "Columns: `econsim regress` prints them when a name is unknown; units and meanings: "
        "econsim.dictionary.")
    s.add_argument("formula", help='e.g. "welfare_sum ~ C(mechanism)"')
    s.add_argument("--runs", nargs="+", metavar="RUN",
                   help="run ids or patterns like 'SWEEP-*' (default: all runs in --root)")
    s.add_argument("--table", default="episodes", choices=["episodes", "periods", "agents"],
                   help="episodes: one row per seed x episode (default); periods: one row "
                   "per agent x tax period (GTB); agents: per agent x evaluation")
    s.add_argument("--evaluations", default="final", metavar="final|all|ITERATION",
                   help="final: the last evaluation of each seed (default); all: every "
                   "evaluation, with an iteration column; a number: the evaluation at that "
                   "iteration")
    s.add_argument("--cluster", default="seed",
                   help="column to cluster standard errors by (default: seed; 'none': "
                   "classical standard errors)")
    s.add_argument("--reference", action="append", metavar="COLUMN=LEVEL",
                   help="omitted category of a categorical column, e.g. "
                   "mechanism=us_federal (repeat for several columns)")
    s.add_argument("--bootstrap", default="auto", choices=["auto", "on", "off"],
                   help="wild cluster bootstrap p-values: auto = with fewer than 10 "
                   "clusters (default)")
    s.add_argument("--draws", type=int, default=999, help="bootstrap draws (default 999)")
    s.add_argument("--weights", default="webb", choices=["webb", "rademacher"],
                   help="bootstrap weights (default: webb, for few clusters)")
    s.add_argument("--out", help="also write the coefficient table (with the covariance "
                   "used) as CSV")
    s.set_defaults(func=cmd_regress)

    s = add("bench", help="env-steps/s of the game kernels with random actions",
            description="Time each game kernel: random actions (legal ones where the game "
            "has an action mask), step, reset finished worlds, observe; a warm-up, then "
            "rounds; the median, min and max env-steps/s, agent-steps/s and a checksum of "
            "the final state.")
    s.add_argument("games", nargs="*", help="subset of games (default: all)")
    s.add_argument("--batch", type=int, default=None,
                   help="worlds per step (default: what each game declares, else 4096)")
    s.add_argument("--seconds", type=float, default=1.0, help="per round (default: 1)")
    s.add_argument("--rounds", type=int, default=3, help="timed rounds (default: 3)")
    s.add_argument("--warmup", type=float, default=0.5,
                   help="seconds played before timing (default: 0.5)")
    s.add_argument("--sampler", default="masked", choices=["masked", "uniform"],
                   help="masked: uniform over the legal actions (games with an action "
                   "mask; default); uniform: over all actions")
    s.add_argument("--json", help="also write the table (with the settings and the machine) "
                   "to this .json file")
    s.add_argument("--train", metavar="SCENARIO", help="instead: training throughput of "
                   "SCENARIO end to end (env-steps/s, time in the game vs the learner, the "
                   "learner's GFLOP/s beside a measured matrix-product peak)")
    s.add_argument("--iterations", type=int, default=3,
                   help="with --train: timed iterations (default: 3, after one warm-up)")
    s.add_argument("--seeds", help="with --train: e.g. 0-2 (default: the scenario's)")
    s.add_argument("--dense", action="store_true", help="with --train: keep every input "
                   "dense (no sparse first layer; the same numbers, slower), to compare")
    s.set_defaults(func=cmd_bench)

    s = add("demo", help="short LIO vs PG run in the Iterated Prisoner's "
                       "Dilemma, then a Mesa replay")
    s.add_argument("--quick", action="store_true", help="a few seconds, for smoke tests")
    s.set_defaults(func=cmd_demo)
    return p


def _warning_printer():
    """A ``warnings.showwarning`` that prints each store warning (a skipped run folder) once,
    as one line on stderr, and other warnings as usual."""
    seen: set[str] = set()
    default = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        if not issubclass(category, StoreWarning):
            default(message, category, filename, lineno, file, line)
        elif str(message) not in seen:
            seen.add(str(message))
            print(f"econsim: warning: {message}", file=sys.stderr)

    return show


def _terminate(signum, frame) -> None:
    """SIGTERM ends the command as Ctrl-C does: a training run is marked interrupted."""
    raise KeyboardInterrupt


@contextlib.contextmanager
def terminate_as_interrupt():
    """While inside, SIGTERM raises KeyboardInterrupt (main thread only), so a training run
    stopped with ``kill`` is marked interrupted as after Ctrl-C (the CLI's commands and the
    benchmarks' runs)."""
    try:
        previous = signal.signal(signal.SIGTERM, _terminate)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _error(text: str) -> None:
    print(f"econsim: error: {' '.join(str(text).splitlines())}", file=sys.stderr)


def _internal(err: BaseException) -> str:
    """``<Type>: <first line of the message>`` (shortened), for the last-resort handler."""
    lines = str(err).strip().splitlines()
    return f"{type(err).__name__}: {short(lines[0] if lines else '', 300)}".rstrip(": ")


def main(argv: list[str] | None = None) -> int:
    """Run one command. Exit status: 0 done; 2 bad input (one ``econsim: error:`` line on
    stderr, nothing written); 1 anything else (one ``econsim: error: internal error: ...``
    line; ``ECONSIM_DEBUG=1`` shows the traceback instead); 130 interrupted."""
    from econsim import store

    debug = bool(os.environ.get("ECONSIM_DEBUG"))
    args = None
    with warnings.catch_warnings(), terminate_as_interrupt():
        warnings.simplefilter("always", StoreWarning)
        warnings.showwarning = _warning_printer()
        try:
            args = build_parser().parse_args(argv)
            args.root = str(store.root_path(args.root))
            return args.func(args)
        except UsageError as err:
            _error(str(err))
            return 2
        except (ScenarioError, ValueError) as err:
            if debug:
                raise
            _error(str(err))
            return 2
        except KeyboardInterrupt:
            hint = ("; resume with `econsim run SCENARIO --resume`"
                    if getattr(args, "command", None) == "run" else "")
            print(f"econsim: interrupted{hint}", file=sys.stderr)
            return 130
        except Exception as err:  # the last resort: one line, never a traceback
            if debug:
                raise
            _error(f"internal error: {_internal(err)} (set ECONSIM_DEBUG=1 for the "
                   "traceback)")
            return 1


if __name__ == "__main__":
    sys.exit(main())

