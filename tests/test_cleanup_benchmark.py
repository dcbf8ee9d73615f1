"""``benchmarks/cleanup.py`` on a tiny budget: the split table, the training curves' CSV
gathering seeds of separate invocations, the PNGs, what the incentive functions pay."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import torch

from benchmarks import cleanup as bench
from econsim import scenario


def test_split_needs_one_cleaner_and_another_harvester():
    dol = pd.DataFrame({"scenario": "s", "seed": [0, 0, 1, 1, 2, 2, 3, 3], "agent": [0, 1] * 4,
                        "waste_cleaned": [25.0, 1.0, 25.0, 0.0, 30.0, 19.0, 30.0, 22.0],
                        "apples": [0.0, 21.0, 30.0, 5.0, 0.0, 19.5, 25.0, 0.0]})
    out = bench.splits(dol)
    # seed 1: the cleaner's own apples do not count; seed 3: the second cleaner with the
    # top cleaner's apples does
    assert out.split.tolist() == [True, False, False, True]
    assert out.cleaner.tolist() == [0, 0, 0, 1] and out.harvester.tolist() == [1, 1, 1, 0]
    assert out.harvested.tolist() == [21.0, 5.0, 19.5, 25.0]


EVERY = 50  # iterations per logged training row in the timeline tests


def _team(seed: int, iteration: int, split: bool) -> list[dict]:
    """One logged row of a two-agent team: agent 0 cleans 30 cells; agent 1 collects 25
    apples with the split, 5 without."""
    return [{"scenario": "s", "seed": seed, "iteration": iteration, "agent": 0,
             "waste_cleaned": 30.0, "apples": 0.0},
            {"scenario": "s", "seed": seed, "iteration": iteration, "agent": 1,
             "waste_cleaned": 0.0, "apples": 25.0 if split else 5.0}]


def test_split_timeline_by_hand():
    """Logged rows every 50 iterations (each a mean over the 50 before it). Seed 0, to
    1,000: splits at 200-500, loses it for 550-850 (7 rows: 350 iterations, a break), has it
    at 900 and loses it for 950-1000 (100: noise, but the last tenth). Seed 1 never splits.
    Seed 2 splits from 100 and loses it for good at 700. Seed 3, logged to 950 only (a
    stopped run), splits at 400 and 650 only: 50-350 without it come before its first split
    (not a break), 450-600 is 200 iterations (not a break), 700-950 is 300 (a break, to its
    last row)."""
    on = {0: lambda i: 200 <= i <= 500 or i == 900, 1: lambda i: False,
          2: lambda i: 100 <= i < 700, 3: lambda i: i in (400, 650)}
    upto = {0: 1000, 1: 1000, 2: 1000, 3: 950}
    rows = [r for seed, f in on.items() for i in range(EVERY, upto[seed] + 1, EVERY)
            for r in _team(seed, i, f(i))]
    per_row = bench.splits(pd.DataFrame(rows), ("scenario", "seed", "iteration"))
    assert per_row.split.sum() == sum(f(i) for seed, f in on.items()
                                      for i in range(EVERY, upto[seed] + 1, EVERY))
    assert per_row.iteration.map(type).eq(int).all()  # keys come back as plain values
    out = bench.split_timeline(per_row.sample(frac=1.0, random_state=0))
    assert sorted(out.seed) == [0, 1, 2, 3]
    out = out.set_index("seed")
    assert (out.loc[0, "first"], out.loc[0, "last"]) == (200, 900)
    assert out.loc[0, "breaks"] == "550-850" and out.loc[0, "n_breaks"] == 1
    assert out.loc[0, "end_share"] == 0.0  # rows 950 and 1000
    assert pd.isna(out.loc[1, "first"]) and out.loc[1, "breaks"] == ""
    assert out.loc[1, "n_breaks"] == 0 and out["first"].dtype == "Int64"
    assert (out.loc[2, "first"], out.loc[2, "last"]) == (100, 650)
    assert out.loc[2, "breaks"] == "700-1000" and out.loc[2, "end_share"] == 0.0
    assert (out.loc[3, "first"], out.loc[3, "last"]) == (400, 650)
    assert out.loc[3, "breaks"] == "700-950" and out.loc[3, "n_breaks"] == 1
    assert out.loc[3, "end_share"] == 0.0  # rows after 855: 900 and 950


def test_a_break_is_at_least_the_threshold_long():
    """Off-stretches one row short of ``BREAK_ITERATIONS`` and exactly as long, rows every
    50 iterations: the first is not a break, the second is (each row stands for the 50
    iterations up to it)."""
    n = bench.BREAK_ITERATIONS // EVERY
    pattern = [True] + [False] * (n - 1) + [True] + [False] * n + [True]
    rows = [r for k, on in enumerate(pattern) for r in _team(0, EVERY * (k + 1), on)]
    out = bench.split_timeline(bench.splits(pd.DataFrame(rows), ("scenario", "seed",
                                                                  "iteration")))
    start = EVERY * (n + 2)  # rows 1 (on), n - 1 off, 1 on, then the long stretch
    assert out.breaks.tolist() == [f"{start}-{start + EVERY * (n - 1)}"]
    assert out.n_breaks.tolist() == [1]


def test_cleanup_benchmark_runs_on_a_tiny_budget(tmp_path):
    args = ["--scenarios", "cleanup7_lio", "--iterations", "2", "--root", str(tmp_path / "runs"),
            "--docs", str(tmp_path), "--quiet", "--seeds"]
    threads = torch.get_num_threads()
    try:
        df, dol = bench.main([*args, "0"])
        bench.main([*args, "1"])
        rows = len(pd.read_csv(tmp_path / "cleanup7_lio_training.csv"))
        bench.main([*args, "0", "--resume"])  # seed 0 again: its rows replaced
        with pytest.raises(SystemExit, match=r"holds runs with \['iterations', 'conv'\]"):
            bench.main([*args[:3], "3", *args[4:], "0"])  # another budget, same file
    finally:
        torch.set_num_threads(threads)  # the benchmark uses one
    assert df.seed.tolist() == [0] and set(dol.agent) == {0, 1}
    curve = pd.read_csv(tmp_path / "cleanup7_lio_training.csv")
    assert sorted(set(curve.seed)) == [0, 1] and len(set(curve.run)) == 2 and len(curve) == rows
    assert {"extrinsic", "cleaned", "harvested", "paid"} <= set(curve.columns)
    batch = scenario.load("cleanup7_lio").resolved()["algorithm"]["batch"]
    assert (curve.episodes == 2 * batch * curve.iteration).all()  # LIO: tau and tau-hat
    ag = pd.read_parquet(tmp_path / "runs" / df.run_id.iloc[0] / "agents.parquet")
    train = ag[ag.phase == "train"]
    last = train[train.iteration == train.iteration.max()]
    row = curve[(curve.seed == 0) & (curve.iteration == last.iteration.iloc[0])].iloc[0]
    assert row.extrinsic == last["return"].sum() and row.cleaned == last.waste_cleaned.max()
    assert row.paid == pytest.approx(last.given.sum())  # every payment is someone's receipt
    assert (tmp_path / "cleanup7_lio_training.png").stat().st_size > 1000
    assert (tmp_path / "cleanup7_comparison.png").stat().st_size > 1000
    resp = pd.read_csv(tmp_path / "cleanup7_lio_incentives.csv")
    n = len(set(dol.agent))  # every agent gives to every other, per seed
    assert sorted(set(resp.seed)) == [0, 1] and len(resp) == 2 * n * (n - 1)
    timeline = pd.read_csv(tmp_path / "cleanup7_lio_splits.csv")
    assert timeline.seed.tolist() == [0, 1] and (timeline.iterations == 2).all()


def test_incentive_response_by_hand():
    """Incentive functions that pay R_max x sigmoid(+-3) for "cleaned" (+3 on seed 0, -3 on
    seed 1) and R_max x sigmoid(0) for "did not clean" (one hidden path from the cleaned
    input; first-layer inputs: the 243-number image, then the other's [did not clean,
    cleaned]); outer-loss weights set per member, so each seed and giver must get its own."""
    from tests.reference import tiny

    trainer = tiny("cleanup7_lio").make_trainer([0, 1])
    eta, G = trainer.incentive.eta, trainer.incentive.G
    cleaned = trainer.agents.obs_dim + 1
    with torch.no_grad():
        for v in eta.values():
            v.zero_()
        eta["w0"][:, cleaned, 0] = 1.0
        eta["w1"][:, 0, 0] = 1.0
        eta["w2"][:G, 0, :] = 3.0  # members r * G + g: replica 0
        eta["w2"][G:, 0, :] = -3.0  # replica 1
    outer = trainer.outer_returns

    def known(batch):  # member r * N + i: 100 r + 10 i + 1 on every valid step
        w = torch.zeros_like(outer(batch))
        for m in range(w.shape[0]):
            w[m] = 100 * (m // trainer.N) + 10 * (m % trainer.N) + 1
        return w

    trainer.outer_returns = known
    out = bench.incentive_response(trainer, episodes=3)
    assert out[["seed", "giver", "recipient"]].values.tolist() == [
        [0, 0, 1], [1, 0, 1], [0, 1, 0], [1, 1, 0]]
    r_max = trainer.cfg.r_max
    sig = [1 / (1 + math.exp(-3.0)), 1 / (1 + math.exp(3.0))]
    assert out.pay_clean.tolist() == pytest.approx([r_max * sig[s] for s in out.seed])
    assert out.pay_other.tolist() == pytest.approx([r_max * 0.5] * 4)
    assert out.weight.tolist() == pytest.approx(
        [100 * s + 10 * g + 1 for s, g in zip(out.seed, out.giver, strict=True)])
    # as played: each step pays per what the recipient did
    expect = out.cleaned * out.pay_clean + (1 - out.cleaned) * out.pay_other
    assert out.paid.tolist() == pytest.approx(expect.tolist())
    assert ((out.cleaned >= 0) & (out.cleaned <= 1)).all()
    # each giver receives what the other pays it
    for seed in (0, 1):
        row = out[out.seed == seed].set_index("giver")
        assert row.loc[0, "received"] == pytest.approx(row.loc[1, "paid"])
        assert row.loc[1, "received"] == pytest.approx(row.loc[0, "paid"])
    onehot = tiny("cleanup7_lio", incentive_actions="onehot").make_trainer([0])
    with pytest.raises(ValueError, match="incentive_actions = 'features'"):
        bench.incentive_response(onehot)


def test_incentives_followed_over_the_kept_checkpoints(tmp_path):
    """``--keep-every``: the incentive table at every kept checkpoint, as the one from the
    last checkpoint is at the end, and its figure."""
    threads = torch.get_num_threads()
    try:
        bench.main(["--scenarios", "cleanup7_lio", "--iterations", "2", "--keep-every", "1",
                    "--root", str(tmp_path / "runs"), "--docs", str(tmp_path), "--quiet",
                    "--seeds", "0"])
    finally:
        torch.set_num_threads(threads)
    over = pd.read_csv(tmp_path / "cleanup7_lio_incentives_by_checkpoint.csv")
    last = pd.read_csv(tmp_path / "cleanup7_lio_incentives.csv")
    n = scenario.load("cleanup7_lio").resolved()["env"]["n_agents"]
    pairs = n * (n - 1)  # every agent gives to every other
    assert over.iteration.tolist() == [it for it in (1, 2) for _ in range(pairs)]
    end = over[over.iteration == 2].drop(columns="iteration").reset_index(drop=True)
    pd.testing.assert_frame_equal(end, last)
    assert (tmp_path / "cleanup7_lio_incentives_by_checkpoint.png").stat().st_size > 1000
    assert bench.plot_comparison(tmp_path, "cleanup7_", tmp_path / "c.png") == ["cleanup7_lio"]
    source = pd.read_csv(tmp_path / "cleanup7_lio_training.csv").run.iloc[0]
    fork = ["--scenarios", "cleanup7_lio", "--iterations", "3", "--fork", f"{source}@1",
            "--root", str(tmp_path / "runs"), "--docs", str(tmp_path / "fork"), "--quiet",
            "--seeds", "0"]
    try:
        df, _ = bench.main(fork)
        again, _ = bench.main([*fork, "--resume"])  # the finished fork, not the source
    finally:
        torch.set_num_threads(threads)
    assert again.run_id.tolist() == df.run_id.tolist() != [source]
    curve = pd.read_csv(tmp_path / "fork" / "cleanup7_lio_training.csv")
    assert curve.iteration.min() > 1  # the fork's own iterations


def test_comparison_draws_the_curves_that_count_episodes(tmp_path):
    rows = {"seed": [0, 0, 1, 1], "iteration": [50, 100] * 2, "extrinsic": [1.0, 2, 3, 4]}
    pd.DataFrame({**rows, "episodes": [100, 200] * 2}).to_csv(
        tmp_path / "cleanup7_lio_training.csv", index=False)
    pd.DataFrame(rows).to_csv(tmp_path / "cleanup7_ac_training.csv", index=False)  # older
    pd.DataFrame({**rows, "episodes": [50, 100] * 2}).to_csv(
        tmp_path / "cleanup10_ia_training.csv", index=False)  # the other map
    out = tmp_path / "cmp.png"
    assert bench.plot_comparison(tmp_path, "cleanup7_", out) == ["cleanup7_lio"]
    assert out.stat().st_size > 1000
    assert bench.plot_comparison(tmp_path, "cleanup8_", tmp_path / "none.png") == []
    assert not (tmp_path / "none.png").exists()


def test_a_designers_curve_counts_what_the_designer_paid(tmp_path):
    """The agents of a central designer give nothing; ``paid`` in the curves is what they
    received, the designer's ``incentives`` per episode (LIO: what the givers gave)."""
    threads = torch.get_num_threads()
    try:
        df, _ = bench.main(["--scenarios", "cleanup7_dualrl", "--iterations", "2", "--seeds",
                            "0", "--root", str(tmp_path / "runs"), "--docs", str(tmp_path),
                            "--quiet"])
    finally:
        torch.set_num_threads(threads)
    curve = pd.read_csv(tmp_path / "cleanup7_dualrl_training.csv")
    ep = pd.read_parquet(tmp_path / "runs" / df.run_id.iloc[0] / "episodes.parquet")
    ep = ep[ep.phase == "train"].set_index("iteration")
    assert len(curve) and (curve.paid > 0).all()  # sigmoid offers: never exactly 0
    assert curve.set_index("iteration").paid.to_numpy() == pytest.approx(
        ep.loc[curve.iteration, "incentives"].to_numpy())


def test_a_killed_benchmark_run_is_marked_interrupted_and_resumes(tmp_path):
    """SIGTERM (``kill``) in a benchmark's run marks it interrupted, as Ctrl-C does, and
    ``--resume`` continues it."""
    import json
    import os
    import signal

    from benchmarks import common

    def kill_at_two(done: int, total: int) -> None:
        if done == 2:
            os.kill(os.getpid(), signal.SIGTERM)

    with pytest.raises(KeyboardInterrupt):
        common.run_scenarios(["ipd_pg"], [0], 6, tmp_path, progress=kill_at_two,
                             checkpoint_every=1)
    (run,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert json.loads((run / "run.json").read_text())["status"] == "interrupted"
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # put back
    df = common.run_scenarios(["ipd_pg"], [0], 6, tmp_path, progress=False,
                              checkpoint_every=1, resume=True)
    assert df.run_id.tolist() == [run.name] and df.iterations.tolist() == [6]


def test_td_probe_sets_the_last_step_apart(tmp_path):
    """``benchmarks/cleanup_td.py``: the same episodes (same seed) give the same TD errors
    before the last step whatever ``bootstrap_time_limit``; on the last step the terminal
    default reads nothing after it and ``true`` the target's V after it (here shifted to
    0.5), so they differ; LIO givers also get their outer weight; a wrong run id is one
    line."""
    from benchmarks import cleanup_td
    from tests.reference import tiny

    out = {}
    for boot in (False, True):
        trainer = tiny("cleanup7_lio", bootstrap_time_limit=boot).make_trainer([0, 1])
        for v in trainer.agents.target.values():
            v.data.add_(0.5)
        out[boot] = cleanup_td.td_by_step(trainer, episodes=2)
    plain, boot = out[False], out[True]
    assert len(plain) == 2 * trainer.N  # seeds x agents
    assert (plain[["apples", "waste_cleaned"]] >= 0).all().all()
    pd.testing.assert_frame_equal(plain.drop(columns=["td_last", "weight_last"]),
                                  boot.drop(columns=["td_last", "weight_last"]))
    assert (plain.td_last - boot.td_last).abs().min() > 1e-3
    assert plain[["weight_before_last", "weight_last"]].notna().all().all()
    with pytest.raises(SystemExit, match="not found"):
        cleanup_td.main(["no-such-run", "--root", str(tmp_path)])
