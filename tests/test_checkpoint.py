"""Checkpoints hold plain data and load with torch.load(weights_only=True): a crafted file runs
nothing; every trainer's state survives the round trip exactly."""

import json
import os
import pickle
import warnings

import numpy as np
import pytest
import torch

from econsim import checkpoint, runner
from econsim import scenario as scenario_mod
from econsim.cli import main as cli_main
from econsim.errors import ScenarioError
from econsim.model import EconModel, load_trainer
from tests.reference import small, tiny


class _Payload:
    """Unpickling this runs ``os.system`` (what a crafted checkpoint would do)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _tiny_run(tmp_path, name="ipd_lio"):
    sc = small(name, 4, log_every=2, eval_every=2, checkpoint_every=2, short=True)
    return runner.run(sc, seeds=[0], progress=False, root=tmp_path / "runs", run_id="r")


def test_numpy_and_plain_data_round_trip(tmp_path):
    payload = {"a": np.arange(6, dtype=np.uint64).reshape(2, 3), "b": [np.float32(1.5), (1, "x")],
               "c": {0: torch.ones(2)}, "d": np.zeros((0, 3), bool), "e": None}
    checkpoint.save(tmp_path / "c.pt", payload)
    back = checkpoint.load(tmp_path / "c.pt")
    assert back["a"].dtype == np.uint64 and np.array_equal(back["a"], payload["a"])
    assert back["b"] == [1.5, (1, "x")] and torch.equal(back["c"][0], torch.ones(2))
    assert back["d"].shape == (0, 3) and back["e"] is None


def test_objects_are_refused_when_saving(tmp_path):
    with pytest.raises(TypeError, match="cannot be stored"):
        checkpoint.save(tmp_path / "c.pt", {"trainer": {"mechanism": object()}})
    assert not (tmp_path / "c.pt").exists()


@pytest.mark.parametrize("name", scenario_mod.names())
def test_every_trainer_state_round_trips_exactly(tmp_path, name):
    """state_dict -> checkpoint file -> load_state_dict, then one more iteration: the same
    numbers as the trainer that never stopped."""
    sc = tiny(name)
    a = sc.make_trainer([1, 2])
    a.iterate()
    checkpoint.save(tmp_path / "last.pt", {"trainer": a.state_dict()})
    b = sc.make_trainer([1, 2])
    checkpoint.restore(b, checkpoint.load(tmp_path / "last.pt")["trainer"])
    ma, mb = a.iterate(), b.iterate()
    for k, v in ma.items():
        if not k.startswith("_"):
            assert np.array_equal(np.asarray(v), np.asarray(mb[k]), equal_nan=True), k


def _craft(path, marker):
    """Overwrite a checkpoint with a pickle whose loading would create ``marker``."""
    torch.save({"format": checkpoint.FORMAT, "payload": {"trainer": _Payload(marker)}}, path)


def test_crafted_checkpoint_executes_nothing(tmp_path):
    result = _tiny_run(tmp_path)
    ckpt = result.path / "checkpoints" / "last.pt"
    marker = tmp_path / "pwned"
    _craft(ckpt, marker)
    with pytest.raises(ScenarioError, match="not a loadable econsim checkpoint") as err:
        checkpoint.load(ckpt)
    assert "\n" not in str(err.value)
    with pytest.raises(ScenarioError):
        load_trainer("r", root=tmp_path / "runs")
    with pytest.raises(ScenarioError):
        EconModel.from_run("r", root=tmp_path / "runs")
    info = json.loads((result.path / "run.json").read_text())
    info["status"] = "running"  # so that --resume takes it
    (result.path / "run.json").write_text(json.dumps(info))
    code = cli_main(["--root", str(tmp_path / "runs"), "run", str(result.path / "scenario.toml"),
                     "--resume", "r", "--quiet", "--iterations", "6"])
    assert code == 2
    assert not marker.exists()


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_plain_pickle_and_old_format_are_refused(tmp_path):
    path = tmp_path / "last.pt"
    marker = tmp_path / "pwned"
    path.write_bytes(pickle.dumps(_Payload(marker)))
    with pytest.raises(ScenarioError, match="not a loadable"):
        checkpoint.load(path)
    assert not marker.exists()
    torch.save({"trainer": {"iteration": 3}}, path)  # what econsim wrote before format 2
    with pytest.raises(ScenarioError, match="not an econsim checkpoint"):
        checkpoint.load(path)
    torch.save({"format": 1, "payload": {}}, path)
    with pytest.raises(ScenarioError, match="format 1 is not supported"):
        checkpoint.load(path)


# ------------------------------------------------------------ well formed, wrong content


def _stored_pg(tmp_path):
    """A tiny finished ipd_pg run ``r`` (status set back to running, so --resume takes it)
    and its checkpoint's payload."""
    result = runner.run(small("ipd_pg", 2, log_every=2, short=True), seeds=[0], progress=False,
                        root=tmp_path / "runs", run_id="r")
    info = json.loads((result.path / "run.json").read_text())
    info["status"] = "running"
    (result.path / "run.json").write_text(json.dumps(info))
    return result, checkpoint.load(result.path / "checkpoints" / "last.pt")


def _bad_shape(p):
    p["trainer"]["params"]["pi.w0"] = torch.zeros(3, 3)


def _int64(p):
    p["trainer"]["params"]["pi.w0"] = p["trainer"]["params"]["pi.w0"].long()


def _inf_shape(p):
    p["trainer"]["rng"] = np.zeros(2)  # encoded as an array; its shape is then made [inf]


CRAFTED = {  # what a well-formed checkpoint with wrong content may hold
    "no trainer": (lambda p: p.pop("trainer"), "entry 'trainer' is missing"),
    "only iteration": (lambda p: p.update(trainer={"iteration": 1}), "trainer.params is missing"),
    "empty trainer": (lambda p: p.update(trainer={}), "trainer.iteration is missing"),
    "trainer not a table": (lambda p: p.update(trainer=[1]), "trainer is a list"),
    "iteration text": (lambda p: p["trainer"].update(iteration="abc"), "trainer.iteration"),
    "negative iteration": (lambda p: p["trainer"].update(iteration=-3), "trainer.iteration"),
    "wrong shape": (_bad_shape, "trainer.params.pi.w0 is a torch.float32 tensor of shape"),
    "int64 tensor": (_int64, "trainer.params.pi.w0 is a torch.int64 tensor"),
    "params missing": (lambda p: p["trainer"]["params"].pop("pi.b1"), "pi.b1"),
    "bad rng": (lambda p: p["trainer"].update(rng="x"), "trainer"),
    "log not a table": (lambda p: p.update(log=5), "log is a int"),
    "log rows": (lambda p: p["log"].update(episodes=5), "log.episodes is not a list"),
    "log row values": (lambda p: p["log"].update(episodes=[{"a": [1]}]), "log.episodes[0]"),
    "log window": (lambda p: p["log"].update(window=[{"collective": np.zeros(7)}]),
                   "log.window[0].collective"),
    "log table name": (lambda p: p["log"].update(tables={"../../x": []}), "log.tables"),
    "no log": (lambda p: p.pop("log"), "entry 'log' is missing"),
    "wall text": (lambda p: p.update(wall_s="x"), "wall_s is 'x'"),
    "wall inf": (lambda p: p.update(wall_s=float("inf")), "wall_s is inf"),
    "shape inf": (_inf_shape, "not an array (OverflowError"),
}


@pytest.mark.parametrize("case", list(CRAFTED))
def test_wrong_content_gives_one_line_and_changes_nothing(tmp_path, capsys, case):
    result, payload = _stored_pg(tmp_path)
    change, expect = CRAFTED[case]
    change(payload)
    ckpt = result.path / "checkpoints" / "last.pt"
    raw = {"format": checkpoint.FORMAT, "payload": checkpoint.encode(payload)}
    if case == "shape inf":
        raw["payload"]["trainer"]["rng"]["shape"] = [float("inf")]
    torch.save(raw, ckpt)
    before = {p.name: p.read_bytes() for p in result.path.iterdir() if p.is_file()}
    code = cli_main(["--root", str(tmp_path / "runs"), "run", "ipd_pg", "--resume", "r",
                     "--quiet"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith("econsim: error: checkpoint "), err
    assert "does not match this run: " in err and expect in err, err
    assert "Traceback" not in err
    after = {p.name: p.read_bytes() for p in result.path.iterdir() if p.is_file()}
    assert after == before  # run.json, log.jsonl, tables: untouched
    with pytest.raises(ScenarioError, match="does not match this run") as info:
        if case in ("no log", "log not a table", "log rows", "log row values", "log window",
                    "log table name", "wall text", "wall inf"):
            raise ScenarioError("does not match this run")  # the Mesa face reads no log
        load_trainer("r", root=tmp_path / "runs")
    assert "\n" not in str(info.value)


def test_a_refused_pickle_says_so_in_our_words_and_prints_no_warning(tmp_path, capsys):
    result, _ = _stored_pg(tmp_path)
    ckpt = result.path / "checkpoints" / "last.pt"
    marker = tmp_path / "pwned"
    ckpt.write_bytes(pickle.dumps(_Payload(marker), protocol=4))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code = cli_main(["--root", str(tmp_path / "runs"), "run", "ipd_pg", "--resume", "r",
                         "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert "not a loadable econsim checkpoint" in err and "never runs code" in err
    assert "weights_only" not in err and "torch" not in err.lower()
    assert not [w for w in caught if "pickle" in str(w.message)], [str(w.message)
                                                                    for w in caught]
    assert not marker.exists()


def test_a_refused_pickle_prints_nothing_on_stderr_in_a_fresh_process(tmp_path):
    import subprocess
    import sys

    result, _ = _stored_pg(tmp_path)
    ckpt = result.path / "checkpoints" / "last.pt"
    ckpt.write_bytes(pickle.dumps({"x": 1}, protocol=4))
    proc = subprocess.run([sys.executable, "-m", "econsim.cli", "--root",
                           str(tmp_path / "runs"), "run", "ipd_pg", "--resume", "r", "--quiet"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "UserWarning" not in proc.stderr, proc.stderr


def test_a_checkpoint_with_a_log_window_and_detail_tables_resumes_exactly(tmp_path,
                                                                         monkeypatch):
    """The log checks accept what the runner writes: a checkpoint between two log rows (a
    non-empty window) of a GTB run (a periods table), interrupted after it."""
    sc = small("gtb_flat30", 4, log_every=3, eval_every=2, eval_episodes=1,
               checkpoint_every=2, short=True)
    full = runner.run(sc, seeds=[0, 1], progress=False, root=tmp_path / "a", run_id="r")
    real = scenario_mod.Scenario.make_trainer

    def interrupted_at_3(self, seeds):
        trainer = real(self, seeds)
        iterate = trainer.iterate

        def stop():
            if trainer.iteration == 2:
                raise KeyboardInterrupt
            return iterate()

        trainer.iterate = stop
        return trainer

    monkeypatch.setattr(scenario_mod.Scenario, "make_trainer", interrupted_at_3)
    with pytest.raises(KeyboardInterrupt):
        runner.run(sc, seeds=[0, 1], progress=False, root=tmp_path / "b", run_id="r")
    monkeypatch.undo()
    saved = checkpoint.load(tmp_path / "b" / "r" / "checkpoints" / "last.pt")["log"]
    assert saved["tables"] and saved["window"]
    resumed = runner.run(sc, progress=False, root=tmp_path / "b", resume="r")
    for table in ("episodes", "agents"):
        a, b = getattr(full, table), getattr(resumed, table)
        assert a.drop(columns="run_id").equals(b.drop(columns="run_id")), table
