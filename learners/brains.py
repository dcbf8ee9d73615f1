"""Brains: what chooses a player's action in the Mesa face (``econsim.model.EconModel``).

A brain is any object with ``reset()`` (called at the start of every episode) and
``act(agent) -> int``. It reads ``agent.observation`` (the agent's own observation from
the game) and may read ``agent.model`` (the whole ``EconModel``): e.g. ``agent.seen``, the
one-hot current actions of the agents it observes (games with ``sees_current_action``).

Scripted brains (``RandomBrain``, ``ConstantBrain``, ``ScriptedBrain``) are for what-if
runs and tests. Trained brains come from a trainer: ``team_brains(trainer, replica)`` gives
one brain per agent, all backed by one ``TeamPolicy`` that calls the trainer's own
``decide`` once per step on the joint observation (no rule of the trainer is re-written).

A brain whose agent pays incentives declares it by deriving from :class:`PaysIncentives`:
``incentives(agent) -> [N]`` (what the agent pays each other agent this step) and
``charge_giver`` (whether paying costs the giver its reward, as in training); the model adds
them to rewards with ``mechanisms.incentives.apply_transfers``. This module does not import
Mesa.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch

from econsim.core.capabilities import ActionMask, has

__all__ = ["Brain", "ConstantBrain", "PaysIncentives", "RandomBrain", "ScriptedBrain",
           "SharedPolicyBrain", "TeamBrain", "TeamPolicy", "has_workers", "scripted_workers",
           "team_brains"]

#: games with rule-based economic agents, and the module whose ``workers(game, rng)`` makes
#: them (the what-if's default brains where a game has them)
SCRIPTED_WORKERS = {"gtb": "learners.gtb_worker"}


def has_workers(game: Any) -> bool:
    """Whether ``game`` has rule-based workers (:func:`scripted_workers`)."""
    return game.name in SCRIPTED_WORKERS


def scripted_workers(game: Any, rng: np.random.Generator, **settings) -> list:
    """One rule-based worker per agent of ``game`` (e.g. ``learners.gtb_worker``), drawing
    its random choices from ``rng``; ValueError naming the games that have them."""
    if not has_workers(game):
        raise ValueError(f"no scripted workers for {game.name!r} (games with them: "
                         f"{', '.join(SCRIPTED_WORKERS)}); use random or trained agents")
    import importlib

    return importlib.import_module(SCRIPTED_WORKERS[game.name]).workers(game, rng, **settings)


@runtime_checkable
class Brain(Protocol):
    """Chooses one player's action each step."""

    def reset(self) -> None:
        """Called at the start of every episode."""
        ...

    def act(self, agent: Any) -> int:
        """The action of ``agent`` (reads ``agent.observation``, may read ``agent.model``)."""
        ...


class PaysIncentives(ABC):
    """The optional incentives contract of a brain: its agent pays other agents.

    A brain class derives from it (besides being a ``Brain``); ``EconModel`` asks
    ``isinstance(brain, PaysIncentives)``, never ``hasattr``.
    """

    #: whether what the agent pays is subtracted from its own reward (as in training)
    charge_giver: bool = True

    @abstractmethod
    def incentives(self, agent: Any) -> np.ndarray:
        """What ``agent`` pays each agent this step, ``[N]`` (0 to itself)."""


class RandomBrain:
    """Uniformly random actions from ``rng`` (the model's ``rng`` by default)."""

    def __init__(self, n_actions: int, rng: np.random.Generator) -> None:
        if n_actions < 1:
            raise ValueError(f"RandomBrain: n_actions must be >= 1, got {n_actions}")
        self.n_actions, self.rng = int(n_actions), rng

    def reset(self) -> None:
        """Nothing to forget."""

    def act(self, agent: Any) -> int:
        """A uniformly random action."""
        return int(self.rng.integers(self.n_actions))

    def __repr__(self) -> str:
        return f"RandomBrain({self.n_actions})"


class ConstantBrain:
    """Always the same action."""

    def __init__(self, action: int) -> None:
        self.action = int(action)

    def reset(self) -> None:
        """Nothing to forget."""

    def act(self, agent: Any) -> int:
        """The fixed action."""
        return self.action

    def __repr__(self) -> str:
        return f"ConstantBrain({self.action})"


class ScriptedBrain:
    """Wraps ``fn(observation) -> int``; ``fn`` sees the agent's own observation only."""

    def __init__(self, fn: Callable[[np.ndarray], int]) -> None:
        if not callable(fn):
            raise ValueError(f"ScriptedBrain: fn must be callable, got {type(fn).__name__}")
        self.fn = fn

    def reset(self) -> None:
        """Nothing to forget."""

    def act(self, agent: Any) -> int:
        """``fn(agent.observation)``."""
        return int(self.fn(agent.observation))

    def __repr__(self) -> str:
        return f"ScriptedBrain({getattr(self.fn, '__name__', self.fn)!r})"


class TeamPolicy:
    """One trained replica acting for all agents of a batch-1 world.

    Built from ``trainer.replica(replica)``. Once per model step (the first time any of
    its brains acts) it calls the trainer's ``decide`` with ``eps = 0`` on the joint
    observation of all players (read from ``agent.model.players``) and the incentives given
    so far this episode, caches the ``Decision`` and updates the running incentives with the
    trainer's ``add_given``. ``pay [N, N]`` is this step's transfer matrix (``pay[i, j]`` =
    what ``i`` pays ``j``) and ``charge_giver`` says whether paying costs the giver, exactly as
    in training.

    Actions are sampled from the replica's action stream; when the policy first acts in a
    model, that stream is re-seeded from the model's ``rng`` so a model's ``seed`` fixes the
    whole run.
    """

    def __init__(self, trainer: Any, replica: int = 0) -> None:
        R = len(trainer.seeds)
        if not 0 <= replica < R:
            raise ValueError(f"replica {replica} is out of range: the trainer has {R} "
                             f"replica(s) (seeds {list(trainer.seeds)})")
        self.trainer = trainer.replica(replica)
        self.seed = int(trainer.seeds[replica])
        self.n_agents: int = self.trainer.N
        self.charge_giver: bool = bool(self.trainer.charge_giver)
        self.decision: Any = None
        self._model: Any = None
        self._step: int | None = None
        self.reset()

    def reset(self) -> None:
        """Start of an episode: no incentives given yet, no decision cached."""
        self.given_cum = torch.zeros(1, self.n_agents, self.n_agents - 1)
        self.pay = np.zeros((self.n_agents, self.n_agents))
        self.decision, self._step = None, None
        self.trainer.start_episode()

    def joint_observation(self, model: Any) -> np.ndarray:
        """All players' observations in index order as a batch of one: ``[1, N, *obs]``."""
        players = sorted(model.players, key=lambda p: p.index)
        return np.stack([np.asarray(p.observation, np.float32) for p in players])[None]

    def decide(self, model: Any) -> Any:
        """This step's joint ``Decision`` for ``model`` (computed once per step, then cached)."""
        if model is not self._model:  # a new model: take the seed of its random stream
            self._model = model
            self.trainer.reseed_actions(int(model.rng.integers(2**63 - 1)))
            self._step = None
        if self._step != model.steps or self.decision is None:
            obs = self.joint_observation(model)
            with torch.no_grad():
                d = self.trainer.decide(self.trainer.params, obs, self.given_cum, 0.0)
                self.given_cum = self.trainer.add_given(self.given_cum, d.pay)
            self.decision, self._step = d, model.steps
            self.pay = d.pay[0].detach().double().numpy()
        return self.decision

    def __repr__(self) -> str:
        return (f"TeamPolicy({type(self.trainer).__name__}, seed={self.seed}, "
                f"kinds={self.trainer.kinds})")


class TeamBrain(PaysIncentives):
    """Agent ``index``'s share of a ``TeamPolicy``."""

    def __init__(self, policy: TeamPolicy, index: int) -> None:
        if not 0 <= index < policy.n_agents:
            raise ValueError(f"TeamBrain: index {index} is out of range 0..{policy.n_agents - 1}")
        self.policy, self.index = policy, index

    @property
    def charge_giver(self) -> bool:
        """Whether what this agent pays is subtracted from its reward (as in training)."""
        return self.policy.charge_giver

    def reset(self) -> None:
        """Start of an episode (resets the shared policy; repeated calls are harmless)."""
        self.policy.reset()

    def _check(self, agent: Any) -> None:
        if agent.index != self.index:
            raise ValueError(f"TeamBrain for agent {self.index} was given to agent "
                             f"{agent.index}; pass team_brains(...) in agent order")

    def act(self, agent: Any) -> int:
        """This agent's action in the team's joint decision for this step."""
        self._check(agent)
        return int(self.policy.decide(agent.model).env_actions[0, self.index])

    def incentives(self, agent: Any) -> np.ndarray:
        """What this agent pays each agent this step, ``[N]`` (row of ``policy.pay``)."""
        self._check(agent)
        self.policy.decide(agent.model)
        return self.policy.pay[self.index]

    def __repr__(self) -> str:
        return f"TeamBrain(agent={self.index}, {self.policy!r})"


class SharedPolicyBrain:
    """Agent ``index`` acting with a parameter-shared policy (PPO) on its own observation.

    ``policy`` is a one-replica trainer offering ``act_one(obs, legal, generator,
    agent=index) -> int``; illegal actions (``game.action_mask``, capability ``ActionMask``)
    are never chosen. The sampling generator is seeded from the model's ``rng`` when the brain
    first acts in a model, so a model's ``seed`` fixes the whole run.
    """

    def __init__(self, policy: Any, index: int) -> None:
        self.policy, self.index = policy, index
        self.generator = torch.Generator()
        self._model: Any = None

    def reset(self) -> None:
        pass

    def act(self, agent: Any) -> int:
        model = agent.model
        if model is not self._model:
            self._model = model
            self.generator.manual_seed(int(model.rng.integers(2**63 - 1)))
        game = model.game
        legal = (game.action_mask(model.state)[0, agent.index] if has(game, ActionMask)
                 else np.ones(game.action_space.n, bool))
        return self.policy.act_one(np.asarray(agent.observation), legal, self.generator,
                                   agent=self.index)

    def __repr__(self) -> str:
        return f"SharedPolicyBrain(agent={self.index}, seed={self.policy.seeds[0]})"


def team_brains(trainer: Any, replica: int = 0) -> list[Brain]:
    """One brain per agent for the trained replica ``replica`` of ``trainer``.

    Parameter-shared trainers (``trainer.shared_policy``, e.g. PPO) give each agent a
    ``SharedPolicyBrain``; the others a ``TeamBrain`` share of one ``TeamPolicy``.
    """
    if trainer.shared_policy:
        R = len(trainer.seeds)
        if not 0 <= replica < R:
            raise ValueError(f"replica {replica} is out of range: the trainer has {R} "
                             f"replica(s) (seeds {list(trainer.seeds)})")
        one = trainer.replica(replica)
        return [SharedPolicyBrain(one, i) for i in range(one.N)]
    policy = TeamPolicy(trainer, replica)
    return [TeamBrain(policy, i) for i in range(policy.n_agents)]
