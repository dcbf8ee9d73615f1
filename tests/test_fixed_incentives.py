"""Fixed incentives per action type: paid as stated, never charged, validated."""

import numpy as np
import pytest

from econsim import runner, scenario
from econsim.errors import ScenarioError


def _tiny(**algorithm):
    data = scenario.load("er52_fixed_lever").resolved()
    data["algorithm"].update(algorithm)
    data["train"].update(iterations=3, log_every=1, eval_every=3, eval_episodes=5,
                         checkpoint_every=3)
    return scenario.from_dict(data, "t.toml")


def test_pays_the_stated_amount_per_action():
    tr = _tiny(incentives={"lever": 1.5, "door": 0.25}).make_trainer([0, 1])
    m = tr.iterate()
    expected = 1.5 * m["n_lever"] + 0.25 * m["n_door"]  # [R, N] per-episode counts
    assert np.allclose(m["received"], expected, atol=1e-5)
    assert np.allclose(m["incentives"], expected.sum(1), atol=1e-4)
    assert np.allclose(m["collective"], m["extrinsic"] - m["incentives"], atol=1e-5)
    assert (m["given"] == 0).all()  # the designer pays, agents give nothing
    assert np.allclose(m["offer_lever"], 1.5) and np.allclose(m["offer_start"], 0.0)


def test_bad_incentives_are_refused(tmp_path):
    with pytest.raises(ScenarioError, match="incentives"):
        _tiny(incentives={"lever": -1.0})
    with pytest.raises(ValueError, match="unknown action type 'jump'"):
        runner.run(_tiny(incentives={"jump": 1.0}), seeds=[0], progress=False, root=tmp_path)
    assert not any(tmp_path.iterdir())  # nothing written


def test_runs_through_the_runner(tmp_path):
    result = runner.run(_tiny(), seeds=[0], progress=False, root=tmp_path)
    ev = result.final()
    assert {"extrinsic", "incentives", "offer_lever"} <= set(ev.columns)
