"""The scripted GTB worker (learners.gtb_worker): its work-or-rest rule by hand, and its
moves in constructed situations (build, walk to a unit, trade at posted prices)."""

from types import SimpleNamespace

import numpy as np
import pytest

from econsim import envs
from learners.gtb_worker import BUILD, NOOP, ScriptedWorker, WorkerSettings
from learners.gtb_worker import workers as make_workers


@pytest.fixture
def world():
    game = envs.make("gtb")
    state = game.reset(1, np.random.default_rng(0))
    state.res[:] = False  # no units anywhere unless a test places one
    return game, state


def worker(game, **settings):
    return ScriptedWorker(game, np.random.default_rng(0), WorkerSettings(**settings))


def obs_of(game, state, agent=0):
    """What a brain sees of a PlayerAgent: its observation, its cell and the model's state."""
    row, col = divmod(int(state.pos[0, agent]), game.width)
    return SimpleNamespace(observation=game.observe(state)[0, agent], row=row, col=col,
                           model=SimpleNamespace(state=state))


def cell(game, r, c):
    return r * game.width + c


def test_work_or_rest_weighs_utility_after_tax_against_labour(world):
    game, _ = world
    p = game.params
    w = worker(game)
    s = w.s
    gain = lambda coin, net: float(game.crra(coin + net) - game.crra(coin))  # noqa: E731
    cost = lambda labour, aversion=1.0: aversion * p.labor_weight * labour  # noqa: E731
    build_labour = p.build_labor + s.gather_labour  # both units still to gather
    sell_labour = s.gather_labour + 2 * p.order_labor
    sell = lambda tau: gain(10.0, 2 * s.ask_price * (1 - tau)) - cost(sell_labour)  # noqa: E731

    def expected(coin, pay, tau):
        options = {"build": gain(coin, pay * (1 - tau)) - cost(build_labour),
                   "sell": sell(tau)}
        best = max(options, key=options.get)
        return best if options[best] > 0 else "rest"

    # the situations below cover each answer; the rule gives what the utilities say
    cases = [(10.0, 30.0, 0.0), (10.0, 10.0, 0.0), (10.0, 10.0, 0.7)]
    assert [expected(*c) for c in cases] == ["build", "sell", "rest"]
    assert [w.plan(*c) for c in cases] == ["build", "sell", "rest"]
    # units already held need no gathering: at 70% selling them still pays (two orders)
    assert gain(10.0, 2 * s.ask_price * 0.3) > cost(2 * p.order_labor)
    assert w.plan(10.0, 10.0, 0.7, wood=1, stone=1) == "sell"
    # a lazier worker rests where a keen one builds
    assert gain(10.0, 30.0) < cost(build_labour, 4.0)
    assert gain(10.0, 2 * s.ask_price) < cost(sell_labour, 4.0)
    assert worker(game, labour_aversion=4.0).plan(10.0, 30.0, 0.0) == "rest"


def test_builds_on_a_free_cell_and_walks_off_a_source(world):
    game, state = world
    state.skill[0, 0] = 3.0  # pay 30: a builder
    state.inv[0, 0, 1:] = 1  # one wood, one stone
    free = cell(game, 6, 5)
    assert game.world.src_type_flat[free] < 0 and not game.world.water.flat[free]
    state.pos[0, 0] = free
    w = worker(game)
    assert w.act(obs_of(game, state)) == BUILD
    state.pos[0, 0] = cell(game, 0, 0)  # the top-left corner is a wood source
    assert game.world.src_type_flat[cell(game, 0, 0)] >= 0
    assert w.act(obs_of(game, state)) in (2, 4)  # down or right, towards a free cell


def test_walks_to_the_nearest_unit_it_needs(world):
    game, state = world
    state.skill[0, 0] = 3.0
    state.inv[0, 0, 1] = 1  # holds wood: needs stone
    state.pos[0, 0] = cell(game, 6, 4)
    stone = [c for c in np.flatnonzero(game.world.src_type_flat == 1)]
    target = min(stone, key=lambda c: abs(c // 15 - 6) + abs(c % 15 - 4))
    state.res[0, target] = True
    w = worker(game, buy_distance=100)  # never buys: walks
    r, c = divmod(int(target), 15)
    step = w.act(obs_of(game, state))
    moves = {1: (-1, 0), 2: (1, 0), 3: (0, -1), 4: (0, 1)}
    dr, dc = moves[step]
    assert abs(6 + dr - r) + abs(4 + dc - c) == abs(6 - r) + abs(4 - c) - 1  # one step closer


def test_trades_at_posted_prices(world):
    game, state = world
    state.pos[0, 0] = cell(game, 6, 5)
    # a low-skill seller offers the wood it holds
    state.inv[0, 0, 1] = 2
    seller = worker(game, ask_price=4)
    assert seller.act(obs_of(game, state)) == game.trade_action("wood", "ask", 4)
    # a builder lacking stone buys another agent's open ask at up to its bid price
    state.skill[0, 0], state.inv[0, 0, 1] = 3.0, 1
    state.o_code[0, 1, 0] = (1 * 2 + 1) * 11 + 3  # agent 1 asks 3 for a stone
    state.esc[0, 1, 2] = 1
    buyer = worker(game, bid_price=5)
    assert buyer.act(obs_of(game, state)) == game.trade_action("stone", "bid", 3)
    state.o_code[0, 1, 0] = (1 * 2 + 1) * 11 + 8  # too dear: gathers (or bids its own)
    assert buyer.act(obs_of(game, state)) != game.trade_action("stone", "bid", 8)


def test_rests_when_work_does_not_pay(world):
    game, state = world
    state.tax_rates[:] = 0.9
    w = worker(game)
    assert all(w.act(obs_of(game, state, n)) == NOOP for n in range(4))


def test_bad_settings_and_games_fail_with_one_line():
    with pytest.raises(ValueError, match="plays gtb, not 'ipd'"):
        ScriptedWorker(envs.make("ipd"), np.random.default_rng(0))
    with pytest.raises(ValueError, match="prices must be at most the game's max_price 10"):
        make_workers(envs.make("gtb"), np.random.default_rng(0), ask_price=20)
    with pytest.raises(ValueError, match="labour_aversion"):
        make_workers(envs.make("gtb"), np.random.default_rng(0), labour_aversion=-1)
