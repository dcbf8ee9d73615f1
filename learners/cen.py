"""Cen: the (unfair) upper-bound baseline of Cleanup that optimises the joint reward
(Diss §5.6).

Deviation (documented): the Diss trains one fully centralised actor-critic; here every agent
acts from its own egocentric observation with one policy and one critic shared by all agents
of a replica (``ACTrainer`` with ``share = True``, Diss §B.4.2's actor-critic), and every
agent learns from the collective extrinsic reward ``sum_j r_j``. In Cleanup the agent at the
centre of the egocentric image has its own colour, so the shared policy can still assign
roles (cleaner, harvester).
"""

from __future__ import annotations

from typing import ClassVar

import torch
from pydantic import Field

from learners.ac import ACConfig, ACTrainer
from learners.pg import Batch
from learners.registry import register_algorithm


class CenConfig(ACConfig):
    """Actor-critic settings; parameter sharing on by default."""

    kinds: ClassVar[tuple[str, ...]] = ("cen",)
    share: bool = Field(True, description="one policy and critic for all agents of a replica")


@register_algorithm("cen")
class CenTrainer(ACTrainer):
    """Agents of one shared actor-critic, each learning from the collective reward."""

    Config = CenConfig
    default_kind = "cen"

    def total_rewards(self, batch: Batch, transfers: torch.Tensor | None = None) -> torch.Tensor:
        own = super().total_rewards(batch, transfers)
        return own.sum(-1, keepdim=True).expand_as(own)
