"""Every registered game as a PettingZoo ``ParallelEnv``: ``parallel_env(name, **params)``.

One generic adapter over the ``Game`` contract (``econsim.core.game``), with no code per
game: a game registered in ``econsim.envs`` is available here as soon as it exists.

* Agents are ``agent_0 .. agent_{N-1}``; all act at once each step (one world, batch = 1).
* ``observation_space(agent)`` is a ``gymnasium.spaces.Box`` (float32) built from the game's
  per-agent Box; ``action_space(agent)`` a ``gymnasium.spaces.Discrete``.
* **End of an episode.** Every econsim game's horizon (``max_steps``) is part of its rules:
  returns are finite-horizon sums, GTB taxes in periods that tile the horizon and shows the
  agents its progress, and econsim's own learners never bootstrap past the last step. So an
  episode that ends, by an event or at ``max_steps``, is reported as a *termination* of
  every agent; ``truncations`` are always False. Wrap the env in a time limit of your own for
  shorter rollouts (those are truncations).
* **Action masks** (games with the ``ActionMask`` capability, e.g. GTB): each agent's info
  from ``reset`` and ``step`` holds ``action_mask``, an int8 array ``[A]`` (1 = legal) for the
  agent's *next* action, in the form ``action_space(agent).sample(mask=...)`` accepts. The
  observation stays a Box. A masked action is not an error: the game treats it as a no-op,
  as its ``ActionMask`` documents. ``action_mask(agent)`` returns the same array.
* **Infos** of ``step`` carry the game's step info: per-agent arrays (leading shape
  ``[1, N]``) give each agent its own value; per-world arrays (``[1, ...]``) are given to
  every agent. Scalars become Python numbers.
* ``render()`` returns the world as ``[H, W, 3]`` uint8 when ``render_mode="rgb_array"``
  (games with the ``Render`` capability only).
* ``state()`` is the designer's global view for games with ``DesignerView`` (e.g. Cleanup's
  whole map), else every agent's observation concatenated; ``state_space`` describes it.
* Games with ``SeesCurrentActions`` (an agent sees another's action of the same step before
  choosing) are played simultaneously here: that sequencing is not modelled, and the
  observer's observation is the game's own, with nothing appended.
* Seeding: ``reset(seed=s)`` starts the game's random stream
  ``econsim.core.seeding.make_rng(s, "pettingzoo")``; ``reset()`` without a seed continues
  the current stream (a fresh, unseeded one the first time).

Bad input (unknown env, bad parameters, a missing, unknown or out-of-range action, stepping a
finished episode) raises a ``ValueError`` with one line naming what is wrong and what is
allowed. pettingzoo is an optional dependency (``pip install econsim[pettingzoo]``):
importing this module works without it; ``parallel_env`` then raises ``ImportError``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from econsim import envs
from econsim.core.capabilities import ActionMask, DesignerView, Processes, Render, has
from econsim.core.seeding import make_rng

try:
    import gymnasium
    from pettingzoo import ParallelEnv
except ImportError:  # optional dependency: parallel_env says how to install it
    gymnasium = None
    ParallelEnv = object

__all__ = ["EconsimParallelEnv", "parallel_env"]

INSTALL_HINT = "econsim.pettingzoo needs pettingzoo: pip install econsim[pettingzoo]"


def parallel_env(name: str, render_mode: str | None = None, **params) -> EconsimParallelEnv:
    """Game ``name`` of ``econsim.envs`` built with ``params``, as a PettingZoo ParallelEnv.

    ``render_mode`` is None or ``"rgb_array"`` (games with the Render capability).
    """
    if gymnasium is None:
        raise ImportError(INSTALL_HINT)
    return EconsimParallelEnv(name, render_mode=render_mode, **params)


def _as_action(name: str, agent: str, value: Any, n: int) -> int:
    """``value`` as an action index of ``agent``; one-line ValueError if it is not one."""
    a = np.asarray(value)
    if a.ndim != 0 or a.dtype.kind not in "iu" or not 0 <= int(a) < n:
        shown = repr(value) if len(repr(value)) <= 40 else f"{type(value).__name__} {a.shape}"
        raise ValueError(f"{name}: action of {agent} must be an integer in 0..{n - 1}, "
                         f"got {shown}")
    return int(a)


def _item(x: np.ndarray) -> Any:
    """A 0-d array as a Python number; anything else as an array of its own."""
    return x.item() if np.ndim(x) == 0 else np.array(x)


class EconsimParallelEnv(ParallelEnv):
    """One econsim game (batch = 1) behind the PettingZoo Parallel API (module docstring)."""

    def __init__(self, name: str, render_mode: str | None = None, **params) -> None:
        if gymnasium is None:
            raise ImportError(INSTALL_HINT)
        self.game = game = envs.make(name, **params)
        self.name = name
        modes = ["rgb_array"] if has(game, Render) else []
        if render_mode is not None and render_mode not in modes:
            allowed = ", ".join(["None", *map(repr, modes)])
            raise ValueError(f"{name}: render_mode {render_mode!r} is not supported "
                             f"(allowed: {allowed})")
        self.render_mode = render_mode
        self.metadata = {"name": f"econsim_{name}", "render_modes": modes,
                         "is_parallelizable": True}
        self.possible_agents = [f"agent_{i}" for i in range(game.n_agents)]
        self.agents: list[str] = []
        self._index = {a: i for i, a in enumerate(self.possible_agents)}
        box = game.observation_space
        obs = gymnasium.spaces.Box(low=box.low, high=box.high, shape=tuple(box.shape),
                                   dtype=np.float32)
        act = gymnasium.spaces.Discrete(game.action_space.n)
        # one space object per agent, the same on every call (PettingZoo requires it)
        self.observation_spaces = {a: obs for a in self.possible_agents}
        self.action_spaces = {a: act for a in self.possible_agents}
        if has(game, DesignerView):
            self.state_space = gymnasium.spaces.Box(-np.inf, np.inf, (game.global_size,),
                                                    np.float32)
        else:
            size = game.n_agents * int(np.prod(box.shape))
            self.state_space = gymnasium.spaces.Box(box.low, box.high, (size,), np.float32)
        self._masked = has(game, ActionMask)
        self._rng: np.random.Generator | None = None
        self._state: Any = None
        self._obs: np.ndarray | None = None  # [N, *obs] of the current state
        self._mask: np.ndarray | None = None  # [N, A] int8 of the current state

    # ------------------------------------------------------------------ spaces
    def observation_space(self, agent: str) -> gymnasium.spaces.Box:
        return self.observation_spaces[self._agent(agent)]

    def action_space(self, agent: str) -> gymnasium.spaces.Discrete:
        return self.action_spaces[self._agent(agent)]

    def _agent(self, agent: str) -> str:
        if agent not in self._index:
            raise ValueError(f"{self.name}: unknown agent {agent!r} "
                             f"(agents: {', '.join(self.possible_agents)})")
        return agent

    # ------------------------------------------------------------------ API
    def reset(self, seed: int | None = None,
              options: dict[str, Any] | None = None) -> tuple[dict, dict]:
        """Start an episode; ``options`` is accepted and ignored (no game uses any)."""
        if seed is not None:
            if isinstance(seed, bool) or not isinstance(seed, int | np.integer) \
                    or not 0 <= seed < 2**63:
                raise ValueError(f"{self.game.name}: seed must be an integer in 0..2**63-1 or "
                                 f"None, got {seed!r}")
            self._rng = make_rng(int(seed), "pettingzoo")
        elif self._rng is None:
            self._rng = np.random.default_rng()
        self._state = self.game.reset(1, self._rng)
        self.agents = list(self.possible_agents)
        self._refresh(self.game.observe(self._state))
        infos = {a: self._mask_info(i) for i, a in enumerate(self.agents)}
        return self._obs_dict(), infos

    def step(self, actions: dict[str, Any]) -> tuple[dict, dict, dict, dict, dict]:
        """One simultaneous move of every agent: ``actions`` maps each agent to an index."""
        if self._state is None:
            raise ValueError(f"{self.name}: call reset() before step()")
        if not self.agents:
            raise ValueError(f"{self.name}: the episode is over; call reset() to start another")
        if not isinstance(actions, dict):
            raise ValueError(f"{self.name}: actions must be a dict agent -> action index, "
                             f"got {type(actions).__name__}")
        missing = [a for a in self.agents if a not in actions]
        extra = [repr(a) for a in actions if a not in self._index]
        if missing or extra:
            what = (f"missing {', '.join(missing)}" if missing else
                    f"unknown {', '.join(extra)}")
            raise ValueError(f"{self.name}: actions {what} (agents: {', '.join(self.agents)})")
        n = self.game.action_space.n
        a = np.array([[_as_action(self.name, ag, actions[ag], n) for ag in self.agents]],
                     dtype=np.int64)
        st = self.game.step(self._state, a, self._rng)
        self._state = st.state
        self._refresh(st.obs)
        done = bool(np.asarray(st.done)[0])
        agents = self.agents
        rewards = {ag: float(st.reward[0, i]) for i, ag in enumerate(agents)}
        terminations = dict.fromkeys(agents, done)
        truncations = dict.fromkeys(agents, False)
        infos = {ag: self._step_info(st.info, i) for i, ag in enumerate(agents)}
        if done:
            self.agents = []
        return self._obs_dict(agents), rewards, terminations, truncations, infos

    def render(self) -> np.ndarray | None:
        if self.render_mode is None:
            gymnasium.logger.warn(f"{self.name}: render() without a render_mode; "
                                  "build the env with render_mode='rgb_array'")
            return None
        if self._state is None:
            raise ValueError(f"{self.name}: call reset() before render()")
        return np.asarray(self.game.render_rgb(self._state, 0), dtype=np.uint8)

    def state(self) -> np.ndarray:
        """Global view of the world (module docstring), float32 ``state_space.shape``."""
        if self._state is None:
            raise ValueError(f"{self.name}: call reset() before state()")
        if has(self.game, DesignerView):
            return np.asarray(self.game.global_features(self._state)[0], dtype=np.float32)
        return self._obs.reshape(-1).copy()

    def action_mask(self, agent: str) -> np.ndarray:
        """Legal next actions of ``agent``, int8 ``[A]`` (all ones for games without masks)."""
        i = self._index[self._agent(agent)]
        if self._mask is None:
            return np.ones(self.game.action_space.n, np.int8)
        return self._mask[i].copy()

    def close(self) -> None:
        """Release the game's outside processes (capability ``Processes``, e.g. SUMO)."""
        if has(self.game, Processes):
            self.game.close()

    # ------------------------------------------------------------------ helpers
    def _refresh(self, obs: np.ndarray) -> None:
        self._obs = np.asarray(obs[0], dtype=np.float32)
        if self._masked:
            self._mask = np.asarray(self.game.action_mask(self._state)[0], dtype=np.int8)

    def _obs_dict(self, agents: list[str] | None = None) -> dict[str, np.ndarray]:
        return {a: self._obs[self._index[a]].copy() for a in (agents or self.agents)}

    def _mask_info(self, i: int) -> dict[str, Any]:
        return {"action_mask": self._mask[i].copy()} if self._mask is not None else {}

    def _step_info(self, info: dict[str, np.ndarray], i: int) -> dict[str, Any]:
        n = self.game.n_agents
        out: dict[str, Any] = {}
        for key, value in info.items():
            v = np.asarray(value)
            if v.ndim >= 2 and v.shape[1] == n:
                out[key] = _item(v[0, i])
            else:  # per world, or a scalar
                out[key] = _item(v[0] if v.ndim else v)
        out.update(self._mask_info(i))
        return out
