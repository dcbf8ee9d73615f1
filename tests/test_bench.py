"""econsim.bench: what one measured step holds (legal random actions, observation), the
checksum as a fingerprint of the work, rounds and warm-up."""

import itertools

import numpy as np
import pytest

from econsim import bench, envs
from econsim.core import make_rng


def _play(env: str, sampler: str, steps: int, batch: int = 8, seed: int = 0):
    """``steps`` steps of the benchmark's play: the state, last observation, and GTB's
    houses built and labour."""
    game = envs.make(env)
    houses = labour = 0.0
    played = list(itertools.islice(
        bench.random_play(game, batch, sampler, make_rng(seed, "bench")), steps))
    for _, _, step in played:
        houses += float(np.sum(step.info.get("built", 0)))
        labour += float(np.sum(step.info.get("labor", 0)))
    state, obs, _ = played[-1]
    return state, obs, houses, labour


def test_masked_random_play_moves_the_economy_more_than_uniform_play():
    """Uniform actions over GTB's 50 are mostly illegal (no-ops): masked random play, the
    default, gathers and builds as in play."""
    _, _, houses_m, labour_m = _play("gtb", "masked", 200)
    _, _, houses_u, labour_u = _play("gtb", "uniform", 200)
    assert labour_m > 2 * labour_u and houses_m >= houses_u


def test_the_checksum_fingerprints_the_seed_batch_and_steps():
    a = bench.checksum(*_play("cleanup", "masked", 30)[:2])
    b = bench.checksum(*_play("cleanup", "masked", 30)[:2])
    c = bench.checksum(*_play("cleanup", "masked", 31)[:2])
    assert a == b and a != c


def test_measure_reports_rounds_and_the_sampler_used():
    row = bench.measure("ipd", {}, batch=32, seconds=0.02, rounds=3, warmup=0.01)
    assert row["min"] <= row["env_steps_per_s"] <= row["max"]
    assert row["sampler"] == "uniform"  # the IPD has no action mask: all actions are legal
    assert row["steps"] > 0 and len(row["checksum"]) == 16
    assert bench.measure("gtb", {}, batch=2, seconds=0.02, rounds=1, warmup=0)[
        "sampler"] == "masked"
    with pytest.raises(ValueError, match="--sampler: 'all' is not allowed"):
        bench.measure("ipd", {}, sampler="all")


def test_training_throughput_splits_game_and_learner_time_and_counts_flops(tmp_path, capsys):
    import json

    from econsim import cli, scenario

    sc = scenario.load("ipd_pg")
    game = sc.make_game()
    step = vars(type(game))["step"]
    row = bench.train_throughput("ipd_pg", iterations=2, seeds=[0, 1])
    # training plays batch episodes of max_steps steps per seed and iteration
    assert row["env_steps"] == 2 * 2 * sc.trainer_config().batch * game.max_steps
    shares = row["env_share"], row["inference_share"], row["update_share"]
    assert all(0 < x < 1 for x in shares) and sum(shares) == pytest.approx(1, abs=3e-3)
    assert row["learner_gflops"] > 0 and row["matmul_peak_gflops"] > 0
    out = tmp_path / "train.json"
    assert cli.main(["bench", "--train", "ipd_pg", "--iterations", "1", "--seeds", "0",
                     "--json", str(out)]) == 0
    assert "env-steps/s" in capsys.readouterr().out
    assert json.loads(out.read_text())["rows"][0]["scenario"] == "ipd_pg"
    assert cli.main(["bench", "--train", "ipd_pg", "--iterations", "0"]) == 2
    assert "--iterations: 0 is not allowed" in capsys.readouterr().err
    assert cli.main(["bench", "gtb", "--dense"]) == 2
    assert "--dense: only with --train" in capsys.readouterr().err
    assert vars(type(game))["step"] is step  # the games' classes are restored


def test_outermost_times_only_the_outer_of_nested_calls():
    from econsim.core.timing import outermost

    seen, depth = [], [0]
    inner = outermost(lambda x: x, depth, lambda s, a: seen.append(("inner", a)))
    outer = outermost(lambda x: inner(x) + 1, depth, lambda s, a: seen.append(("outer", a)))
    assert outer(2) == 3 and inner(5) == 5
    assert seen == [("outer", (2,)), ("inner", (5,))] and depth == [0]


def test_pick_legal_is_uniform_over_the_legal_actions():
    """One uniform per row picks among that row's legal actions only, each equally often."""
    legal = np.array([[True, False, True, True, False], [False, False, False, False, True]])
    u = np.random.default_rng(0).random((40_000, 2))
    picks = bench.pick_legal(np.broadcast_to(legal, (40_000, 2, 5)), u)
    assert picks.shape == (40_000, 2) and legal[[0, 1], picks].all()
    share = np.bincount(picks[:, 0], minlength=5) / 40_000
    assert np.allclose(share[[0, 2, 3]], 1 / 3, atol=0.01) and share[[1, 4]].sum() == 0
    assert (picks[:, 1] == 4).all()
    assert bench.pick_legal(np.zeros((1, 3), bool), np.array([0.7])).tolist() == [0]
    with pytest.raises(ValueError, match=r"one uniform per row of legal actions, got \(3,\)"):
        bench.pick_legal(legal, np.zeros(3))
