"""Incentives paid between agents or by a designer, on numpy arrays or torch tensors.

A transfer matrix ``transfers[..., i, j]`` is what agent ``i`` pays agent ``j`` this step.
Recipients add what they receive (Diss eq. 5.1). Whether the giver's reward is charged
depends on who learns the giving: LIO charges the cost to its incentive function, not to its
policy (eq. 5.5-5.6, §B.1.1); give-reward *actions* (PG-d, PG-c, LOLA) are charged.
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np

Array = TypeVar("Array")


def received(transfers: Array) -> Array:
    """Total each agent receives: ``[..., N, N] -> [..., N]``."""
    return transfers.sum(-2)


def given(transfers: Array) -> Array:
    """Total each agent gives: ``[..., N, N] -> [..., N]``."""
    return transfers.sum(-1)


def apply_transfers(rewards: Array, transfers: Array, charge_giver: bool | np.ndarray) -> Array:
    """Total reward ``r_env + received - (given if charge_giver)`` (eq. 5.1).

    ``charge_giver`` is one flag for every giver (trainers) or one per giver ``[N]`` bool
    (the Mesa face, where each brain says whether paying costs its agent)."""
    total = rewards + received(transfers)
    if isinstance(charge_giver, np.ndarray):
        return total - given(transfers) * charge_giver
    return total - given(transfers) if charge_giver else total


def others(n_agents: int) -> np.ndarray:
    """``others[i]`` = indices of all agents but ``i``, in index order: ``[N, N-1]``."""
    return np.array([[j for j in range(n_agents) if j != i] for i in range(n_agents)])
