"""One rule for the runs folder everywhere: ``--root`` (before or after the subcommand), else
``$ECONSIM_RUNS``, else ``./runs``; the CLI, the runner, the store, analysis, sweeps, the
Mesa model, what-ifs and the app all follow it."""

from pathlib import Path

import pytest

from econsim import analysis, cli, runner, store, sweep, whatif
from econsim.app_pages import common
from econsim.model import EconModel, load_trainer
from tests.reference import small


@pytest.fixture
def env_root(tmp_path, monkeypatch):
    """$ECONSIM_RUNS set to an empty folder; the working directory elsewhere (no ./runs)."""
    root = tmp_path / "env_runs"
    monkeypatch.setenv("ECONSIM_RUNS", str(root))
    monkeypatch.chdir(tmp_path)
    return root


def test_default_root_is_the_environment_variable_else_runs(monkeypatch):
    monkeypatch.delenv("ECONSIM_RUNS", raising=False)
    assert store.default_root() == Path("runs") and common.default_root() == "runs"
    monkeypatch.setenv("ECONSIM_RUNS", "/data/my runs")
    assert store.default_root() == Path("/data/my runs") == store.root_path(None)
    assert common.default_root() == "/data/my runs"
    assert store.root_path("elsewhere") == Path("elsewhere")


def test_library_calls_without_root_use_the_environment_variable(env_root, tmp_path):
    result = runner.run(small("ipd_pg", 2), seeds=[0], progress=False)
    assert result.path == env_root / result.run_id and result.path.is_dir()
    assert not (tmp_path / "runs").exists()
    rid = result.run_id
    assert store.runs().run_id.tolist() == [rid]
    assert store.query("select count(distinct run_id) as n from episodes").n[0] == 1
    assert store.run_dir(rid) == env_root / rid and len(store.load(rid)) > 0
    assert set(analysis.tidy(None, "episodes").run_id) == {rid}
    assert set(analysis.episode_table().run_id) == {rid}
    assert runner.load_result(rid).path == env_root / rid
    assert load_trainer(rid).iteration == 2
    assert EconModel.from_run(rid, seed=0).run_episodes(1).episode.nunique() == 1
    job = whatif.WhatIfJob.create(None, [None], 1, [0], f"trained:{rid}")
    assert job.root == env_root
    tasks, _ = sweep.plan(small("ipd_pg", 2), {}, [0], sweep_id="s")
    assert Path(tasks[0]["root"]) == env_root.resolve()
    resumed = runner.run("ipd_pg", resume=rid, progress=False, iterations=3)
    assert resumed.path == env_root / rid


def test_cli_uses_the_environment_variable(env_root, tmp_path, capsys):
    assert cli.main(["run", "ipd_pg", "--seeds", "0-2", "--iterations", "2", "--quiet"]) == 0
    [rid] = [p.name for p in env_root.iterdir()]
    assert not (tmp_path / "runs").exists()
    capsys.readouterr()
    assert cli.main(["list", "runs"]) == 0
    out = capsys.readouterr().out
    assert f"runs in {env_root}/" in out and rid in out
    assert cli.main(["export", rid, "--out", str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / f"{rid}-episodes.csv").is_file()
    assert cli.main(["regress", "collective ~ 1", "--cluster", "none"]) == 0


@pytest.mark.parametrize("where", ["before", "after"])
def test_cli_root_before_or_after_the_subcommand_beats_the_variable(env_root, tmp_path,
                                                                    capsys, where):
    other = tmp_path / "other"
    runner.run(small("ipd_pg", 2), seeds=[0, 1, 2], progress=False, root=other, run_id="mine")
    for argv in (["list", "runs"], ["export", "mine", "--out", str(tmp_path / "o")],
                 ["regress", "collective ~ 1", "--cluster", "none"]):
        full = (["--root", str(other), *argv] if where == "before"
                else [*argv, "--root", str(other)])
        assert cli.main(full) == 0, (full, capsys.readouterr().err)
        assert "mine" in capsys.readouterr().out or argv[0] != "list"
    assert not env_root.exists()
    # given twice, the one after the subcommand wins
    assert cli.main(["--root", str(env_root), "list", "runs", "--root", str(other)]) == 0
    assert f"runs in {other}/" in capsys.readouterr().out
