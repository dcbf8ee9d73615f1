"""Checkpoints hold plain data and load with torch.load(weights_only=True): a crafted file runs
nothing; every trainer's state survives the round trip exactly."""

import json
import os
import pickle

import numpy as np
import pytest
import torch

from econsim import checkpoint, runner
from econsim import scenario as scenario_mod
from econsim.cli import main as cli_main
from econsim.errors import ScenarioError
from econsim.model import EconModel, load_trainer
from tests.test_seed_independence import tiny


class _Payload:
    """Unpickling this runs ``os.system`` (what a crafted checkpoint would do)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _tiny_run(tmp_path, name="ipd_lio"):
    data = tiny(name).resolved()
    data["train"].update(iterations=4, eval_every=2, eval_episodes=2, checkpoint_every=2,
                         log_every=2)
    return runner.run(scenario_mod.from_dict(data), seeds=[0], progress=False,
                      root=tmp_path / "runs", run_id="r")


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
    b.load_state_dict(checkpoint.load(tmp_path / "last.pt")["trainer"])
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
