"""Gather-Trade-Build kernel (SPEC §6): map, moves, gathering, building, the double auction,
taxes, utility, observations, and batch = one-world-at-a-time."""

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from econsim import envs, scenario
from econsim.core import Game, reset_done
from econsim.envs.gtb import SPATIAL_CHANNELS, load_world, world
from econsim.envs.gtb.game import BUILD, DOWN, LEFT, NOOP, RIGHT, UP
from econsim.errors import ScenarioError
from mechanisms.tax import US_FEDERAL_CUTOFFS, US_FEDERAL_RATES, bracket_tax, marginal_rate

W = 15  # map width


def cell(r, c):
    return r * W + c


def clone(state):
    return dataclasses.replace(state, **{f.name: getattr(state, f.name).copy()
                                         for f in dataclasses.fields(state)})


def world_slice(state, b):
    return dataclasses.replace(state, **{f.name: getattr(state, f.name)[b:b + 1].copy()
                                         for f in dataclasses.fields(state)})


def fresh(rng, **params):
    game = envs.make("gtb", **params)
    return game, game.reset(1, rng)


def act(game, state, rng, *actions):
    return game.step(state, np.array([actions]), rng)


def test_map_parse_and_registry():
    w = load_world("pure_and_mixed_15x15")
    assert (w.height, w.width) == (15, 15)
    assert w.counts() == {"wood": 23, "stone": 12, "water": 21}
    # quadrants: stone only in the left half's mixed top and the bottom-right
    assert (w.source[8:, 8:] == 1).sum() == 6 and (w.source[8:, 8:] == 0).sum() == 0
    assert (w.source[:7, 8:] >= 0).sum() == 0  # top-right is empty
    assert (w.nbr[:, 0] >= 0).sum() == 225 - 21  # every dry cell can stay
    game = envs.make("gtb")
    assert isinstance(game, Game) and "gtb" in envs.names()
    assert game.action_space.n == 50 and len(game.action_names) == 50
    assert game.trade_action("wood", "bid", 0) == 6 and game.trade_action(1, 1, 10) == 49
    assert game.action_names[game.trade_action("stone", "ask", 3)] == "ask_stone_3"
    assert game.observation_space.shape == (9 * 11 * 11 + game.vector_size,)


def test_bad_params_are_one_line():
    with pytest.raises(ValueError, match=r"gtb.bad_field: unknown field \(allowed: n_agents") as e:
        envs.make("gtb", bad_field=1)
    assert "\n" not in str(e.value)
    for bad, msg in [({"n_agents": 5}, "needs explicit starts"),
                     ({"max_steps": 95}, "multiple of period_length"),
                     ({"tax_rates": [0.5] * 3}, "rates"),
                     ({"map": "nope"}, "unknown map"),
                     ({"starts": [(7, 0), (0, 14), (14, 0), (14, 14)]}, "water")]:
        with pytest.raises(ValueError, match=msg) as e:
            envs.make("gtb", **bad)
        assert "\n" not in str(e.value)


def test_moves_blocked_by_water_edges_and_agents(rng):
    game, s = fresh(rng, gather_bonus=False, regen_prob=0.0)
    s.pos[0] = [cell(6, 0), cell(0, 14), cell(3, 12), cell(4, 12)]
    step = act(game, s, rng, DOWN, UP, DOWN, NOOP)  # water, edge, agent 3 in the way
    assert step.state.pos[0].tolist() == [cell(6, 0), cell(0, 14), cell(3, 12), cell(4, 12)]
    assert step.state.labor[0].tolist() == [0, 0, 0, 0]
    # contested cell: nobody enters; a free move costs labor 1
    s = step.state
    s.pos[0] = [cell(10, 5), cell(10, 7), cell(12, 10), cell(10, 4)]
    step = act(game, s, rng, RIGHT, LEFT, UP, RIGHT)  # agent 3 into agent 0's (left) cell
    assert step.state.pos[0].tolist() == [cell(10, 5), cell(10, 7), cell(11, 10), cell(10, 4)]
    assert step.state.labor[0].tolist() == [0, 0, 1, 0]
    # houses block others, not their owner
    s = step.state
    s.house[0, cell(5, 10)] = 3
    s.pos[0] = [cell(5, 9), cell(0, 14), cell(14, 0), cell(5, 11)]
    step = act(game, s, rng, RIGHT, NOOP, NOOP, LEFT)
    assert step.state.pos[0, 0] == cell(5, 9) and step.state.pos[0, 3] == cell(5, 10)


def test_gather_adds_resource_and_labor(rng):
    game, s = fresh(rng, gather_bonus=False, regen_prob=0.0)
    step = act(game, s, rng, RIGHT, NOOP, NOOP, NOOP)  # (0,0) -> (0,1), a wood source
    s = step.state
    assert s.inv[0, 0].tolist() == [10, 1, 0] and s.labor[0, 0] == 2
    assert step.info["gathered_wood"][0, 0] == 1 and not s.res[0, cell(0, 1)]
    step = act(game, s, rng, LEFT, NOOP, NOOP, NOOP)  # back onto (0,0): its unit is still there
    step = act(game, step.state, rng, RIGHT, NOOP, NOOP, NOOP)  # (0,1) is empty now
    assert step.state.inv[0, 0, 1] == 2 and step.state.labor[0, 0] == 2 + 2 + 1
    # bonus skill: probability 1 of a second unit; regrowth probability 1 refills at once
    game, s = fresh(rng, gather_bonus=True, regen_prob=1.0)
    s.gather_p[:] = 1.0
    step = act(game, s, rng, RIGHT, NOOP, NOOP, NOOP)
    assert step.state.inv[0, 0, 1] == 2 and step.state.labor[0, 0] == 2
    assert step.state.res[0, cell(0, 1)]


def test_build_consumes_wood_and_stone_and_pays_skill(rng):
    game, s = fresh(rng, regen_prob=0.0)
    s.pos[0, 0] = cell(0, 3)
    s.inv[0, 0, 1:] = [1, 1]
    s.skill[0, 0] = 2.0
    step = act(game, s, rng, BUILD, BUILD, NOOP, NOOP)  # agent 1 has nothing to build with
    s = step.state
    assert s.inv[0, 0].tolist() == [10 + 20, 0, 0] and s.labor[0, 0] == 10
    assert s.house[0, cell(0, 3)] == 0 and s.houses[0].tolist() == [1, 0, 0, 0]
    assert step.info["build_income"][0].tolist() == [20, 0, 0, 0]
    assert s.labor[0, 1] == 0 and s.inv[0, 1].tolist() == [10, 0, 0]
    # not on a house, not on a source cell
    s.inv[0, 0, 1:] = [1, 1]
    step = act(game, s, rng, BUILD, NOOP, NOOP, NOOP)
    assert step.state.inv[0, 0].tolist() == [30, 1, 1]
    s = step.state
    s.pos[0, 0] = cell(0, 1)
    assert not game.action_mask(s)[0, 0, BUILD]
    step = act(game, s, rng, BUILD, NOOP, NOOP, NOOP)
    assert step.state.inv[0, 0].tolist() == [30, 1, 1] and step.state.houses[0, 0] == 1


def _totals(s):
    return (s.inv + s.esc).sum(1)  # [B, 3] coin, wood, stone owned


def test_auction_trades_at_the_earlier_price_with_escrow(rng):
    game, s = fresh(rng, n_agents=2, regen_prob=0.0)
    ask3, bid5 = game.trade_action("wood", "ask", 3), game.trade_action("wood", "bid", 5)
    s.inv[0, 0, 1] = 1
    before = _totals(s)
    step = act(game, s, rng, ask3, NOOP)
    s = step.state
    assert s.inv[0, 0].tolist() == [10, 0, 0] and s.esc[0, 0].tolist() == [0, 1, 0]
    assert s.labor[0].tolist() == [0.25, 0] and (s.o_code >= 0).sum() == 1
    step = act(game, s, rng, NOOP, bid5)  # the ask was first: trade at 3
    s = step.state
    assert s.inv[0].tolist() == [[13, 0, 0], [7, 1, 0]] and s.esc.sum() == 0
    assert step.info["trade_income"][0].tolist() == [3, -3]
    assert step.info["trade_volume"][0].tolist() == [1, 1]
    assert (s.o_code < 0).all() and (_totals(s) == before).all()
    # the bid first: trade at 5 (the bid's escrow pays the seller)
    game, s = fresh(rng, n_agents=2, regen_prob=0.0)
    s.inv[0, 0, 1] = 1
    step = act(game, s, rng, NOOP, bid5)
    assert step.state.inv[0, 1, 0] == 5 and step.state.esc[0, 1, 0] == 5
    step = act(game, step.state, rng, ask3, NOOP)
    assert step.state.inv[0].tolist() == [[15, 0, 0], [5, 1, 0]] and step.state.esc.sum() == 0


def test_auction_priority_no_cross_no_self(rng):
    game, s = fresh(rng, n_agents=3, regen_prob=0.0)
    ta = game.trade_action
    s.inv[0] = [100, 2, 2]
    total = _totals(s)

    def go(*actions):
        nonlocal s
        step = act(game, s, rng, *actions)
        s = step.state
        assert (_totals(s) == total).all()
        return step.info["trade_volume"][0]

    go(ta("wood", "ask", 6), ta("wood", "ask", 4), NOOP)
    # a stone bid finds no stone ask; a wood bid at 3 is below every ask
    vol = go(ta("wood", "ask", 4), ta("stone", "bid", 9), ta("wood", "bid", 3))
    assert (s.o_code >= 0).sum() == 5 and vol.sum() == 0
    # agent 1 skips its own ask at 4 and takes agent 0's ask at 4 (cheapest), paying 4
    assert go(NOOP, ta("wood", "bid", 9), NOOP).tolist() == [1, 1, 0]
    assert s.inv[0, :, 0].tolist() == [104, 100 - 9 - 4, 100 - 3]
    # agent 2's bid at 9 takes the cheapest remaining ask: agent 1's at 4 (not agent 0's 6)
    assert go(NOOP, NOOP, ta("wood", "bid", 9)).tolist() == [0, 1, 1]
    assert s.inv[0, :, 0].tolist() == [104, 91, 100 - 3 - 4]
    assert go(NOOP, NOOP, ta("wood", "bid", 5)).sum() == 0  # 5 < 6: rests
    # an ask meets the highest bid (agent 2's 5, not its 3) at the bid's price
    assert go(NOOP, ta("wood", "ask", 2), NOOP).tolist() == [0, 1, 1]
    assert s.inv[0, 1, 0] == 96 and s.esc[0, 2, 0] == 3
    # equal prices: the older order trades first (agent 2's bid at 3 before agent 0's)
    go(ta("wood", "bid", 3), NOOP, NOOP)
    assert go(NOOP, ta("wood", "ask", 0), NOOP).tolist() == [0, 1, 1]
    assert s.esc[0, 0, 0] == 3 and s.esc[0, 2, 0] == 0


def test_orders_expire_after_50_steps(rng):
    game, s = fresh(rng, n_agents=2, regen_prob=0.0)
    step = act(game, s, rng, game.trade_action("stone", "bid", 4), NOOP)
    for _ in range(48):
        step = act(game, step.state, rng, NOOP, NOOP)
    s = step.state  # 49 steps after placing: still open
    assert s.t[0] == 49 and s.esc[0, 0, 0] == 4 and s.inv[0, 0, 0] == 6
    step = act(game, s, rng, NOOP, NOOP)
    assert (step.state.o_code < 0).all() and step.state.inv[0, 0, 0] == 10
    assert step.state.esc.sum() == 0


def test_at_most_five_open_orders(rng):
    game, s = fresh(rng, n_agents=2, regen_prob=0.0)
    bid = game.trade_action("wood", "bid", 1)
    for _ in range(5):
        s = act(game, s, rng, bid, NOOP).state
    assert (s.o_code[0, 0] >= 0).sum() == 5 and s.esc[0, 0, 0] == 5
    mask = game.action_mask(s)
    assert not mask[0, 0, 6:].any() and mask[0, 1, 6:].any()
    s = act(game, s, rng, bid, NOOP).state
    assert s.esc[0, 0, 0] == 5 and s.labor[0, 0] == 5 * 0.25


def test_tax_only_at_period_ends_and_budget_balanced(rng):
    game, s = fresh(rng, tax_rates=list(US_FEDERAL_RATES))
    for _ in range(9):
        step = act(game, s, rng, NOOP, NOOP, NOOP, NOOP)
        s = step.state
        assert not step.info["period_end"][0] and step.info["tax"].sum() == 0
        assert step.info["period"][0] == 0
    s.inv[0, :, 0] = [10, 30, 110, 600]
    step = act(game, s, rng, NOOP, NOOP, NOOP, NOOP)
    income = np.array([0, 20, 100, 590.0])
    tax = bracket_tax(income, US_FEDERAL_CUTOFFS, US_FEDERAL_RATES)
    assert step.info["period_end"][0] and step.info["period"][0] == 0
    assert np.allclose(step.info["income"][0], income)
    assert np.allclose(step.info["tax"][0], tax)
    assert np.allclose(step.info["transfer"][0], tax.mean())
    assert np.isclose(step.info["tax"].sum(), step.info["transfer"].sum())
    coin = np.array([10, 30, 110, 600.0]) - tax + tax.mean()
    assert np.allclose(step.state.inv[0, :, 0], coin)
    assert np.allclose(step.state.coin_last[0], coin)
    # tax is capped at the coin in the inventory (escrow is not taxed)
    s = step.state
    s.t[:] = 19
    s.esc[0, 3, 0], s.inv[0, 3, 0] = s.coin_last[0, 3] + 99.0, 1.0  # income 100, 1 in hand
    step = act(game, s, rng, NOOP, NOOP, NOOP, NOOP)
    assert np.isclose(step.info["income"][0, 3], 100.0) and step.info["tax"][0, 3] == 1.0
    assert step.state.inv[0, 3, 0] == step.info["transfer"][0, 3]
    # per-world rates, set for the next period
    game.set_tax_rates(step.state, np.zeros(7))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        game.set_tax_rates(step.state, np.full(7, 2.0))


def _random_legal(game, state, rng):
    mask = game.action_mask(state)
    scores = rng.random(mask.shape) * mask
    return scores.argmax(-1)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31), steps=st.integers(1, 100), legal=st.booleans(),
       rates=st.lists(st.floats(0, 1), min_size=7, max_size=7))
def test_conservation_properties(seed, steps, legal, rates):
    """Trades and tax + redistribution conserve coin; only building makes coin and only
    gathering makes resources; nothing goes negative; escrow equals the open orders'."""
    rng = np.random.default_rng(seed)
    game = envs.make("gtb", tax_rates=rates)
    s = game.reset(3, rng)
    for _ in range(steps):
        a = _random_legal(game, s, rng) if legal else game.action_space.sample(rng, (3, 4))
        before, u_before = _totals(s), s.utility.copy()
        step = game.step(s, a, rng)
        s, info = step.state, step.info
        after = _totals(s)
        assert np.allclose(after[:, 0] - before[:, 0], info["build_income"].sum(1))
        assert np.allclose(after[:, 1] - before[:, 1],
                           info["gathered_wood"].sum(1) - info["built"].sum(1))
        assert np.allclose(after[:, 2] - before[:, 2],
                           info["gathered_stone"].sum(1) - info["built"].sum(1))
        assert (s.inv >= -1e-9).all() and (s.esc >= -1e-9).all()
        assert np.allclose(s.esc, game.market.escrow[s.o_code + 1].sum(2))
        assert np.allclose(info["tax"].sum(1), info["transfer"].sum(1))
        assert (info["tax"][~info["period_end"]] == 0).all()
        assert np.allclose(info["trade_income"].sum(1), 0)
        assert np.allclose(step.reward, info["utility"] - u_before, atol=1e-5)
        assert np.allclose(info["utility"], game.crra(info["coin"]) - 0.21 * s.labor)


def test_reward_is_utility_difference_over_an_episode(rng):
    game = envs.make("gtb", tax_rates=list(US_FEDERAL_RATES))
    s = game.reset(4, rng)
    u0 = s.utility.copy()
    assert np.allclose(u0, ((10 ** 0.77) - 1) / 0.77)
    total = np.zeros((4, 4))
    for t in range(100):
        step = game.step(s, _random_legal(game, s, rng), rng)
        s = step.state
        total += step.reward
        assert step.done.all() == (t == 99)
    assert np.allclose(total, s.utility - u0, atol=1e-3)
    assert step.info["period"].tolist() == [9] * 4
    s = reset_done(game, s, step.done, rng)
    assert (s.t == 0).all() and (s.o_code < 0).all()


def test_batch_equals_worlds_one_at_a_time(rng):
    game = envs.make("gtb", tax_rates=list(US_FEDERAL_RATES), regen_prob=0.2)
    batch = game.reset(5, rng)
    singles = [world_slice(batch, b) for b in range(5)]
    plan = rng.integers(0, game.action_space.n, size=(35, 5, 4))
    for a in plan:
        step = game.step(batch, a, rng)
        batch = step.state
        for b in range(5):
            one = game.step(singles[b], a[b:b + 1], rng)
            singles[b] = one.state
            assert np.array_equal(one.reward[0], step.reward[b])
            assert np.array_equal(one.obs[0], step.obs[b])
            for k, v in step.info.items():
                assert np.array_equal(one.info[k][0], v[b]), k
    for b in range(5):
        for f in dataclasses.fields(batch):
            assert np.array_equal(getattr(singles[b], f.name)[0], getattr(batch, f.name)[b])


def test_seeded_runs_are_identical():
    def run(seed):
        rng = np.random.default_rng(seed)
        game = envs.make("gtb")
        s = game.reset(3, rng)
        out = []
        for _ in range(30):
            step = game.step(s, game.action_space.sample(rng, (3, 4)), rng)
            s = step.state
            out.append(step.obs)
        return np.stack(out)

    assert np.array_equal(run(7), run(7)) and not np.array_equal(run(7), run(8))


def test_observation_layout(rng):
    game, s = fresh(rng, regen_prob=0.0)
    s.pos[0, 1] = cell(2, 3)
    s.house[0, cell(1, 0)] = 0
    s.house[0, cell(0, 3)] = 1
    obs = game.observe(s)
    spatial, vec = game.split_obs(obs)
    assert spatial.shape == (1, 4, 9, 11, 11) and vec.shape == (1, 4, game.vector_size)
    ch = {name: spatial[0, 0, i] for i, name in enumerate(SPATIAL_CHANNELS)}
    out = ch["outside"]
    assert out[:5].all() and out[:, :5].all() and not out[5:, 5:].any()
    assert ch["agent"][5, 5] == 1 and ch["agent"][7, 8] == 1 and ch["agent"].sum() == 2
    assert ch["wood"][5, 5] == ch["wood"][5, 6] == ch["wood_source"][5, 7] == 1
    assert ch["own_house"][6, 5] == 1 and ch["own_house"].sum() == 1
    assert ch["other_house"][5, 8] == 1 and ch["other_house"].sum() == 1
    assert spatial[0, 1, SPATIAL_CHANNELS.index("own_house"), 3, 5] == 1
    water = np.pad(load_world("pure_and_mixed_15x15").water, 5)
    for i, (r, c) in enumerate(zip(*np.divmod(s.pos[0], W), strict=True)):
        view = spatial[0, i, SPATIAL_CHANNELS.index("water")]
        assert np.array_equal(view, water[r:r + 11, c:c + 11])
    assert spatial[0, 1, SPATIAL_CHANNELS.index("water")].sum() == 12
    f = game.vector_fields
    assert vec[0, 0, f["coin"]].tolist() == [10] and vec[0, 2, f["row"]].tolist() == [1.0]
    # order book counts and marginal rates in the vector
    s.inv[0, 0, 1] = 1
    game.set_tax_rates(s, US_FEDERAL_RATES)
    step = act(game, s, rng, game.trade_action("wood", "ask", 7), NOOP, NOOP, NOOP)
    _, vec = game.split_obs(step.obs)
    code = 1 * 11 + 7  # wood ask at 7
    assert vec[0, 0, f["own_orders"]][code] == 1 and vec[0, 0, f["own_orders"]].sum() == 1
    assert vec[0, 1, f["other_orders"]][code] == 1 and vec[0, 1, f["own_orders"]].sum() == 0
    income = step.info["income"]
    assert np.allclose(vec[0, :, f["marginal_rate"]][:, 0],
                       marginal_rate(income, US_FEDERAL_CUTOFFS, step.state.tax_rates)[0])
    assert np.allclose(vec[0, :, f["tax_rates"]], US_FEDERAL_RATES)
    assert vec[0, 0, f["period_progress"]] == pytest.approx(0.1)


def test_action_mask_matches_what_the_step_does(rng):
    """With the others idle, a legal action always costs labor and an illegal one does the
    same as a no-op."""
    game = envs.make("gtb", regen_prob=0.05)
    s = game.reset(1, rng)
    noop = np.zeros((1, 4), np.int64)
    for _ in range(60):
        s = game.step(s, _random_legal(game, s, rng), rng).state
        if rng.random() < 0.3:
            s.inv[0, 0, 1:] += 1
        mask = game.action_mask(s)[0, 0]
        idle = game.step(clone(s), noop, rng).state
        for a in range(game.action_space.n):
            acts = noop.copy()
            acts[0, 0] = a
            after = game.step(clone(s), acts, rng).state
            worked = after.labor[0, 0] > s.labor[0, 0]
            assert worked == (mask[a] and a != NOOP), (a, game.action_names[a])
            if not worked:
                for f in dataclasses.fields(s):
                    assert np.array_equal(getattr(after, f.name), getattr(idle, f.name))


@pytest.mark.parametrize("name", ["../../../etc/passwd", "/etc/hostname.txt", "maps/x",
                                  "pure_and_mixed_15x15.txt", "..", ""])
def test_a_map_is_a_name_never_a_path(name):
    """A scenario cannot make econsim read a file outside the map folders."""
    with pytest.raises(ScenarioError, match="unknown map") as err:
        scenario.from_dict({"name": "m", "env": {"name": "gtb", "map": name},
                            "algorithm": {"name": "ppo"}})
    assert "\n" not in str(err.value)


def test_own_maps_come_from_the_maps_folder_only(tmp_path, monkeypatch):
    packaged = (world.MAPS_DIR / "pure_and_mixed_15x15.txt").read_text()
    (tmp_path / "mine.txt").write_text(packaged)
    outside = tmp_path.parent / f"{tmp_path.name}-outside.txt"
    outside.write_text(packaged)
    (tmp_path / "link.txt").symlink_to(outside)
    monkeypatch.setenv(world.MAPS_ENV, str(tmp_path))
    assert envs.make("gtb", map="mine").world.height == 15
    with pytest.raises(ValueError, match="unknown map"):
        envs.make("gtb", map="link")  # resolves outside the folder
    monkeypatch.delenv(world.MAPS_ENV)
    with pytest.raises(ValueError, match="unknown map"):
        envs.make("gtb", map="mine")


def test_bad_actions_and_books_are_one_line_errors(rng):
    """The compiled kernel trusts its inputs, so the game checks them first: actions of
    another shape, out of range or not integers, and a book of another width."""
    game = envs.make("gtb")
    s = game.reset(3, rng)
    for bad, what in ((np.zeros((1, 4), np.int64), "shape"), (np.full((3, 4), 50), "integers"),
                      (np.full((3, 4), -1), "integers"), (np.zeros((3, 4)), "integers")):
        with pytest.raises(ValueError, match=f"gtb: actions must .*{what}"):
            game.step(s, bad, rng)
    s.o_code, s.o_seq = s.o_code[..., :2], s.o_seq[..., :2]
    for call in (lambda: game.step(s, np.zeros((3, 4), np.int64), rng),
                 lambda: game.action_mask(s)):
        with pytest.raises(ValueError, match="order book has 2 slots per agent, the game 5"):
            call()
