"""Cleanup kernel (SPEC §3): maps and spawns, moves, apples, the cleaning beam's geometry,
waste / apple spawning and its thresholds, observations, batch = one world at a time, Mesa."""

import dataclasses

import numpy as np
import pytest

from econsim import envs
from econsim.core import Game, reset_done
from econsim.envs.cleanup import (
    AGENT_COLOURS,
    CLEAN,
    COLOURS,
    DOWN,
    LEFT,
    RIGHT,
    STAY,
    UP,
    parse_map,
    spawn_probs,
)
from econsim.model import EconModel


def world_slice(state, b):
    return dataclasses.replace(state, **{f.name: getattr(state, f.name)[b:b + 1].copy()
                                         for f in dataclasses.fields(state)})


def fresh(rng, batch=1, **params):
    game = envs.make("cleanup", **params)
    return game, game.reset(batch, rng)


def place(game, state, *cells):
    """Put agent k on ``cells[k]`` = (row, col) in every world."""
    state.pos[:] = [game.cell(r, c) for r, c in cells]


def waste_at(game, state, b=0):
    """Sorted (row, col) of the waste cells of world ``b``."""
    return sorted(divmod(int(i), game.width) for i in np.flatnonzero(state.waste[b]))


def act(game, state, rng, *actions):
    return game.step(state, np.array([actions]), rng)


# ---------------------------------------------------------------------------- maps, params
def test_maps_spawns_and_defaults(rng):
    lay = parse_map("7x7")
    assert lay["wall"].shape == (7, 7) and lay["spawns"] == [(5, 2), (1, 4)]
    assert parse_map("10x10")["spawns"] == [(8, 3), (5, 4), (1, 6)]
    game, s = fresh(rng)
    assert isinstance(game, Game) and "cleanup" in envs.names()
    assert (game.height, game.width, game.n_agents, game.n_wasteable) == (7, 7, 2, 2)
    d = game.describe(s)
    assert d["row"][0].tolist() == [5, 1] and d["col"][0].tolist() == [2, 4]
    assert game.image_shape == (9, 9, 3) and game.observation_space.shape == (243,)
    assert game.action_space.n == 6 and game.action_names[CLEAN] == "clean"
    assert waste_at(game, s) == [(1, 1), (2, 1)] and not s.apple.any()  # d = 1, no apples
    assert game.waste_density(s)[0] == 1.0
    big, s = fresh(rng, map="10x10")
    assert (big.n_agents, big.n_wasteable, big.image_shape) == (3, 16, (15, 15, 3))
    assert (big.apple_prob, big.depletion, big.restoration, big.waste_prob) == (0.3, 0.4, 0, 0.5)
    assert big.describe(s)["row"][0].tolist() == [8, 5, 1]
    assert big.waste_density(s)[0] == 0.5 and big.max_steps == 50


def test_bad_params_are_one_line():
    for bad, msg in [({"foo": 1}, r"cleanup.foo: unknown field \(allowed: map"),
                     ({"map": "5x5"}, "allowed: 7x7, 10x10"),
                     ({"n_agents": 3}, "more than the 2 spawn cells"),
                     ({"restoration_threshold": 0.7}, "must be below depletion"),
                     ({"beam_width": 2}, "odd"),
                     ({"apple_respawn_prob": 1.5}, "apple_respawn_prob"),
                     ({"max_steps": 0}, "max_steps")]:
        with pytest.raises(ValueError, match=msg) as e:
            envs.make("cleanup", **bad)
        assert "\n" not in str(e.value)


# ---------------------------------------------------------------------------- moves, apples
def test_moves_walls_and_conflicts(rng):
    game, s = fresh(rng)
    place(game, s, (1, 1), (1, 5))
    step = act(game, s, rng, LEFT, RIGHT)  # both into walls
    assert step.state.pos[0].tolist() == [game.cell(1, 1), game.cell(1, 5)]
    place(game, s, (3, 2), (3, 4))
    step = act(game, s, rng, RIGHT, LEFT)  # both into (3, 3): exactly one gets it
    winners = [divmod(int(p), 7) == (3, 3) for p in step.state.pos[0]]
    assert sum(winners) == 1
    loser = winners.index(False)
    assert divmod(int(step.state.pos[0, loser]), 7) == [(3, 2), (3, 4)][loser]
    # over many worlds both agents win some conflicts
    game, s = fresh(rng, batch=200)
    place(game, s, (3, 2), (3, 4))
    step = game.step(s, np.tile([RIGHT, LEFT], (200, 1)), rng)
    won0 = step.state.pos[:, 0] == game.cell(3, 3)
    assert ((step.state.pos == game.cell(3, 3)).sum(1) == 1).all() and 40 < won0.sum() < 160
    # a move into a cell where another agent stays fails; following a leader works
    game, s = fresh(rng)
    place(game, s, (3, 2), (3, 3))
    step = act(game, s, rng, RIGHT, STAY)
    assert step.state.pos[0].tolist() == [game.cell(3, 2), game.cell(3, 3)]
    step = act(game, step.state, rng, RIGHT, RIGHT)
    assert step.state.pos[0].tolist() == [game.cell(3, 3), game.cell(3, 4)]
    step = act(game, step.state, rng, UP, DOWN)
    assert step.state.pos[0].tolist() == [game.cell(2, 3), game.cell(4, 4)]


def test_apple_consumption_reward(rng):
    game, s = fresh(rng)
    place(game, s, (3, 4), (5, 2))
    s.apple[0, game.cell(3, 5)] = True
    s.apple[0, game.cell(4, 5)] = True
    step = act(game, s, rng, RIGHT, STAY)
    assert step.reward.tolist() == [[1.0, 0.0]] and step.info["apples"].tolist() == [[1, 0]]
    assert not step.state.apple[0, game.cell(3, 5)] and step.state.apple[0, game.cell(4, 5)]
    step = act(game, step.state, rng, DOWN, STAY)
    assert step.reward.tolist() == [[1.0, 0.0]]
    assert game.describe(step.state)["apples"][0].tolist() == [2, 0]


# ---------------------------------------------------------------------------- beam geometry
def test_beam_each_ray_cleans_at_most_one_waste(rng):
    """10x10, one agent at (8, 1): centre ray from (7, 1), right ray from (8, 2), left ray in
    the wall. River columns 1-2: waste (H) rows 1, 3, 5, 7; river (R) rows 2, 4, 6, 8."""
    game, s = fresh(rng, map="10x10", n_agents=1, waste_spawn_prob=0.0)
    place(game, s, (8, 1))
    assert waste_at(game, s) == [(r, c) for r in (1, 3, 5, 7) for c in (1, 2)]
    step = act(game, s, rng, CLEAN)
    assert step.info["waste_cleaned"].tolist() == [[2]]
    assert step.info["fired_hit"].tolist() == [[True]] and not step.info["fired_miss"].any()
    assert waste_at(game, step.state) == [(r, c) for r in (1, 3, 5) for c in (1, 2)]
    beam = {divmod(int(i), 10) for i in np.flatnonzero(step.state.beam[0])}
    assert beam == {(7, 1), (8, 2), (7, 2)}  # the stopping waste cell is covered, walls not
    step = act(game, step.state, rng, CLEAN)  # next waste row 5: centre 3 cells, side 4 away
    assert step.info["waste_cleaned"].tolist() == [[2]]
    assert (5, 1) not in waste_at(game, step.state) and (5, 2) not in waste_at(game, step.state)
    # length 5: the centre ray reaches row 3 (rows 7..3), the side ray only row 4 (rows 8..4)
    step = act(game, step.state, rng, CLEAN)
    assert step.info["waste_cleaned"].tolist() == [[1]]
    assert waste_at(game, step.state)[:2] == [(1, 1), (1, 2)]
    assert (3, 2) in waste_at(game, step.state) and (3, 1) not in waste_at(game, step.state)


def test_beam_side_rays_start_beside_agent_and_stop_at_walls(rng):
    game, s = fresh(rng, map="10x10", n_agents=1, waste_spawn_prob=0.0)
    place(game, s, (5, 3))  # left ray starts at (5, 2), a waste cell beside the agent
    step = act(game, s, rng, CLEAN)
    assert step.info["waste_cleaned"].tolist() == [[1]]
    assert (5, 2) not in waste_at(game, step.state) and (5, 1) in waste_at(game, step.state)
    beam = {divmod(int(i), 10) for i in np.flatnonzero(step.state.beam[0])}
    # centre (4..1, 3) stops at the top wall after 4 cells, right (5..1, 4)
    assert beam == {(5, 2)} | {(r, 3) for r in range(1, 5)} | {(r, 4) for r in range(1, 6)}
    # on 7x7 at (2, 1): the centre ray cleans (1, 1), the left ray is in the wall
    game, s = fresh(rng)
    place(game, s, (2, 1), (5, 2))
    step = act(game, s, rng, CLEAN, STAY)
    assert waste_at(game, step.state) == [(2, 1)]  # the agent's own cell is not on a ray
    step = act(game, step.state, rng, CLEAN, STAY)  # centre ray ends at the wall: a miss
    assert step.info["fired_miss"].tolist() == [[True, False]]
    assert step.info["waste_cleaned"].sum() == 0 and waste_at(game, step.state) == [(2, 1)]


def test_beam_stops_at_agents_and_ignores_non_river_cells(rng):
    game, s = fresh(rng, map="10x10", n_agents=2, waste_spawn_prob=0.0)
    s.waste[0, game.cell(7, 1)] = s.waste[0, game.cell(7, 2)] = False
    place(game, s, (8, 1), (6, 1))  # agent1 stands in the centre ray's path
    step = act(game, s, rng, CLEAN, STAY)
    assert step.info["waste_cleaned"].tolist() == [[1, 0]]  # only the right ray's (5, 2)
    assert (5, 1) in waste_at(game, step.state) and (5, 2) not in waste_at(game, step.state)
    # over apples and floor: nothing changes, a miss
    game, s = fresh(rng, map="10x10", n_agents=1, waste_spawn_prob=0.0)
    place(game, s, (8, 8))
    s.apple[0, [game.cell(7, 8), game.cell(6, 7), game.cell(4, 8)]] = True
    before_w, before_a = s.waste.copy(), s.apple.copy()
    step = act(game, s, rng, CLEAN)
    assert step.info["fired_miss"].tolist() == [[True]] and step.reward.sum() == 0
    assert (step.state.waste == before_w).all() and (step.state.apple >= before_a).all()
    # waste only ever lies on the river (H / R cells), whatever the agents do
    game, s = fresh(np.random.default_rng(1), batch=64, map="10x10")
    river = np.zeros(game.n_cells, bool)
    river[game._wcells] = True
    for _ in range(60):
        step = game.step(s, game.action_space.sample(rng, (64, 3)), rng)
        s = reset_done(game, step.state, step.done, rng)
        assert not (s.waste & ~river).any()
        assert (step.info["fired_hit"] | step.info["fired_miss"] == step.info["fired"]).all()
        assert (step.info["waste_cleaned"] <= 3).all()


def test_two_beams_on_one_waste_count_for_both(rng):
    game, s = fresh(rng, map="10x10", n_agents=2, waste_spawn_prob=0.0)
    place(game, s, (6, 1), (6, 3))  # (5, 1) is agent0's centre; (5, 2) both side rays
    step = act(game, s, rng, CLEAN, CLEAN)
    assert step.info["waste_cleaned"].tolist() == [[2, 1]]
    assert (5, 1) not in waste_at(game, step.state) and (5, 2) not in waste_at(game, step.state)
    assert step.info["fired_onehot"].tolist() == [[[0, 1], [0, 1]]]


# ---------------------------------------------------------------------------- spawning
def test_spawn_probability_function():
    pa, pw = spawn_probs([0.0, 0.3, 0.6, 0.9], 0.5, 0.6, 0.0, 0.5)
    assert pa.tolist() == pytest.approx([0.5, 0.25, 0.0, 0.0])
    assert pw.tolist() == [0.5, 0.5, 0.0, 0.0]
    pa, _ = spawn_probs([0.1, 0.2, 0.3, 0.4], 0.3, 0.4, 0.2, 0.5)  # restoration 0.2
    assert pa.tolist() == pytest.approx([0.3, 0.3, 0.15, 0.0])
    d = np.linspace(0.2, 0.4, 11)
    pa, _ = spawn_probs(d, 0.3, 0.4, 0.2, 0.5)
    assert np.allclose(np.diff(pa), -0.03)  # linear in between


def test_depleted_river_spawns_nothing(rng):
    game, s = fresh(rng, batch=32)  # 7x7 starts at d = 1
    for _ in range(20):
        step = game.step(s, np.full((32, 2), STAY), rng)
        s = step.state
    assert not s.apple.any() and (s.waste.sum(1) == 2).all()
    assert (step.info["apple_prob"] == 0).all() and (step.info["waste_density"] == 1).all()


def test_clean_river_spawns_apples_and_one_waste_per_step(rng):
    game, s = fresh(rng, batch=64, map="10x10", waste_spawn_prob=1.0, apple_respawn_prob=1.0)
    s.waste[:] = False
    place(game, s, (8, 8), (5, 4), (1, 6))  # agent0 on a B cell
    for k in range(1, 10):
        step = game.step(s, np.full((64, 3), STAY), rng)
        s = step.state
        assert (s.waste.sum(1) == min(k, 7)).all()  # one per step until d = 7/16 >= 0.4
    b_cells = parse_map("10x10")["apple_cell"].ravel()
    # apples grow only on B cells and never under an agent
    assert not s.apple[:, game.cell(8, 8)].any() and not (s.apple & ~b_cells).any()
    # d = 0 at full apple prob: every free B cell grows an apple in one step
    game, s = fresh(rng, batch=8, map="10x10", apple_respawn_prob=1.0, waste_spawn_prob=0.0)
    s.waste[:] = False
    place(game, s, (8, 8), (5, 4), (1, 6))
    step = game.step(s, np.full((8, 3), STAY), rng)
    assert (step.state.apple.sum(1) == b_cells.sum() - 1).all()
    assert (step.info["apple_prob"] == 1.0).all()


def test_waste_spawn_rate_matches_rule(rng):
    """7x7 with a clean river: P(one new waste) = 1 - (1 - 0.5)^2 = 0.75, never two."""
    game, s = fresh(rng, batch=4000)
    s.waste[:] = False
    step = game.step(s, np.full((4000, 2), STAY), rng)
    new = step.state.waste.sum(1)
    assert new.max() == 1 and abs(new.mean() - 0.75) < 0.03
    both = step.state.waste[:, [game.cell(1, 1), game.cell(2, 1)]]
    assert abs(both[:, 0].mean() - both[:, 1].mean()) < 0.05  # random order of the scan
    # spawning uses the density after cleaning, before this step's new waste: d = 0
    assert (step.info["apple_prob"] == 0.5).all() and (step.info["waste_prob"] == 0.5).all()
    assert abs(step.state.apple.sum(1).mean() - 2.5) < 0.1  # 5 B cells at prob 0.5


# ---------------------------------------------------------------------------- observations
def test_observation_colours(rng):
    game, s = fresh(rng)
    obs = game.observe(s)
    img = game.split_image(obs)[0, 0] * 256  # agent0 at (5, 2), window rows 1..9, cols -2..6
    assert obs.dtype == np.float32 and obs.shape == (1, 2, 243)
    assert tuple(img[4, 4]) == AGENT_COLOURS[0]  # itself at the centre
    assert tuple(img[0, 6]) == AGENT_COLOURS[1]  # agent1 at (1, 4)
    assert tuple(img[0, 3]) == COLOURS["waste"]  # (1, 1)
    assert tuple(img[5, 4]) == COLOURS["wall"]  # (6, 2)
    assert tuple(img[8, 4]) == COLOURS["empty"] and tuple(img[4, 0]) == COLOURS["empty"]
    full = game.global_image(s)[0] * 256
    assert full.shape == (7, 7, 3) and tuple(full[1, 1]) == COLOURS["waste"]
    s.waste[0, game.cell(1, 1)] = False
    s.apple[0, game.cell(2, 5)] = True
    full = game.global_image(s)[0] * 256
    assert tuple(full[1, 1]) == COLOURS["river"] and tuple(full[2, 5]) == COLOURS["apple"]
    assert (game.render_rgb(s) == full.astype(np.uint8)).all()
    step = act(game, s, rng, STAY, CLEAN)  # agent1 at (1, 4): beam on (1, 3), (1, 5)
    full = game.global_image(step.state)[0] * 256
    assert tuple(full[1, 3]) == COLOURS["beam"] and tuple(full[1, 5]) == COLOURS["beam"]
    assert game.fired_onehot(step.state).tolist() == [[[1, 0], [0, 1]]]


# ---------------------------------------------------------------------------- batch, Mesa
@pytest.mark.parametrize("map_", ["7x7", "10x10"])
def test_batch_equals_single_worlds(map_):
    rng = np.random.default_rng(3)
    game = envs.make("cleanup", map=map_)
    b, n = 6, game.n_agents
    acts = rng.integers(0, 6, size=(50, b, n))
    acts[::3] = CLEAN  # make cleaning (and so spawning) happen
    state = game.reset(b, rng)
    singles = [world_slice(state, i) for i in range(b)]
    for a in acts:
        step = game.step(state, a, rng)
        state = step.state
        for i in range(b):
            one = game.step(singles[i], a[i:i + 1], np.random.default_rng(99))
            singles[i] = one.state
            assert (one.obs[0] == step.obs[i]).all() and (one.reward[0] == step.reward[i]).all()
            assert (one.state.waste[0] == state.waste[i]).all()
            assert one.info["waste_cleaned"][0].tolist() == step.info["waste_cleaned"][i].tolist()
    assert step.done.all()
    # the same reset rng gives the same trajectory
    g2 = envs.make("cleanup", map=map_)
    s2 = g2.reset(b, np.random.default_rng(3))
    s1 = game.reset(b, np.random.default_rng(3))
    for a in acts[:10]:
        o1, o2 = game.step(s1, a, rng), g2.step(s2, a, rng)
        s1, s2 = o1.state, o2.state
        assert (o1.obs == o2.obs).all()


def test_econ_model_hosts_cleanup_on_a_grid():
    game = envs.make("cleanup")
    model = EconModel(game, seed=0)
    assert model.grid_shape == (7, 7)
    for _ in range(game.max_steps):
        model.step()
        for p in model.players:
            assert p.cell.coordinate == (p.row, p.col)
    assert model.episodes_done == 1 and not model.running
    assert {"apples", "waste_cleaned"} <= set(model.players[0].events)
    df = model.datacollector.get_agent_vars_dataframe()
    assert {"row", "col", "apples", "waste_cleaned"} <= set(df.columns)


def test_episode_metrics(rng):
    game = envs.make("cleanup")
    acts = np.zeros((4, 3, 2), np.int64)
    acts[:2, :, 1] = CLEAN
    m = game.episode_metrics(acts, np.ones((4, 3), bool))
    assert m["clean_rate_1"].tolist() == [0.5] * 3 and m["clean_rate_0"].tolist() == [0] * 3


def test_thresholds_in_the_kernel(rng):
    """7x7 (A = 2) with one waste cell: d = 0.5."""
    game, s = fresh(rng, batch=4)
    s.waste[:, game.cell(1, 1)] = False
    step = game.step(s, np.full((4, 2), STAY), rng)
    assert step.info["apple_prob"] == pytest.approx([0.5 * (1 - 0.5 / 0.6)] * 4)  # linear
    assert (step.info["waste_prob"] == 0.5).all()
    game, s = fresh(rng, batch=64, depletion_threshold=0.5)  # d = 0.5 >= depletion
    s.waste[:, game.cell(1, 1)] = False
    for _ in range(10):
        step = game.step(s, np.full((64, 2), STAY), rng)
        s = step.state
    assert not s.apple.any() and (s.waste.sum(1) == 1).all()
    assert (step.info["apple_prob"] == 0).all() and (step.info["waste_prob"] == 0).all()
    game, s = fresh(rng, batch=4, restoration_threshold=0.5)  # d = 0.5 <= restoration
    s.waste[:, game.cell(1, 1)] = False
    step = game.step(s, np.full((4, 2), STAY), rng)
    assert (step.info["apple_prob"] == 0.5).all()


@pytest.mark.parametrize("map_", ["7x7", "10x10"])
def test_invariants_under_random_play(map_):
    rng = np.random.default_rng(5)
    game, s = fresh(rng, batch=128, map=map_)
    wall = parse_map(map_)["wall"].ravel()
    n = game.n_agents
    for _ in range(120):
        before = s.waste.sum(1)
        step = game.step(s, game.action_space.sample(rng, (128, n)), rng)
        after = step.state.waste.sum(1)
        # waste grows by at most one per step, and shrinks only by what the beams cleaned
        # (a cell hit by two agents' beams counts for both)
        cleaned = step.info["waste_cleaned"].sum(1)
        assert (after <= before + 1).all() and (after >= before - cleaned).all()
        assert ((after - before)[cleaned == 0] >= 0).all()
        pos = step.state.pos
        assert not wall[pos].any()
        assert (np.sort(pos, 1)[:, 1:] != np.sort(pos, 1)[:, :-1]).all()  # distinct cells
        assert (step.reward == step.info["apples"]).all()
        assert np.allclose(step.info["waste_density"], after / game.n_wasteable)
        s = reset_done(game, step.state, step.done, rng)
