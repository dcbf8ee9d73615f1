"""Every registered game keeps the promises of the capabilities it declares
(``econsim.core.capabilities``), and the kernels stay light (no torch, pandas, mechanisms or
learners on import)."""

import subprocess
import sys

import numpy as np
import pytest

from econsim import envs
from econsim.core import Game
from econsim.core.capabilities import (
    CAPABILITIES,
    ActionMask,
    AgentEvents,
    DesignerView,
    Economy,
    EpisodeMetrics,
    GlobalState,
    Grid,
    ImageObservation,
    NamedPositions,
    Render,
    SeesCurrentActions,
    TaxPeriods,
    has,
    names_of,
)
from econsim.core.registry import register_game
from tests.registered import games

NAMES = envs.names()
GAMES = games()  # parameters: a game missing optional packages is skipped, saying why


def _play(game, steps: int, batch: int = 3, seed: int = 0):
    """Random legal actions for ``steps`` steps: (states, steps) seen."""
    rng = np.random.default_rng(seed)
    state = game.reset(batch, rng)
    out = []
    for _ in range(steps):
        if has(game, ActionMask):
            mask = game.action_mask(state)
            scores = rng.random(mask.shape) * mask
            actions = scores.argmax(-1)
        else:
            actions = game.action_space.sample(rng, (batch, game.n_agents))
        step = game.step(state, actions, rng)
        out.append((state, actions, step))
        state = step.state
    return out


def test_import_of_the_games_loads_no_torch_pandas_mechanisms_or_learners():
    code = ("import sys, econsim.envs as e; e.names(); "
            "bad = [m for m in ('torch', 'pandas', 'mechanisms', 'learners') if m in sys.modules]; "
            "print(','.join(bad))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "", f"import econsim.envs loaded {out.stdout.strip()}"


@pytest.mark.parametrize("name", GAMES)
def test_game_follows_the_protocol_and_declares_only_known_capabilities(name):
    game = envs.make(name)
    assert isinstance(game, Game)
    assert set(names_of(game)) <= {c.__name__ for c in CAPABILITIES}
    assert names_of(envs.game_class(name)) == names_of(game)


@pytest.mark.parametrize("name", GAMES)
def test_declared_capabilities_keep_their_promises(name):
    game = envs.make(name)
    steps = _play(game, min(game.max_steps, 12))
    state0 = steps[0][0]
    described = game.describe(steps[-1][2].state)
    B, N = 3, game.n_agents
    for k, v in described.items():
        assert np.shape(v)[:2] == (B, N), f"describe()[{k!r}] is not [batch, n_agents]"
    if has(game, Grid):
        assert {"row", "col"} <= set(described)
        assert (described["row"] >= 0).all() and (described["row"] < game.height).all()
        assert (described["col"] >= 0).all() and (described["col"] < game.width).all()
    if has(game, NamedPositions):
        pos = described["position"]
        assert ((pos >= 0) & (pos < len(game.position_names))).all()
    if has(game, SeesCurrentActions):
        for observer, actor in game.sees_current_action:
            assert 0 <= observer < N and 0 <= actor < N and observer != actor
    if has(game, AgentEvents):
        info = steps[-1][2].info
        for k in game.agent_info_keys:
            assert np.shape(info[k]) == (B, N), f"agent event {k!r} missing from the step info"
    if has(game, ActionMask):
        mask = game.action_mask(state0)
        assert mask.shape == (B, N, game.action_space.n) and mask.any(-1).all()
    if has(game, EpisodeMetrics):
        actions = np.stack([a for _, a, _ in steps])
        out = game.episode_metrics(actions, np.ones(actions.shape[:2]))
        assert out and all(np.shape(v) == (B,) for v in out.values())
    if has(game, DesignerView):
        assert game.global_features(state0).shape == (B, game.global_size)
        actions = steps[0][1]
        assert game.action_features(actions).shape == (B, N, game.action_feature_size)
        kinds = game.incentive_type(actions, steps[0][2].reward)
        assert kinds.shape == (B, N) and ((kinds >= 0) & (kinds < len(game.incentive_types))).all()
    if has(game, ImageObservation):
        obs = game.observe(state0)
        assert game.split_image(obs).shape == (B, N, *game.image_shape)
    if has(game, Render):
        img = game.render_rgb(state0)
        assert img.ndim == 3 and img.shape[-1] == 3 and img.dtype == np.uint8
    if has(game, Economy):
        assert "coin" in described
    if has(game, TaxPeriods):
        assert game.tax_rule is not None, "envs.make installs the default tax rule"
        assert game.tax_rates(state0).shape == (B, game.n_brackets)
    if has(game, GlobalState):
        s = game.global_state(state0)
        assert s.shape == (B, game.state_size) and s.dtype == np.float32
        reward = steps[0][2].reward
        team = game.team_reward(reward)
        assert team.shape == (B,)
        if game.shared_reward:
            assert (reward == reward[:, :1]).all(), "a shared reward is the same for every agent"


def test_taxes_are_a_component_the_mechanism_installs():
    """Without a tax rule a GTB economy taxes nobody; with one, the rule decides."""
    seen = []

    def rule(coin, income, cutoffs, rates):
        seen.append(income.copy())
        return np.full_like(income, 0.5), np.full_like(income, 0.25)

    game = envs.make("gtb", max_steps=4, period_length=2)
    game.install_tax(None)
    steps = _play(game, 4, batch=2)
    assert all((s.info["tax"] == 0).all() for _, _, s in steps)
    taxed = envs.make("gtb", max_steps=4, period_length=2, tax_rates=[0.5] * 7)
    taxed.install_tax(None)  # rates in force but nothing to enact them: refused, not ignored
    with pytest.raises(ValueError, match="no tax rule is installed"):
        _play(taxed, 4, batch=2)
    game.install_tax(rule)
    steps = _play(game, 4, batch=2)
    assert len(seen) == 2  # two period ends
    ends = [s.info for _, _, s in steps if s.info["period_end"].all()]
    assert all((i["tax"] == 0.5).all() and (i["transfer"] == 0.25).all() for i in ends)


def test_a_game_is_registered_once_and_must_follow_the_protocol():
    with pytest.raises(ValueError, match="registered twice"):
        register_game("ipd", envs.params_model("ipd"))(type("Other", (), {
            "reset": lambda *a: None, "step": lambda *a: None, "observe": lambda *a: None,
            "describe": lambda *a: None}))
    with pytest.raises(TypeError, match="lacks step, observe, describe"):
        register_game("half_a_game", envs.params_model("ipd"))(type("Half", (), {
            "reset": lambda *a: None}))
    assert "half_a_game" not in envs.names()


def test_list_envs_prints_each_game_with_its_capabilities(capsys):
    from econsim import cli

    assert cli.main(["list", "envs"]) == 0
    out = capsys.readouterr().out
    for name in NAMES:
        line = next(ln for ln in out.splitlines() if ln.split()[:1] == [name])
        for cap in names_of(envs.game_class(name)):
            assert cap in line


@pytest.mark.parametrize("name", GAMES)
def test_every_column_a_game_writes_is_in_the_data_dictionary(name):
    """Per-agent step events (run_agents), episode metrics (run_episodes) and ``describe``
    attributes (what-if steps) of every game have a unit and a meaning: the shared ones in
    ``econsim.dictionary``, the game's own in its ``columns``."""
    from econsim import dictionary

    game = envs.make(name)
    steps = _play(game, min(game.max_steps, 6))
    N = game.n_agents
    wanted = {"steps": set(game.describe(steps[-1][2].state))
              | set(game.agent_info_keys if has(game, AgentEvents) else ())}
    if not has(game, Economy):  # economies report their own tables (episode_summary)
        wanted["run_agents"] = {k for k, v in steps[-1][2].info.items()
                                if np.ndim(v) == 2 and np.shape(v)[1] == N}
    if has(game, EpisodeMetrics):
        actions = np.stack([a for _, a, _ in steps])
        wanted["run_episodes"] = set(game.episode_metrics(actions, np.ones(actions.shape[:2])))
    for table, columns in wanted.items():
        for col in sorted(columns):
            unit, meaning = dictionary.describe(table, col)
            assert unit and meaning, f"{name}: column {col!r} of {table} is not documented"
