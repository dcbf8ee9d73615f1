"""Resume reads run.json like any input (seeds and iterations checked; the newest unfinished
run by its start time; a run without a checkpoint keeps its budget); the final tables and
status are written inside the protected region (an error or a signal there never leaves a run
`running`); the memory bound of one iteration counts the seeds actually run."""

import json
import shutil

import numpy as np
import pytest

from econsim import cli, runner, store, sweep
from econsim import scenario as scenario_mod
from econsim.errors import ScenarioError
from tests.reference import small


@pytest.fixture
def stored(tmp_path):
    """A finished tiny ipd_pg run ``r`` marked interrupted (so --resume takes it)."""
    root = tmp_path / "runs"
    run = runner.run(small("ipd_pg", 2), seeds=[0, 1], progress=False, root=root, run_id="r")
    _edit(run.path, status="interrupted")
    return root, run.path


def _info(path):
    return json.loads((path / "run.json").read_text())


def _edit(path, drop=(), **fields):
    info = {k: v for k, v in _info(path).items() if k not in drop}
    (path / "run.json").write_text(json.dumps({**info, **fields}))


# ------------------------------------------------------------------------------ run.json


@pytest.mark.parametrize("change, message", [
    ({"drop": ["seeds"]}, "run 'r': run.json: seeds: required field is missing"),
    ({"seeds": [True]}, "run 'r': run.json: seeds.0: True is not allowed"),
    ({"seeds": [0, 0]}, "seeds must be distinct"),
    ({"seeds": [2**40]}, "run.json: seeds.0"),
    ({"drop": ["iterations"]}, "run.json: iterations: required field is missing"),
    ({"iterations": "x"}, "run 'r': run.json: iterations: 'x' is not allowed"),
    ({"iterations": 0}, "run.json: iterations: 0 is not allowed"),
    ({"iterations": 10**12}, "run.json: iterations"),
])
def test_resume_checks_run_json(stored, capsys, change, message):
    root, path = stored
    _edit(path, **change)
    before = (path / "run.json").read_bytes()
    code = cli.main(["--root", str(root), "run", "ipd_pg", "--resume", "r", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and message in err, err
    assert (path / "run.json").read_bytes() == before


def test_resume_without_an_id_takes_the_newest_by_start_time(tmp_path):
    root = tmp_path / "runs"
    for rid, started in [("ipd_pg-a-old", "2030-01-01T00:00:00+00:00"),
                         ("ipd_pg-b-older", "2020-01-01T00:00:00+00:00"),
                         ("ipd_pg-0-newest", "2031-06-01T00:00:00+00:00")]:
        run = runner.run(small("ipd_pg", 2), seeds=[0], progress=False, root=root,
                         run_id=rid)
        _edit(run.path, status="interrupted", started=started)
    assert runner.latest_unfinished("ipd_pg", root) == "ipd_pg-0-newest"
    done = runner.run("ipd_pg", resume=True, progress=False, root=root)
    assert done.run_id == "ipd_pg-0-newest"
    assert _info(done.path)["started"] == "2031-06-01T00:00:00+00:00"  # kept on resume


def test_resume_without_a_checkpoint_keeps_the_runs_budget(stored):
    """The probe: a sweep run made with --iterations 1 and no checkpoint went back to the
    scenario's 20,000 iterations on --resume."""
    root, path = stored
    shutil.rmtree(path / "checkpoints")
    _edit(path, iterations=3, iterations_done=0)
    assert scenario_mod.load(path / "scenario.toml").train.iterations == 2
    done = runner.run("ipd_pg", resume="r", progress=False, root=root)
    info = _info(done.path)
    assert info["status"] == "finished" and info["iterations"] == 3
    assert info["iterations_done"] == 3
    # --iterations still overrides it
    _edit(path, status="interrupted")
    shutil.rmtree(path / "checkpoints")
    done = runner.run("ipd_pg", resume="r", progress=False, root=root, iterations=4)
    assert _info(done.path)["iterations"] == 4 and _info(done.path)["iterations_done"] == 4


# ------------------------------------------------------------------------------ the end


def _fail_at_final(monkeypatch, what, how):
    """Make the final save of a run (tables or run.json) raise ``how``."""
    if what == "tables":
        real, calls = runner.write_table, []

        def write_table(path, df):
            calls.append(path)
            if len(calls) == 3:  # episodes and agents at the last checkpoint, then the end
                raise how
            return real(path, df)

        monkeypatch.setattr(runner, "write_table", write_table)
    else:
        real_text = runner.write_text

        def write_text(path, text):
            if '"status": "finished"' in text:
                raise how
            return real_text(path, text)

        monkeypatch.setattr(runner, "write_text", write_text)


@pytest.mark.parametrize("what", ["tables", "manifest"])
@pytest.mark.parametrize("how, status", [(OSError(28, "No space left on device"), "failed"),
                                         (KeyboardInterrupt(), "interrupted")])
def test_the_final_save_is_protected(tmp_path, monkeypatch, what, how, status):
    root = tmp_path / "runs"
    _fail_at_final(monkeypatch, what, how)
    with pytest.raises(type(how)):
        runner.run(small("ipd_pg", 2), seeds=[0], progress=False, root=root, run_id="r")
    info = _info(root / "r")
    assert info["status"] == status, info
    if status == "failed":
        assert info["error"] == "OSError: [Errno 28] No space left on device"
    monkeypatch.undo()
    assert runner.latest_unfinished("ipd_pg", root) == ("r" if status == "interrupted"
                                                         else None)
    done = runner.run("ipd_pg", resume="r", progress=False, root=root)
    assert _info(done.path)["status"] == "finished"


def test_a_second_signal_while_recording_still_records(tmp_path, monkeypatch):
    root = tmp_path / "runs"
    real_text, signals = runner.write_text, []

    def write_text(path, text):
        if '"status": "finished"' in text or (
                '"status": "interrupted"' in text and not signals):
            signals.append(text)
            raise KeyboardInterrupt  # the first SIGTERM, then a second one at once
        return real_text(path, text)

    monkeypatch.setattr(runner, "write_text", write_text)
    with pytest.raises(KeyboardInterrupt):
        runner.run(small("ipd_pg", 2), seeds=[0], progress=False, root=root, run_id="r")
    assert _info(root / "r")["status"] == "interrupted"


# ------------------------------------------------------------------------------ memory


def _values(sc, seeds):
    game, config = sc.make_game(), sc.trainer_config()
    episodes = max(config.batch, sc.train.eval_episodes)
    return (len(seeds) * episodes * game.max_steps * game.n_agents
            * int(np.prod(game.observation_space.shape)))


def test_the_memory_bound_counts_the_seeds_given(tmp_path, monkeypatch, capsys):
    """The probe: `run big.toml --seeds 0-63` was accepted at 32x the limit."""
    data = small("ipd_pg", 2).resolved()
    data["seeds"] = [0]  # the file's seeds fit
    sc = scenario_mod.from_dict(data)
    monkeypatch.setattr(scenario_mod, "MAX_BATCH_VALUES", _values(sc, [0, 1]))
    path = tmp_path / "big.toml"
    path.write_text(sc.to_toml())
    root = tmp_path / "runs"
    code = cli.main(["--root", str(root), "run", str(path), "--seeds", "0-3", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "4 seeds x" in err, err
    with pytest.raises(ScenarioError, match="4 seeds x"):
        runner.run(sc, seeds=[0, 1, 2, 3], progress=False, root=root)
    tasks, invalid = sweep.plan(sc, {"algorithm.lr": [0.01]}, [0, 1, 2, 3], root=root)
    assert not tasks and "4 seeds x" in invalid[0]["error"]
    assert not root.exists()
    runner.run(sc, seeds=[0, 1], progress=False, root=root, run_id="ok")  # at the limit
    # resuming with the run's own seeds is checked too (a run.json edited to more seeds)
    _edit(root / "ok", status="interrupted", seeds=[0, 1, 2])
    with pytest.raises(ScenarioError, match="3 seeds x"):
        runner.run(sc, resume="ok", progress=False, root=root)
    assert store.runs(root).run_id.tolist() == ["ok"]
