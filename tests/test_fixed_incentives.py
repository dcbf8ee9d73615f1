"""Fixed incentives per action type: paid as stated, never charged, validated."""

import numpy as np
import pytest

from econsim import runner
from econsim.errors import ScenarioError
from tests.reference import small

LEVER = "er52_fixed_lever"


def test_pays_the_stated_amount_per_action():
    sc = small(LEVER, 3, eval_episodes=5, incentives={"lever": 1.5, "door": 0.25})
    tr = sc.make_trainer([0, 1])
    m = tr.iterate()
    expected = 1.5 * m["n_lever"] + 0.25 * m["n_door"]  # [R, N] per-episode counts
    assert np.allclose(m["received"], expected, atol=1e-5)
    assert np.allclose(m["incentives"], expected.sum(1), atol=1e-4)
    assert np.allclose(m["collective"], m["extrinsic"] - m["incentives"], atol=1e-5)
    assert (m["given"] == 0).all()  # the designer pays, agents give nothing
    assert np.allclose(m["offer_lever"], 1.5) and np.allclose(m["offer_start"], 0.0)


def test_bad_incentives_are_refused(tmp_path):
    with pytest.raises(ScenarioError, match="incentives"):
        small(LEVER, 3, eval_episodes=5, incentives={"lever": -1.0})
    with pytest.raises(ValueError, match="unknown action type 'jump'"):
        runner.run(small(LEVER, 3, eval_episodes=5, incentives={"jump": 1.0}), seeds=[0],
                   progress=False, root=tmp_path)
    assert not any(tmp_path.iterdir())  # nothing written


def test_runs_through_the_runner(tmp_path):
    result = runner.run(small(LEVER, 3, eval_episodes=5), seeds=[0], progress=False,
                        root=tmp_path)
    ev = result.final()
    assert {"extrinsic", "incentives", "offer_lever"} <= set(ev.columns)
