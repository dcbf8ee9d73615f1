"""Inequity-aversion (IA) actor-critic agents, a Cleanup baseline (Diss §5.6, §B.4.2).

Each agent learns by independent actor-critic (``ACTrainer``) from the shaped reward of
Hughes et al. (2018)::

    u_i(t) = r_i(t) - alpha/(N-1) sum_{j!=i} max(e_j(t) - e_i(t), 0)
                    - beta/(N-1)  sum_{j!=i} max(e_i(t) - e_j(t), 0)

with temporally smoothed extrinsic rewards ``e_i(t) = gamma lambda e_i(t-1) + r_i(t)``
(``e_i(-1) = 0`` at each episode start). Diss settings: disadvantageous aversion
``alpha = 0``, advantageous aversion ``beta = 0.05``, ``lambda = 0.95``.

Deviation (documented): the Diss also feeds every agent's smoothed rewards to the second FC
layer of the networks; here the policy and critic see only the (flat) image observation.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from pydantic import Field

from econsim.bounds import Coefficient, Probability
from learners.ac import ACConfig, ACTrainer
from learners.pg import Batch
from learners.registry import register_algorithm


class IAConfig(ACConfig):
    """Actor-critic settings plus the inequity-aversion coefficients (Table B.5 "IA")."""

    kinds: ClassVar[tuple[str, ...]] = ("ia",)
    alpha: Coefficient = Field(0.0, description="disadvantageous inequity aversion")
    beta: Coefficient = Field(0.05, description="advantageous inequity aversion")
    smoothing: Probability = Field(0.95, description="lambda of the smoothed rewards")


@register_algorithm("ia")
class IATrainer(ACTrainer):
    """Independent actor-critic agents learning from inequity-averse shaped rewards."""

    Config = IAConfig
    default_kind = "ia"

    def smoothed(self, rewards: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``e_t = gamma lambda e_{t-1} + r_t`` over ``[T, RB, N]`` (0 after the end)."""
        decay = self.cfg.gamma * self.cfg.smoothing
        e, out = torch.zeros_like(rewards[0]), []
        for t in range(rewards.shape[0]):
            e = decay * e + rewards[t] * mask[t, :, None]
            out.append(e)
        return torch.stack(out)

    def total_rewards(self, batch: Batch, transfers: torch.Tensor | None = None) -> torch.Tensor:
        base = super().total_rewards(batch, transfers)
        if self.N < 2:
            return base
        e = self.smoothed(batch.env_rewards, batch.mask)
        diff = e[..., None, :] - e[..., :, None]  # [T, RB, i, j] = e_j - e_i
        behind = diff.clamp_min(0).sum(-1) / (self.N - 1)
        ahead = (-diff).clamp_min(0).sum(-1) / (self.N - 1)
        shaped = base - self.cfg.alpha * behind - self.cfg.beta * ahead
        return shaped * batch.mask[..., None]
