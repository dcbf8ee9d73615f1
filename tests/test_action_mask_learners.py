"""The chapter-3 learners in a game with an action mask (capability ``ActionMask``, e.g. SUMO
with ``ttc_mask``): they never pick a forbidden action, learn from the masked policy, and a
mask that allows everything changes no number."""

import numpy as np
import pytest
import torch

from econsim.core import ReplicaRNG
from econsim.core.capabilities import ActionMask
from learners.cm3 import CM3Config, CM3Trainer, Stage1
from learners.coma import COMAConfig, COMATrainer
from learners.iac import IACConfig, IACTrainer
from learners.iql import IQLConfig, IQLTrainer, iql_target
from learners.multigoal import Replay, Transitions
from learners.pg import LinearSchedule
from learners.qmix import QMIXConfig, QMIXTrainer, epsilon_greedy, qmix_target
from learners.replicas import categorical
from tests.multigoal_toy import Line

SMALL = {"batch": 3, "updates": 2, "minibatch": 16, "hidden": [8, 8], "branch": [8],
         "epsilon": LinearSchedule(start=0.5, end=0.5, steps=1)}


class WalledLine(Line, ActionMask):
    """The toy line whose ends are walls: left is illegal in cell 0 and right in the last
    cell (``allow_all``: a mask that allows every action)."""

    def __init__(self, n_agents: int = 2, allow_all: bool = False) -> None:
        super().__init__(n_agents)
        self.allow_all = allow_all

    def induced(self) -> "WalledLine":
        return WalledLine(1, self.allow_all)

    def action_mask(self, s) -> np.ndarray:
        legal = np.ones((*s.pos.shape, 3), bool)
        if not self.allow_all:
            legal[..., 1] = s.pos > 0
            legal[..., 2] = s.pos < self.length - 1
        return legal


def make(name: str, game, seeds=(0, 1)):
    if name in ("cm3", "qv"):
        cfg = CM3Config(**SMALL, agents=[name] * game.n_agents,
                        stage1=Stage1(iterations=1, minibatch=8, updates=2))
        return CM3Trainer(game, cfg, list(seeds))
    if name == "iac":
        return IACTrainer(game, IACConfig(**SMALL), list(seeds))
    if name == "coma":
        return COMATrainer(game, COMAConfig(**SMALL, critic_hidden=[16, 16]), list(seeds))
    if name == "qmix":
        return QMIXTrainer(game, QMIXConfig(**SMALL, agent_hidden=[16], embed=8, replay=100),
                           list(seeds))
    return IQLTrainer(game, IQLConfig(**{**SMALL, "hidden": [16]}, replay=200), list(seeds))


METHODS = ["cm3", "qv", "iac", "coma", "qmix", "iql"]


@pytest.mark.parametrize("name", METHODS)
def test_no_forbidden_action_is_played_and_the_masked_policy_learns(name):
    t = make(name, WalledLine(2))
    for _ in range(3):  # CM3: stage 1 (the induced game has the mask too), then stage 2
        out = t.iterate()
        assert all(np.isfinite(v).all() for v in out.values())
    batch = t.play(t.game, t.params, 0.9, 6, t.rng, t.act_rng)
    alive = batch.mask > 0
    played = batch.legal.gather(-1, batch.actions[..., None].long())[..., 0]
    assert played[alive].all()
    assert not batch.legal[alive].all()  # the walls were reached: the mask did bite
    fields, _ = t.transitions(batch)
    assert {"legal", "next_legal"} <= set(fields)  # what the updates read (Transitions.legal)
    assert Transitions(t.game, fields).legal(True) is fields["next_legal"]
    by_replica = lambda x: x.transpose(0, 1).reshape(t.R, -1, *x.shape[2:])  # noqa: E731
    legal = by_replica(batch.legal)
    probs = t.policy(t.params, by_replica(batch.obs), 0.5, legal)
    assert (probs[~legal] == 0).all()
    assert torch.allclose(probs.sum(-1), torch.ones(probs.shape[:-1]))


@pytest.mark.parametrize("name", METHODS)
def test_a_mask_that_allows_everything_changes_no_number(name):
    plain, masked = make(name, Line(2)), make(name, WalledLine(2, allow_all=True))
    for _ in range(3):
        a, b = plain.iterate(), masked.iterate()
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    for net in plain.nets:
        for k, v in getattr(plain, net).items():
            assert torch.equal(v, getattr(masked, net)[k]), (net, k)


def test_only_rows_the_mask_bites_change():
    """Behaviour probabilities are the unmasked ones in rows where everything is allowed,
    whatever the other rows (a replica's numbers never depend on another's mask)."""
    q = torch.tensor([[1.0, 3.0, 2.0], [1.0, 3.0, 2.0]])
    legal = torch.tensor([[True, True, True], [True, False, True]])
    p = epsilon_greedy(q, 0.3, legal)
    assert torch.equal(p[0], epsilon_greedy(q[:1], 0.3)[0])
    assert torch.allclose(p[1], torch.tensor([0.15, 0.0, 0.85]))
    t = make("iac", WalledLine(2))
    obs = torch.rand(2, 4, 2, t.game.observation_space.shape[0])
    legal = torch.ones(2, 4, 2, 3, dtype=torch.bool)
    legal[1, 0, 0, 2] = False
    probs = t.policy(t.params, obs, 0.2, legal)
    plain = t.policy(t.params, obs, 0.2)
    assert torch.equal(probs[0], plain[0]) and torch.equal(probs[1, 1:], plain[1, 1:])
    assert probs[1, 0, 0, 2] == 0 and torch.isclose(probs[1, 0, 0].sum(), torch.tensor(1.0))


def test_q_targets_take_the_best_allowed_next_action():
    class Sum:  # a mixer that adds the agents' values (so the target shows the chosen ones)
        @staticmethod
        def apply(params, q, state):
            return q.sum(-1)

    q_next = torch.tensor([[[[5.0, 1.0, 2.0], [0.0, 4.0, 3.0]]]])  # [R=1, S=1, N=2, A=3]
    legal = torch.tensor([[[[False, True, True], [True, True, True]]]])
    zero = torch.zeros(1, 1)
    y = qmix_target(Sum, {}, q_next, zero, zero, zero, 1.0)
    assert y.item() == 9.0  # 5 + 4
    y = qmix_target(Sum, {}, q_next, zero, zero, zero, 1.0, next_legal=legal)
    assert y.item() == 6.0  # 2 (5 is forbidden) + 4


@pytest.mark.parametrize("name", METHODS)
def test_a_seed_with_a_biting_mask_learns_the_same_alone_and_among_others(name):
    together, alone = make(name, WalledLine(2), (0, 1)), make(name, WalledLine(2), (1,))
    for _ in range(3):
        a, b = together.iterate(), alone.iterate()
    for k in a:
        assert np.array_equal(a[k][1:], b[k]), k
    for net in together.nets:
        for k, v in getattr(together, net).items():
            assert torch.equal(v[1:], getattr(alone, net)[k]), (net, k)


def test_transitions_stored_without_a_mask_allow_every_action():
    """A replay restored from a run stored before its game had a mask (no ``legal`` field)
    takes masked transitions; the old rows allow everything."""
    old = {"obs": torch.zeros(1, 2, 3), "done": torch.zeros(1, 2)}
    r = Replay(1, 4)
    r.add(old, torch.ones(1, 2, dtype=torch.bool))
    legal = torch.tensor([[[True, False], [False, True]]])
    r.add({**old, "legal": legal, "next_legal": legal}, torch.ones(1, 2, dtype=torch.bool))
    assert r.data["legal"][0].tolist() == [[True, True], [True, True], [True, False],
                                           [False, True]]


def test_iql_targets_take_the_best_allowed_next_action():
    q_t = torch.tensor([[5.0, 1.0, 2.0]])
    online = torch.tensor([[0.0, 3.0, 1.0]])
    legal = torch.tensor([[False, True, True]])
    zero = torch.zeros(1)
    assert iql_target(q_t, zero, zero, 1.0).item() == 5.0
    assert iql_target(q_t, zero, zero, 1.0, next_legal=legal).item() == 2.0
    assert iql_target(q_t, zero, zero, 1.0, online).item() == 1.0  # double Q: argmax 1
    assert iql_target(q_t, zero, zero, 1.0, online, legal).item() == 1.0
    legal = torch.tensor([[True, False, True]])
    assert iql_target(q_t, zero, zero, 1.0, online, legal).item() == 2.0  # argmax 2 of 0, 2


def test_sampling_never_picks_a_forbidden_trailing_action():
    """Probabilities that sum to just under 1 (float32 rounding) with the last action
    forbidden: a draw of (nearly) 1 gives the last allowed action, not the forbidden one."""

    class Top(ReplicaRNG):
        def __init__(self):
            pass

        def random(self, shape):
            return np.full(shape, 1 - 2.0**-30)

    probs = torch.tensor([[0.3, 0.69999987, 0.0], [0.2, 0.3, 0.5]])
    assert probs[0].sum() < 1
    assert categorical(Top(), probs).tolist() == [1, 2]
