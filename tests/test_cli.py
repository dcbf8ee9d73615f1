"""The `econsim` command line (list, run, export, bench, demo); benchmarks on a tiny budget."""

import importlib.util
import json
from pathlib import Path

import pandas as pd
import pytest

from econsim import cli, runner
from econsim.bounds import MAX_STEPS

ROOT = Path(__file__).resolve().parents[1]


def test_list(capsys, tmp_path):
    assert cli.main(["--root", str(tmp_path), "list"]) == 0
    out = capsys.readouterr().out
    assert "escape_room" in out and "er21_lio" in out and "lio" in out


def test_run_then_export(capsys, tmp_path):
    root = str(tmp_path / "runs")
    assert cli.main(["--root", root, "run", "ipd_lio", "--seeds", "0-1", "--iterations", "12",
                     "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "final evaluation" in out and "collective" in out and "episodes.parquet" in out
    run_id = next((tmp_path / "runs").iterdir()).name
    assert cli.main(["--root", root, "export", run_id, "--format", "csv",
                     "--out", str(tmp_path / "csv")]) == 0
    episodes = pd.read_csv(tmp_path / "csv" / f"{run_id}-episodes.csv")
    assert set(episodes.seed) == {0, 1} and "mutual_cooperation" in episodes
    dd = pd.read_csv(tmp_path / "csv" / f"{run_id}-dictionary.csv", keep_default_na=False)
    assert list(dd[dd.table == "episodes"].column) == list(episodes.columns)
    assert (dd.meaning != "").all(), dd[dd.meaning == ""]
    assert cli.main(["--root", root, "export", "nope"]) == 2


def test_bench_prints_throughput(capsys):
    assert cli.main(["bench", "ipd", "--batch", "256", "--seconds", "0.05"]) == 0
    out = capsys.readouterr().out
    assert "env_steps_per_s" in out and "ipd" in out


def test_bench_writes_json_with_rounds_settings_and_machine(tmp_path, capsys):
    out = tmp_path / "b" / "bench.json"
    assert cli.main(["bench", "ipd", "--batch", "64", "--seconds", "0.02", "--rounds", "2",
                     "--warmup", "0", "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["settings"]["rounds"] == 2 and doc["machine"]["cpus"] >= 1
    row = doc["rows"][0]
    assert row["game"] == "ipd" and row["min"] <= row["env_steps_per_s"] <= row["max"]
    assert row["agent_steps_per_s"] == pytest.approx(2 * row["env_steps_per_s"], abs=2)
    assert "median [min, max] of 2 round(s)" in capsys.readouterr().out


def test_bench_of_a_game_measures_its_declared_variants(capsys):
    assert cli.main(["bench", "navigation", "--batch", "8", "--seconds", "0.02"]) == 0
    out = capsys.readouterr().out
    assert all(f"navigation({f})" in out for f in ("antipodal", "cross", "merge"))


def test_cm3_benchmark_runs_on_a_tiny_budget(tmp_path, capsys):
    table = _load("cm3").main(["--envs", "merge,checkers", "--methods", "cm3,iac",
                               "--iterations", "10", "--seeds", "0", "--root",
                               str(tmp_path / "runs"), "--docs", str(tmp_path / "docs"),
                               "--quiet"])
    assert set(zip(table.env, table.method, strict=True)) == {(e, m) for e in ("merge", "checkers")
                                                 for m in ("cm3", "iac")}
    assert table.final.notna().all() and (table.budget_episodes == 100).all()
    assert "episodes_to_iac_final" in table  # IAC reaches its own final level at some point
    assert table[table.method == "iac"].episodes_to_iac_final.notna().all()
    assert (tmp_path / "docs" / "cm3_merge.png").stat().st_size > 1000
    assert "Figure 3.5 summary" in capsys.readouterr().out


@pytest.mark.slow
def test_sumo_benchmark_runs_on_a_tiny_budget(tmp_path, capsys):
    pytest.importorskip("libsumo", reason="the SUMO wheels (econsim[traffic]) are missing")
    fig, table = _load("sumo_merge").main([
        "--methods", "cm3,iac", "--iterations", "2", "--seeds", "0", "--episodes", "2",
        "--root", str(tmp_path / "runs"), "--docs", str(tmp_path / "docs"), "--quiet",
        "--timeout", "40"])
    assert set(fig.method) == {"cm3", "iac"} and "merged" in fig
    assert len(table) == 2 * 5 and set(table.config) == {"train", "C1", "C2", "C3", "C4"}
    assert table.merged.between(0, 1).all() and table.collective.notna().all()
    assert (tmp_path / "docs" / "cm3_sumo_timeout40.png").is_file()
    assert "Table A.1, time-out after 40 steps" in capsys.readouterr().out
    runs = list((tmp_path / "runs").iterdir())
    assert len(runs) == 2
    for run in runs:  # trained and tested with the longer clock
        stored = runner.load_result(run.name, tmp_path / "runs").scenario
        assert stored.env_params["timeout"] == 40


def test_the_sumo_benchmark_refuses_a_bad_timeout(capsys):
    """An impossible ``--timeout`` stops in one line naming the option, before any run."""
    for bad in ("0", "-3", str(MAX_STEPS + 1)):
        with pytest.raises(SystemExit):
            _load("sumo_merge").main(["--timeout", bad, "--root", "/nonexistent/runs"])
        assert f"--timeout {bad} is not allowed (allowed: 1 to {MAX_STEPS} steps)" in (
            capsys.readouterr().err)


def test_the_sumo_benchmark_refuses_taken_value_for_other_methods(capsys):
    """``--taken-value`` changes CM3's advantage: asked with IAC it stops in one line."""
    with pytest.raises(SystemExit):
        _load("sumo_merge").main(["--taken-value", "credit", "--methods", "cm3,iac",
                                  "--root", "/nonexistent/runs"])
    assert "--taken-value applies to CM3 and Direct only" in capsys.readouterr().err


@pytest.mark.parametrize("args, message", [
    (["--restored-actor-lr", "0", "--methods", "cm3,iac"],
     "--restored-actor-lr applies to CM3 and QV only"),
    (["--restored-actor-lr", "1.5"], "--restored-actor-lr 1.5 is not allowed (allowed: 0 to 1)"),
    (["--restored-actor-lr", "nan"], "--restored-actor-lr nan is not allowed")])
def test_the_sumo_benchmark_refuses_a_bad_restored_actor_lr(args, message, capsys):
    with pytest.raises(SystemExit):
        _load("sumo_merge").main([*args, "--root", "/nonexistent/runs"])
    assert message in capsys.readouterr().err


def test_parse_seeds():
    assert cli.parse_seeds("0-2,5") == [0, 1, 2, 5]


def _load(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_benchmarks_run_on_a_tiny_budget(tmp_path, capsys):
    df = _load("lio_escape_room").main(["--iterations", "6", "--seeds", "0,1", "--root",
                                        str(tmp_path), "--quiet"])
    assert set(df.scenario) == {"er21_lio", "er21_pg", "er32_lio", "er32_pg"}
    assert len(df) == 8 and df.collective.notna().all()
    df = _load("lio_ipd").main(["--iterations", "6", "--seeds", "0", "--root", str(tmp_path),
                                "--quiet"])
    assert df.mutual_cooperation.between(0, 1).all()
    assert "Summary" in capsys.readouterr().out


def test_demo_quick_prints_table_and_files(capsys, tmp_path):
    root = tmp_path / "runs"
    assert cli.main(["--root", str(root), "demo", "--quick"]) == 0
    out = capsys.readouterr().out
    assert "p_cc" in out and "Files:" in out and "mesa_replay.csv" in out
    runs = sorted(p.name.split("-")[0] for p in root.iterdir())
    assert runs == ["ipd_lio", "ipd_pg"]
    replay = next(root.glob("ipd_lio-*/mesa_replay.csv"))
    table = pd.read_csv(replay)
    assert set(table.episode) == {0, 1, 2} and set(table.agent) == {0, 1}
    assert table.action_name.isin(["cooperate", "defect"]).all()


def test_run_summary_of_a_designer_nets_out_the_incentives(capsys, tmp_path):
    from econsim import runner

    result = runner.run("er52_metagrad", seeds=[0, 1], progress=False, root=tmp_path,
                        iterations=2)
    table = cli.summary(result)
    assert {"collective", "extrinsic", "incentives"} <= set(table.columns)
    assert (table.incentives > 0).all()  # sigmoid incentives are paid from the start
    pd.testing.assert_series_equal(table.collective, (table.extrinsic - table.incentives)
                                   .round(3), check_names=False, atol=2e-3)
    agents = table.filter(like="agent").sum(axis=1)
    pd.testing.assert_series_equal(table.extrinsic, agents, check_names=False, atol=2e-3)


def test_run_summary_shows_the_games_own_episode_metrics(tmp_path):
    from econsim import runner

    result = runner.run("ipd_pg", seeds=[0, 1], progress=False, root=tmp_path, iterations=2)
    table = cli.summary(result)
    eps = result.episodes.query("phase == 'eval'")
    want = eps[eps.iteration == eps.iteration.max()].groupby("seed").mutual_cooperation.mean()
    assert list(table.mutual_cooperation) == list(want.round(3))


def test_first_at_needs_the_level_held_not_one_lucky_evaluation():
    import pandas as pd

    first_at = _load("cm3").first_at
    c = pd.DataFrame({"episodes": range(100, 1100, 100),
                      "collective": [-50, -10, -50, -50, -50, -12, -11, -9, -10, -10]})
    assert first_at(c, -12.0) == 600  # 200 is one lucky evaluation; from 600 it holds
    assert first_at(c, 0.0) is None
