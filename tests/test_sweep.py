"""econsim.sweep and `econsim sweep`: a grid of runs on a spawn process pool and on Ray, the
same tables from both, failures reported while the other runs finish."""

import json

import numpy as np
import pandas as pd
import pytest

from econsim import analysis, cli
from econsim.errors import ScenarioError
from econsim.sweep import combinations, parse_set, run_ids, set_path, sweep
from tests.reference import small

GRID = {"mechanism.rate": [0.1, 0.5]}


def flat30():
    return small("gtb_flat30", 1, eval_episodes=1, ppo=True)


@pytest.fixture(scope="session")
def ray_cluster():
    """One local Ray cluster per pytest run (Ray has no local mode any more)."""
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def local_sweep(tmp_path_factory):
    root = tmp_path_factory.mktemp("local")
    df = sweep(flat30(), GRID, seeds=[0, 1], backend="local", workers=2, root=root,
               sweep_id="s")
    return root, df


def test_grid_parsing():
    assert parse_set("mechanism.rate=0.1,0.3") == ("mechanism.rate", [0.1, 0.3])
    assert parse_set("mechanism.name=flat,us_federal")[1] == ["flat", "us_federal"]
    assert parse_set("env.tax_rates=[0.1, 0.2],[0.3,0.4]")[1] == [[0.1, 0.2], [0.3, 0.4]]
    assert parse_set('algorithm.planner_reward="welfare",true')[1] == ["welfare", True]
    for bad in ("mechanism.rate", "=0.1", "mechanism.rate=0.1,{", "a..b=1"):
        with pytest.raises(ValueError, match="--set"):
            parse_set(bad)
    combos = combinations({"a.x": [1, 2], "b.y": ["u", "v"]})
    assert combos == [{"a.x": 1, "b.y": "u"}, {"a.x": 1, "b.y": "v"},
                      {"a.x": 2, "b.y": "u"}, {"a.x": 2, "b.y": "v"}]
    assert run_ids("sw", combos[:2]) == ["sw-00-yu", "sw-01-yv"]
    data = {"mechanism": None, "train": {"iterations": 3}, "seeds": [0]}
    set_path(data, "mechanism.rate", 0.2)
    assert data["mechanism"] == {"rate": 0.2}
    with pytest.raises(ValueError, match="seeds cannot be swept"):
        set_path(data, "seeds", [1])
    with pytest.raises(ValueError, match="train.iterations is a value"):
        set_path(data, "train.iterations.x", 1)


@pytest.mark.slow
def test_local_sweep_writes_one_run_per_combination(local_sweep):
    root, df = local_sweep
    assert list(df.run_id) == ["s-00-rate0.1", "s-01-rate0.5"]
    assert list(df["mechanism.rate"]) == [0.1, 0.5]
    assert (df.status == "finished").all() and (df.error == "").all()
    assert (df.seeds == "0,1").all() and df.welfare_sum.gt(0).all()
    assert df.tax_revenue.iloc[1] > df.tax_revenue.iloc[0]
    assert json.loads((root / "s-01-rate0.5" / "sweep.json").read_text()) == {
        "sweep": "s", "params": {"mechanism.rate": 0.5}}
    periods = analysis.tidy(root=root)
    assert set(periods.seed) == {0, 1} and set(periods.sweep) == {"s"}
    assert np.allclose(periods.mechanism_rate, periods.top_rate)
    ep = analysis.episode_table(["s-*"], root=root)
    assert len(ep) == 4 and "mechanism_rate" in ep
    with pytest.warns(analysis.FewClustersWarning):  # 2 seeds
        fit = analysis.regress("welfare_sum ~ mechanism_rate", ep, cluster="seed")
    assert fit.n_clusters == 2


@pytest.mark.slow
def test_ray_backend_gives_identical_tables(local_sweep, ray_cluster, tmp_path):
    root, local = local_sweep
    remote = sweep(flat30(), GRID, seeds=[0, 1], backend="ray", root=tmp_path,
                   sweep_id="s")
    assert ray_cluster.is_initialized()  # a cluster it did not start is left running
    drop = ["wall_s"]
    pd.testing.assert_frame_equal(local.drop(columns=drop), remote.drop(columns=drop))
    for table in ("periods", "episodes"):
        a = analysis.tidy(root=root, table=table)
        b = analysis.tidy(root=tmp_path, table=table)
        assert len(a) > 0
        pd.testing.assert_frame_equal(a.drop(columns=["run_id"]), b.drop(columns=["run_id"]))


@pytest.mark.slow
def test_inline_backend_gives_identical_tables(local_sweep, tmp_path):
    """One run after another in this process (the app's experiments): the same runs."""
    root, local = local_sweep
    calls = []
    inline = sweep(flat30(), GRID, seeds=[0, 1], backend="inline", root=tmp_path,
                   sweep_id="s", on_iteration=lambda t, d, n: calls.append((t["params"], d, n)))
    total = flat30().train.iterations
    assert calls == [({"mechanism.rate": r}, d, total) for r in GRID["mechanism.rate"]
                     for d in range(1, total + 1)]  # each training iteration, run by run
    pd.testing.assert_frame_equal(local.drop(columns=["wall_s"]),
                                  inline.drop(columns=["wall_s"]))
    a, b = (analysis.tidy(root=r, table="periods") for r in (root, tmp_path))
    pd.testing.assert_frame_equal(a.drop(columns=["run_id"]), b.drop(columns=["run_id"]))


@pytest.mark.slow
def test_failures_are_reported_and_the_other_runs_finish(tmp_path):
    grid = {"mechanism.rate": [0.2, 0.5, 2.0]}
    with pytest.raises(ScenarioError, match=r"mechanism.rate=2.0: .*rates must lie in \[0, 1\]"
                       ) as err:
        sweep(flat30(), grid, seeds=[0], root=tmp_path)
    assert "\n" not in str(err.value) and not any(tmp_path.iterdir())  # nothing ran
    ids = run_ids("bad", combinations(grid))
    (tmp_path / ids[1]).mkdir()  # a leftover folder: that run fails, the others finish
    df = sweep(flat30(), grid, seeds=[0], root=tmp_path, sweep_id="bad",
               skip_invalid=True, workers=2)
    assert list(df.status) == ["finished", "failed", "invalid"]
    assert "already exists" in df.error.iloc[1] and "rates must lie" in df.error.iloc[2]
    assert df.error.iloc[0] == "" and df.welfare_sum.iloc[0] > 0
    # the same sweep again keeps the finished run
    again = sweep(flat30(), grid, seeds=[0], root=tmp_path, sweep_id="bad",
                  skip_invalid=True)
    assert list(again.status) == ["existing", "failed", "invalid"]
    assert again.welfare_sum.iloc[0] == pytest.approx(df.welfare_sum.iloc[0])


@pytest.mark.slow
def test_cli_sweep_smoke(tmp_path, capsys):
    path = tmp_path / "tiny_flat30.toml"
    path.write_text(flat30().to_toml())
    root = str(tmp_path / "runs")
    assert cli.main(["--root", root, "sweep", str(path), "--seeds", "0-1",
                     "--set", "mechanism.rate=0.1,0.4", "--iterations", "1",
                     "--sweep-id", "cli", "--workers", "2"]) == 0
    out = capsys.readouterr().out
    assert "sweep cli: 2 of 2 runs finished" in out and "cli-01-rate0.4" in out
    assert "finished" in out and "welfare_sum" in out
    assert cli.main(["--root", root, "regress", "welfare_sum ~ mechanism_rate",
                     "--runs", "cli-*"]) == 0
    assert "mechanism_rate" in capsys.readouterr().out
    assert cli.main(["--root", root, "sweep", str(path), "--set", "mechanism.rat=0.1"]) == 2
    err = capsys.readouterr().err
    assert "mechanism.rat: unknown field (allowed: thresholds, rate)" in err
    assert err.count("\n") == 1
    assert cli.main(["--root", root, "sweep", str(path), "--set", "rate"]) == 2


def test_cli_sweep_rejects_unknown_backend(tmp_path, capsys):
    assert cli.main(["sweep", "gtb_flat30", "--backend", "dask"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "argument --backend: invalid choice: 'dask'" in err


def test_experiment_report_compares_the_combinations_across_seeds(local_sweep):
    from econsim import report, uncertainty
    from econsim.sweep import by_combination, rerun_command

    root, df = local_sweep
    its = flat30().train.iterations
    episodes = analysis.episode_table(df.run_id.tolist(), root=root)
    data = by_combination(df, episodes, GRID)
    assert list(dict.fromkeys(data.combination)) == ["mechanism.rate=0.1", "mechanism.rate=0.5"]
    page = report.experiment_report(df, episodes, GRID, "gtb_flat30", [0, 1], its,
                                    ["welfare_sum", "productivity"],
                                    baseline="mechanism.rate=0.1", sweep_id="s")
    assert page.startswith("<!DOCTYPE html>") and "<script" not in page
    conf = uncertainty.confidence(data, ["welfare_sum"], "combination")
    first = conf.iloc[0]
    assert f"{first['mean']:,.3f} [{first.ci_low:,.3f}, {first.ci_high:,.3f}]" in page
    assert "Paired differences to mechanism.rate=0.1" in page
    assert rerun_command("gtb_flat30", GRID, [0, 1], its, "s") in page
    rates = ",".join(map(str, GRID["mechanism.rate"]))
    assert rerun_command("gtb_flat30", GRID, [0, 1], its, "s") == (
        f"econsim sweep gtb_flat30 --set mechanism.rate={rates} --seeds 0,1 --iterations "
        f"{its} --sweep-id s")
    with pytest.raises(ValueError, match="baseline 'x' is not among the combinations"):
        report.experiment_report(df, episodes, GRID, "gtb_flat30", [0, 1], its,
                                 ["welfare_sum"], baseline="x")
    # the command parses: the grid and seeds come back from econsim's own parser
    args = cli.build_parser().parse_args(rerun_command("gtb_flat30", GRID, [0, 1], 1).split()[1:])
    assert [parse_set(t) for t in args.sets] == list(GRID.items()) and args.seeds == "0,1"
