"""Linear public goods game (voluntary contribution mechanism), optionally with peer
punishment as in Fehr & Gächter (2000, 2002). Batch-first numpy.

Rules of one round (``n_agents`` = N players, default 4):

* Every player holds an endowment ``e`` (``endowment``, 20 tokens) and contributes
  ``c_i`` to a group account, chosen among ``levels`` equally spaced amounts from 0 to e
  (default 5: 0, 5, 10, 15, 20 tokens). Contributions are simultaneous.
* The account is multiplied by ``r`` (``multiplier``, 1.6; 1 < r < N is required, so the
  marginal per-capita return r/N is below 1 and the game is a social dilemma) and shared
  equally: payoff ``e - c_i + (r/N) sum_j c_j``. Each token contributed costs its giver
  ``1 - r/N`` and adds ``r - 1`` to the group, so keeping everything is the dominant
  strategy of one round and everyone giving everything maximises the group's payoff.
* An episode is ``rounds`` (10) rounds played by the same group.

Peer punishment (``punishment = true``). After the contributions of a round are revealed,
every player chooses, at the same time, how many punishment points to assign; each point
costs the punisher ``punish_cost`` (1) tokens and takes ``fine_ratio`` (3) tokens from the
punished player. To keep one action per player per step, a round with punishment is two
steps: step 2k is round k's contribution stage, step 2k+1 its punishment stage, and the
game's ``max_steps`` is ``2 * rounds``. An action ``a`` in ``0..levels-1`` means

* in a contribution stage: contribute ``a * e / (levels - 1)`` tokens;
* in a punishment stage: assign ``a`` points to *each* other player who contributed
  strictly less than oneself in this round (nobody else is punished; a player who gave the
  least punishes nobody, so there is no antisocial punishment).

One number per player cannot say whom to punish. Aiming at those who gave less than the
punisher follows the pattern Fehr & Gächter report (punishment falls mostly on players who
gave less than the punisher and grows with the shortfall); here what a player receives
grows with the number of players who gave more than it. Punishing stays a costly
second-order public good: it never pays the punisher within the episode's rewards. Payoffs
are not floored at zero (the lab caps losses at a round's earnings; we do not). With
``punishment = false`` a round is one step and ``max_steps = rounds``.

``action_names``: ``give_<p>pct`` (p = percent of the endowment) without punishment,
``give_<p>pct_or_pun<a>`` with it (the meaning depends on the stage, as above).

Observation of each player (float32, all in [0, 1]):

* the contributions of the latest contribution stage as fractions of e, own first, then the
  others in index order (N values; zeros before the first round; in a punishment stage
  these are this round's contributions);
* with punishment: the points each player received in the latest punishment stage, own
  first, then the others, divided by the most one can receive, ``(levels-1)(N-1)`` (N values),
  and a flag that is 1 in a punishment stage (1 value);
* the share of rounds already completed, ``k / rounds`` (1 value; 0 means the first round).

So agent 0's observation shows every player in index order (a central designer's default
view of the state).

Reward (what learners see) = ``(payoff - e [contribution stage]) / e``: the tokens a player
gained this step over keeping its endowment, in endowments. The shift by e is the same for
every action in every step of the fixed-length episode, so it changes no incentive; it
centres the policy-gradient signal (REINFORCE without a baseline). The trainers' ``return``
and ``collective`` are in these reward units; the game's own reports are in tokens: ``info``
per step, ``[B, N]``: ``contribution`` (tokens, 0 in punishment stages),
``payoff`` (tokens: the contribution-stage payoff, or minus the cost and fines of a
punishment stage); with punishment also ``punish_given`` / ``punish_received`` (points),
``punish_cost`` and ``fine`` (tokens); per world ``[B]``: ``stage`` (0 contribution, 1
punishment) and ``round``. Summed over an episode, ``payoff`` is a player's earnings and the
budget identity holds: sum of payoffs = ``rounds * N * e + (r - 1) * sum c`` minus every
punishment cost and fine.

``episode_metrics``: ``contribution_rate`` (mean contribution / e over the live contribution
stages and players) and ``contribution_rate_<i>`` per player; with punishment
``punishment_points`` (points assigned per player per round, counting every target).
``describe(state)`` (Mesa attributes, tokens): ``last_contribution`` (-1 before the first
round), ``payoff_so_far``, ``contributed_so_far``, ``punished_so_far`` (points received).

There is no randomness: ``rng`` is accepted for the contract and never drawn from.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, Field, model_validator

from econsim.bounds import FINITE, MAX_AGENTS, MAX_STEPS, Coefficient, PositiveCoefficient
from econsim.core import Box, Discrete, Step
from econsim.core.capabilities import AgentEvents, EpisodeMetrics
from econsim.core.registry import register_game

MAX_LEVELS = 21
"""Most contribution levels (steps of 5 % of the endowment)."""


class Params(BaseModel):
    model_config = FINITE
    n_agents: int = Field(4, ge=2, le=MAX_AGENTS, description="N, players in the group")
    endowment: PositiveCoefficient = Field(20.0, description="e, tokens per player per round")
    levels: int = Field(5, ge=2, le=MAX_LEVELS,
                        description="contribution levels, equally spaced from 0 to e")
    multiplier: float = Field(1.6, ge=0, le=MAX_AGENTS,
                              description="r, the group account's factor: 1 < r < N")
    rounds: int = Field(10, ge=1, le=MAX_STEPS // 2, description="rounds per episode")
    punishment: bool = Field(False, description="add a peer-punishment stage to every round")
    punish_cost: Coefficient = Field(1.0, description="tokens a punishment point costs the "
                                     "punisher")
    fine_ratio: Coefficient = Field(3.0, description="tokens a punishment point takes from "
                                    "the punished player")

    @model_validator(mode="after")
    def _dilemma(self):
        r, n = self.multiplier, self.n_agents
        if not 1 < r < n:
            raise ValueError(f"multiplier r={r:g} must satisfy 1 < r < n_agents={n} (a social "
                             "dilemma: giving costs the giver, benefits the group)")
        return self


@dataclass
class State:
    t: np.ndarray  # [B] steps taken
    level: np.ndarray  # [B, N] level index of the latest contribution stage (-1: none yet)
    received: np.ndarray  # [B, N] points received in the latest punishment stage
    payoff: np.ndarray  # [B, N] tokens earned this episode
    contributed: np.ndarray  # [B, N] tokens contributed this episode
    punished: np.ndarray  # [B, N] points received this episode


def _percent(x: float) -> str:
    return f"{round(100 * x)}pct"


@register_game("public_goods", Params)
class PublicGoods(AgentEvents, EpisodeMetrics):
    """Linear public goods game, optionally with a peer-punishment stage per round."""

    name = "public_goods"
    _EVENTS = {
        "contribution": ("tokens", "tokens contributed to the group account"),
        "payoff": ("tokens", "tokens earned: e - c + (r/N) sum c, minus punishment costs and "
                   "fines"),
        "punish_given": ("points", "punishment points assigned to others"),
        "punish_received": ("points", "punishment points received"),
        "punish_cost": ("tokens", "tokens spent on punishing"),
        "fine": ("tokens", "tokens lost to fines"),
    }
    columns = {  # the data dictionary's entries of this game (econsim.dictionary)
        "run_agents": {k: (u, f"{m} per episode") for k, (u, m) in _EVENTS.items()},
        "run_episodes": {
            "contribution_rate": ("share", "mean contribution / endowment over the "
                                  "contribution stages and players"),
            "contribution_rate_{k}": ("share", "mean contribution / endowment of player {k}"),
            "punishment_points": ("points", "points assigned per player per round"),
        },
        "steps": {
            **{k: (u, f"{m} this step") for k, (u, m) in _EVENTS.items()},
            "last_contribution": ("tokens", "contribution of the latest round (-1 before the "
                                  "first)"),
            "payoff_so_far": ("tokens", "tokens earned so far this episode"),
            "contributed_so_far": ("tokens", "tokens contributed so far this episode"),
            "punished_so_far": ("points", "punishment points received so far this episode"),
        },
    }

    def __init__(self, **params) -> None:
        p = self.params = Params(**params)
        self.n_agents, self.endowment, self.levels = p.n_agents, p.endowment, p.levels
        self.multiplier, self.rounds, self.punishment = p.multiplier, p.rounds, p.punishment
        self.punish_cost, self.fine_ratio = p.punish_cost, p.fine_ratio
        self.steps_per_round = 2 if p.punishment else 1
        self.max_steps = p.rounds * self.steps_per_round
        self.amounts = np.linspace(0.0, p.endowment, p.levels)  # [levels] tokens
        self.action_space = Discrete(p.levels)
        n = p.n_agents
        self.observation_space = Box(((2 * n + 1 if p.punishment else n) + 1,), 0.0, 1.0)
        share = np.linspace(0.0, 1.0, p.levels)
        self.action_names = tuple(
            f"give_{_percent(s)}" + (f"_or_pun{a}" if p.punishment else "")
            for a, s in enumerate(share))
        self.agent_info_keys = ("contribution", "payoff") + (
            ("punish_given", "punish_received", "punish_cost", "fine") if p.punishment else ())
        # row i lists player i first, then the others in index order
        self._view = np.array([[i] + [j for j in range(n) if j != i] for i in range(n)])
        self._max_points = (p.levels - 1) * (n - 1)

    # --------------------------------------------------------------------------- protocol
    def reset(self, batch: int, rng: np.random.Generator) -> State:
        n = self.n_agents
        zeros = lambda: np.zeros((batch, n), np.float64)  # noqa: E731
        return State(t=np.zeros(batch, np.int32), level=np.full((batch, n), -1, np.int64),
                     received=zeros(), payoff=zeros(), contributed=zeros(), punished=zeros())

    def stage(self, state: State) -> np.ndarray:
        """``[B]`` stage of the next step: 0 contribution, 1 punishment."""
        return (state.t % self.steps_per_round).astype(np.int64)

    def observe(self, state: State) -> np.ndarray:
        B, n = state.level.shape
        given = np.where(state.level >= 0, self.amounts[np.maximum(state.level, 0)], 0.0)
        parts = [given[:, self._view] / self.endowment]  # [B, N, N]
        if self.punishment:
            parts.append(state.received[:, self._view] / self._max_points)
            parts.append(np.broadcast_to(self.stage(state)[:, None, None], (B, n, 1)))
        done_rounds = state.t // self.steps_per_round
        parts.append(np.broadcast_to((done_rounds / self.rounds)[:, None, None], (B, n, 1)))
        return np.concatenate(parts, -1).astype(np.float32)

    def step(self, state: State, actions: np.ndarray, rng: np.random.Generator) -> Step:
        actions = np.asarray(actions, np.int64)
        e, n = self.endowment, self.n_agents
        punish_now = self.stage(state) == 1  # [B]
        give_now = ~punish_now
        # contribution stage
        c = self.amounts[actions]  # [B, N] tokens
        pay_c = e - c + self.multiplier / n * c.sum(1, keepdims=True)
        # punishment stage: i assigns a_i points to every j who gave less than i this round
        sent = got = np.zeros(c.shape)
        if self.punishment:
            own = self.amounts[np.maximum(state.level, 0)]  # [B, N] this round's contributions
            target = own[:, None, :] < own[:, :, None]  # [B, i, j]: i punishes j
            points = actions[:, :, None] * target  # [B, i, j]
            sent, got = points.sum(2).astype(np.float64), points.sum(1).astype(np.float64)
        cost, fine = self.punish_cost * sent, self.fine_ratio * got
        pay_p = 0.0 - cost - fine  # (no -0.0 where nothing happens)

        gc, pn = give_now[:, None], punish_now[:, None]
        payoff = np.where(gc, pay_c, pay_p)
        contribution = np.where(gc, c, 0.0)
        reward = ((payoff - e * gc) / e).astype(np.float32)
        new = State(
            t=state.t + 1,
            level=np.where(gc, actions, state.level),
            received=np.where(pn, got, state.received),
            payoff=state.payoff + payoff,
            contributed=state.contributed + contribution,
            punished=state.punished + np.where(pn, got, 0.0),
        )
        info = {"contribution": contribution, "payoff": payoff,
                "stage": punish_now.astype(np.int64),
                "round": (state.t // self.steps_per_round).astype(np.int64)}
        if self.punishment:
            info.update(punish_given=np.where(pn, sent, 0.0),
                        punish_received=np.where(pn, got, 0.0),
                        punish_cost=np.where(pn, cost, 0.0), fine=np.where(pn, fine, 0.0))
        return Step(new, self.observe(new), reward, new.t >= self.max_steps, info)

    def describe(self, state: State) -> dict[str, np.ndarray]:
        last = np.where(state.level >= 0, self.amounts[np.maximum(state.level, 0)], -1.0)
        return {"last_contribution": last, "payoff_so_far": state.payoff.copy(),
                "contributed_so_far": state.contributed.copy(),
                "punished_so_far": state.punished.copy()}

    # ----------------------------------------------------------------------- capabilities
    def episode_metrics(self, actions: np.ndarray, mask: np.ndarray) -> dict[str, np.ndarray]:
        """``actions [T, B, N]``, ``mask [T, B]`` -> per world ``[B]``: ``contribution_rate``
        (mean contribution / e over live contribution stages and players),
        ``contribution_rate_<i>``, and with punishment ``punishment_points`` (points assigned
        per player per live round, every target counted)."""
        actions = np.asarray(actions, np.int64)
        m = np.asarray(mask, np.float64)
        k = self.steps_per_round
        give, live = actions[::k], m[::k]  # contribution stages [R, B, N], [R, B]
        frac = give / (self.levels - 1) * live[..., None]
        rounds = np.maximum(live.sum(0), 1.0)  # [B]
        out = {"contribution_rate": frac.sum((0, 2)) / (rounds * self.n_agents)}
        out.update({f"contribution_rate_{i}": frac[..., i].sum(0) / rounds
                    for i in range(self.n_agents)})
        if self.punishment:
            r = actions[1::2].shape[0]  # complete rounds
            own, pts, alive = self.amounts[give[:r]], actions[1::2], m[1::2]  # [r, B, N], [r, B]
            targets = (own[..., None, :] < own[..., :, None]).sum(-1)  # [r, B, N] per punisher
            sent = pts * targets * alive[..., None]
            out["punishment_points"] = sent.sum((0, 2)) / (
                np.maximum(alive.sum(0), 1.0) * self.n_agents)
        return out
