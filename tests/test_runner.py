"""Runner: run folders, tidy tables, atomic files, checkpoints and resume after a kill."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from econsim import checkpoint, runner, scenario, store
from econsim.errors import ScenarioError
from tests.reference import small

TINY = {"log_every": 5, "eval_every": 10, "eval_episodes": 8, "checkpoint_every": 10}


def test_run_writes_tidy_tables(tmp_path):
    result = runner.run(small("er21_lio", 20, **TINY), seeds=[0, 1], progress=False, root=tmp_path)
    files = {p.name for p in result.path.iterdir()}
    assert {"scenario.toml", "run.json", "episodes.parquet", "agents.parquet", "log.jsonl",
            "checkpoints"} <= files
    assert not [p for p in result.path.rglob(".*tmp*")]  # no temporary files left
    ep, ag = result.episodes, result.agents
    assert set(ep.seed) == {0, 1} and set(ep.phase) == {"train", "eval"}
    assert ep.query("phase == 'train'").iteration.tolist() == [5, 5, 10, 10, 15, 15, 20, 20]
    assert len(ag) == 2 * len(ep)  # one row per agent
    assert {"return", "received", "given", "n_lever", "n_start", "n_door"} <= set(ag.columns)
    # collective = sum of agents' returns, row by row
    merged = ag.groupby(["seed", "phase", "iteration"])["return"].sum()
    assert (merged.values - ep.set_index(["seed", "phase", "iteration"]).collective
            .loc[merged.index].values).__abs__().max() < 1e-4
    info = json.loads((result.path / "run.json").read_text())
    assert info["status"] == "finished" and info["iterations_done"] == 20
    assert scenario.load(result.path / "scenario.toml").resolved() == result.scenario.resolved()


def test_resume_continues_and_matches_uninterrupted(tmp_path):
    sc = small("er21_lio", 30, **TINY)
    full = runner.run(sc, seeds=[0], progress=False, root=tmp_path / "a", run_id="r")
    # a run stopped after its checkpoint at iteration 10, marked as still running
    early = runner.run(sc, seeds=[0], progress=False, root=tmp_path / "c", run_id="r",
                       iterations=10)
    state = checkpoint.load(early.path / "checkpoints" / "last.pt")
    info = json.loads((early.path / "run.json").read_text())
    info["status"] = "running"
    (early.path / "run.json").write_text(json.dumps(info))
    resumed = runner.run(sc, progress=False, root=tmp_path / "c", resume="r", iterations=30)
    assert state["trainer"]["iteration"] == 10
    pd.testing.assert_frame_equal(resumed.episodes.drop(columns="run_id"),
                                  full.episodes.drop(columns="run_id"))
    pd.testing.assert_frame_equal(resumed.agents, full.agents)


def _with_train(sc, **train):
    """``sc`` with other ``[train]`` settings (``small`` sets the learner's)."""
    data = sc.resolved()
    data["train"].update(train)
    return scenario.from_dict(data, sc.name)


def test_kept_checkpoints_leave_the_run_as_it_was(tmp_path):
    """``train.keep_every`` keeps the checkpoint of every keep_every-th iteration (a checkpoint
    then, whatever ``checkpoint_every``) and changes nothing else; each kept file restores the
    trainer of its iteration."""
    total, every = 12, 4
    sc = small("er21_lio", total, **TINY)
    plain = runner.run(sc, seeds=[0], progress=False, root=tmp_path / "a", run_id="r")
    kept = runner.run(_with_train(sc, keep_every=every), seeds=[0], progress=False,
                      root=tmp_path / "b", run_id="r")
    assert runner.kept_checkpoints(plain) == {}
    files = runner.kept_checkpoints(kept)
    expected = list(range(every, total + 1, every))
    assert list(files) == expected and files[4].name == "iteration-0000004.pt"
    assert checkpoint.load(files[8])["trainer"]["iteration"] == 8
    pd.testing.assert_frame_equal(kept.episodes.drop(columns="run_id"),
                                  plain.episodes.drop(columns="run_id"))
    pd.testing.assert_frame_equal(kept.agents, plain.agents)
    stale = files[4].parent / ".iteration-0000016.pt.tmp-999999999"  # a killed writer's
    stale.write_bytes(b"half")
    assert stale in store.clean(kept.path, min_age_s=0) and not stale.exists()
    (files[4].parent / "iteration-12.pt").write_bytes(b"")  # not a kept name: ignored
    (files[4].parent / "iteration-².pt").write_bytes(b"")
    (files[4].parent / "iteration-0000016.pt").symlink_to(files[4])  # a link: ignored
    assert list(runner.kept_checkpoints(kept)) == expected


def test_fork_continues_from_a_kept_checkpoint(tmp_path):
    """A fork with the source's own settings plays the source's iterations after the fork
    point bit for bit; with other settings it goes its own way from there; a fork stopped
    before its first checkpoint forks again when resumed."""
    sc = _with_train(small("er21_lio", 20, **TINY), keep_every=5)
    src = runner.run(sc, seeds=[0, 1], progress=False, root=tmp_path, run_id="src")
    same = runner.run(sc, progress=False, root=tmp_path, run_id="same", fork=("src", 10))
    info = json.loads((same.path / "run.json").read_text())
    assert info["forked_from"] == {"run_id": "src", "iteration": 10} and same.seeds == [0, 1]
    after = src.episodes.query("iteration > 10").reset_index(drop=True)
    assert same.episodes.iteration.min() == 15  # the tables hold the new iterations only
    pd.testing.assert_frame_equal(same.episodes.drop(columns="run_id"),
                                  after.drop(columns="run_id"))
    other = small("er21_lio", 20, **TINY, epsilon={"start": 0.9, "end": 0.9, "steps": 1})
    changed = runner.run(other, progress=False, root=tmp_path, run_id="changed",
                         fork=("src", 10))
    assert changed.episodes.query("phase == 'train'").epsilon.eq(0.9).all()
    assert not np.array_equal(changed.episodes.collective, after.collective)

    def stop_at_once(done: int, total: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        runner.run(sc, progress=stop_at_once, root=tmp_path, run_id="stopped", fork=("src", 5))
    assert not (tmp_path / "stopped" / "checkpoints" / "last.pt").exists()
    resumed = runner.run(sc, progress=False, root=tmp_path, resume="stopped")
    after5 = src.episodes.query("iteration > 5").reset_index(drop=True)
    pd.testing.assert_frame_equal(resumed.episodes.drop(columns="run_id"),
                                  after5.drop(columns="run_id"))


def test_a_fork_learns_at_its_own_rates_and_cost_schedule(tmp_path):
    """The optimisers a checkpoint restores carry the stored run's learning rates, and a
    cost schedule its weight: a fork uses its own scenario's."""
    sc = _with_train(small("er21_lio", 10, **TINY, cost_schedule="linear", cost_ramp=20),
                     keep_every=5)
    runner.run(sc, seeds=[0], progress=False, root=tmp_path, run_id="src")
    other = small("er21_lio", 10, **TINY, lr_incentive=0.05, lr_cost=0.03)
    fork = runner.run(other, progress=False, root=tmp_path, run_id="f", fork=("src", 5))
    inc = fork.trainer.incentive
    rates = [other.algorithm["lr_incentive"], other.algorithm["lr_cost"]]
    assert [g["lr"] for g in inc.opt.param_groups + inc.opt_cost.param_groups] == rates
    assert inc.cost_scale.tolist() == [1.0]  # constant: not the linear weight stored at 5
    same = runner.run(sc, progress=False, root=tmp_path, run_id="s", fork=("src", 5))
    at_end = min(1.0, sc.train.iterations / sc.algorithm["cost_ramp"])  # the linear weight
    assert same.trainer.incentive.cost_scale.tolist() == [at_end]


def test_a_fork_off_a_log_window_starts_its_own(tmp_path):
    """The first training row after a fork at an iteration that is not a multiple of
    ``log_every`` averages the fork's own iterations only."""
    at = 7
    sc = _with_train(small("er21_lio", 10, **TINY), keep_every=at)
    runner.run(sc, seeds=[0], progress=False, root=tmp_path, run_id="src")
    fork = runner.run(sc, progress=False, root=tmp_path, run_id="f", fork=("src", at))
    first = fork.episodes.query("phase == 'train'").iloc[0]
    boundary = -(-at // sc.train.log_every) * sc.train.log_every  # the next log row
    assert at % sc.train.log_every and first.iteration == boundary
    assert first.episodes == (boundary - at) * sc.algorithm["batch"]


def test_fork_refuses_what_does_not_fit(tmp_path):
    sc = _with_train(small("er21_lio", 10, **TINY), keep_every=5)
    runner.run(sc, seeds=[0, 1], progress=False, root=tmp_path, run_id="src")
    bad = [
        (dict(fork=("src", 7)), r"kept no checkpoint at iteration 7 \(kept: 5, 10\)"),
        (dict(fork=("nope", 5)), r"fork: run 'nope' not found"),
        (dict(fork=("src", 5), seeds=[0]), r"seeds \[0\] are not the stored run's \[0, 1\]"),
        (dict(fork=("src", 10)), r"budget \(10 iterations\) must go beyond .* 10"),
        (dict(fork=("src", 5), resume="src"), r"cannot also resume"),
        (dict(fork="src@5"), r"is not \(run id, iteration\)"),
    ]
    for kwargs, message in bad:
        with pytest.raises(ScenarioError, match=message):
            runner.run(sc, progress=False, root=tmp_path, **kwargs)
    wider = small("er21_lio", 20, **TINY, hidden=[8, 8])  # another network: its state differs
    with pytest.raises(ScenarioError, match=r"fork: checkpoint .* does not match this run"):
        runner.run(wider, progress=False, root=tmp_path, fork=("src", 5))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]  # nothing left behind


@pytest.mark.slow
def test_killed_process_resumes_from_cli(tmp_path):
    """Start `econsim run` in a subprocess, kill it after a checkpoint, resume it."""
    sc_path = tmp_path / "slow.toml"
    data = small("er21_lio", 4000, **TINY).resolved()
    data["train"].update(checkpoint_every=50, eval_every=1000, log_every=50)
    import tomli_w

    sc_path.write_text(tomli_w.dumps(data))
    root = tmp_path / "runs"
    cmd = [sys.executable, "-m", "econsim.cli", "--root", str(root), "run", str(sc_path),
           "--seeds", "0", "--quiet"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    deadline = time.time() + 60
    ckpts = []
    while time.time() < deadline and not ckpts:
        time.sleep(0.2)
        ckpts = list(root.glob("*/checkpoints/last.pt"))
    time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert ckpts, "no checkpoint was written before the deadline"
    run_dir = ckpts[0].parents[1]
    assert json.loads((run_dir / "run.json").read_text())["status"] == "running"
    done = subprocess.run(cmd[:-3] + ["--resume", "--iterations", "200", "--quiet"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    info = json.loads((run_dir / "run.json").read_text())
    assert info["status"] == "finished" and info["iterations_done"] == 200
    ep = pd.read_parquet(run_dir / "episodes.parquet")
    train_its = ep.query("phase == 'train'").iteration.tolist()
    assert train_its == list(range(50, 201, 50))  # no gap, no duplicate


def test_store_queries_and_export(tmp_path):
    a = runner.run(small("er21_lio", 20, **TINY), seeds=[0], progress=False, root=tmp_path)
    b = runner.run(small("er21_pg", 20, **TINY), seeds=[0, 1], progress=False, root=tmp_path)
    listing = store.runs(tmp_path)
    assert set(listing.run_id) == {a.run_id, b.run_id}
    assert set(listing.status) == {"finished"}
    df = store.query("select algorithm, count(distinct seed) as n from episodes "
                     "group by 1 order by 1", tmp_path)
    assert df.to_dict("records") == [{"algorithm": "lio", "n": 1}, {"algorithm": "pg", "n": 2}]
    paths = store.export(a.run_id, "csv", tmp_path / "out", tmp_path)
    back = pd.read_csv(paths[1])
    assert len(back) == len(a.agents)
    with pytest.raises(Exception, match="not found"):
        store.load("nope", root=tmp_path)
    assert Path(paths[0]).name.endswith("episodes.csv")
